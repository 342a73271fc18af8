"""Soak test: run the closed loop for minutes while injecting faults, and measure what the
system itself says about them and how fast exposure commands land again.

The loop (camera_bridge, histogram_node, ae_controller) runs as separate processes over DDS,
free-running (no lockstep, like a real camera); the run's clock starts when commands land. At
seeded random times one fault is injected:

- ``kill_ae`` / ``kill_histogram``: SIGKILL of that node; a new process starts ``down_s`` later.
- ``restart_camera``: SIGKILL of the camera; a new one starts at once (frame indices restart).
- ``bad_commands``: a burst of exposure commands with NaN, negative, huge values and frame
  indices in the past and far ahead, from this process.
- ``garbage_images``: a burst of malformed ``image_raw`` frames (too small for the histogram
  grid, odd size, wrong encoding, truncated) from this process.

Per fault: ``detected_after_s`` = first WARN/ERROR/STALE on ``/diagnostics`` (or WARN/ERROR/FATAL
log line of a node) after the injection whose text names the fault (keywords per kind) and was
not already being said in the seconds before; ``recovered_after_s`` = first frame after the
faulty part returned whose AppliedExposure is ``from_command`` with a fresh
``command_source_frame_index`` (newer than any before the fault, older than the frame itself);
``frames_lost`` = camera frames never seen from the injection until 1 s after recovery (index
gaps, plus the frames a dead camera did not produce); frames lost anywhere else are
``frames_lost_uncounted``. Nothing detected or recovered is ``None``, never a guess.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

FAULT_KINDS = ("kill_ae", "kill_histogram", "restart_camera", "bad_commands", "garbage_images")
#: The node each kill/restart fault targets.
FAULT_NODE = {"kill_ae": "ae_controller", "kill_histogram": "histogram_node", "restart_camera": "camera_bridge"}
#: Words (lower case) one of which a warning must contain to count as naming the fault.
FAULT_KEYWORDS = {
    "kill_ae": ("command", "fallback", "watchdog", "ae_controller"),
    "kill_histogram": ("histogram", "join", "command", "fallback", "watchdog"),
    "restart_camera": ("image_raw", "no input", "camera", "session", "exposure"),
    "bad_commands": ("command", "exposure_time_s", "analog_gain", "refused", "ahead", "nan"),
    "garbage_images": ("dropped frame", "image_raw", "too small"),
}
#: A message said in this many seconds before a fault is background, not a detection.
BASELINE_S = 5.0

_NUMBER = re.compile(r"[-+]?\d[\d.e+-]*")
_LOG_LINE = re.compile(r"^\[(?P<level>WARN|ERROR|FATAL)\] \[(?P<stamp>\d+\.\d+)\] \[(?P<node>[^\]]+)\]: (?P<msg>.*)$")


def _shape(message: str) -> str:
    return _NUMBER.sub("#", message.lower())


# -- plain parts (no ROS): schedule and scoring --------------------------------------------------
def fault_schedule(kinds: Sequence[str], duration_s: float, seed: int, warmup_s: float = 10.0,
                   slot_s: float = 15.0, jitter_s: float = 3.0) -> List[Tuple[float, str]]:
    """``(at_s, kind)`` pairs: one fault per ``slot_s`` slot after ``warmup_s``, at a seeded
    random offset in its slot, kinds in a seeded shuffled round-robin. A fault needs the rest of
    its slot to be detected and recovered from, so the last slot ends before ``duration_s``.
    (The run postpones a fault while the previous fault's restarted node is not back yet; the
    faults that no longer fit in ``duration_s`` are not injected.)"""
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown fault kind(s) {unknown or kinds}: expected some of {', '.join(FAULT_KINDS)}")
    rng = random.Random(seed)
    n = int((duration_s - warmup_s) // slot_s)
    if n < 1:
        raise ValueError(f"{duration_s:.0f} s leave no room for a fault: need at least {warmup_s + slot_s:.0f} s "
                         f"({warmup_s:.0f} s start-up + one {slot_s:.0f} s fault slot)")
    order: List[str] = []
    while len(order) < n:
        round_ = list(kinds)
        rng.shuffle(round_)
        order += round_
    return [(round(warmup_s + i * slot_s + rng.uniform(0.0, jitter_s), 3), order[i]) for i in range(n)]


@dataclass
class FrameRecord:
    t: float                 # wall time of receipt (s)
    session: int             # camera session (0, 1, ...: a new camera process)
    index: int
    from_command: bool
    source_index: int
    method: str = ""         # method named by the command in force
    fallback: bool = False   # the camera's own fallback AE was in control


#: Command methods that are not the AE controller's (the camera's fallback, the soak's bad ones).
NOT_CONTROLLER = ("camera_fallback", "soak_bad")


@dataclass
class Fault:
    kind: str
    at_s: float
    t: float                                  # wall time of injection
    restarted_t: Optional[float] = None       # wall time a killed node's new process was started
    returned_t: Optional[float] = None        # wall time the faulty part was back (its first output)
    window_end_t: Optional[float] = None
    detected_t: Optional[float] = None
    detected_by: Optional[str] = None
    recovered_t: Optional[float] = None
    frames_lost: int = 0
    injected_indices: List[int] = field(default_factory=list)

    def report(self) -> Dict:
        def rel(t):
            return None if t is None else round(t - self.t, 3)

        return {"kind": self.kind, "at_s": self.at_s, "detected_after_s": rel(self.detected_t),
                "recovered_after_s": rel(self.recovered_t),
                "returned_after_s": rel(self.returned_t),
                "recovered_after_return_s": (None if self.recovered_t is None or self.returned_t is None
                                             else round(self.recovered_t - self.returned_t, 3)),
                "frames_lost": self.frames_lost, "detected_by": self.detected_by}


def fresh_command(rec: FrameRecord, newer_than: int, excluded: Sequence[int] = ()) -> bool:
    """A frame captured with a command computed from an earlier frame of this camera session,
    newer than ``newer_than`` and not one of the injected bad ones."""
    return (rec.from_command and not rec.fallback and rec.method not in NOT_CONTROLLER
            and newer_than < rec.source_index < rec.index and rec.source_index not in excluded)


def score_recovery(fault: Fault, frames: Sequence[FrameRecord]) -> None:
    """Set ``fault.recovered_t``: the first fresh command landing after the faulty part returned."""
    start = next(t for t in (fault.returned_t, fault.restarted_t, fault.t) if t is not None)
    before = [r for r in frames if r.t < start]
    session = before[-1].session if before else 0
    newer_than = max((r.source_index for r in before if r.session == session and r.from_command
                      and r.source_index < r.index), default=-1)
    for r in frames:
        if r.t < start or (fault.window_end_t is not None and r.t > fault.window_end_t):
            continue
        bar = newer_than if r.session == session else -1
        if fresh_command(r, bar, fault.injected_indices):
            fault.recovered_t = r.t
            return


def missing_frames(frames: Sequence[FrameRecord]) -> List[Tuple[float, int, int]]:
    """``(approximate time, session, index)`` of every frame index never received, per camera
    session (between its first and last received frame)."""
    out = []
    by_session: Dict[int, List[FrameRecord]] = {}
    for r in frames:
        by_session.setdefault(r.session, []).append(r)
    for session, recs in by_session.items():
        recs = sorted(recs, key=lambda r: r.index)
        for a, b in zip(recs, recs[1:]):
            for k in range(a.index + 1, b.index):
                frac = (k - a.index) / (b.index - a.index)
                out.append((a.t + frac * (b.t - a.t), session, k))
    return out


def camera_outage_frames(frames: Sequence[FrameRecord], fault: Fault, fps: float) -> int:
    """Frames a killed camera did not produce: the time from its last frame to the new camera's
    first, in frame periods, less the one frame that would have come anyway."""
    before = [r for r in frames if r.t <= fault.t]
    after = [r for r in frames if r.t > fault.t and (not before or r.session != before[-1].session)]
    if not before or not after:
        return 0
    return max(0, int(round((after[0].t - before[-1].t) * fps)) - 1)


def first_detection(fault: Fault, statuses: Sequence[Tuple[float, str, int, str]],
                    log_lines: Sequence[Tuple[float, str, str, str]]) -> None:
    """Set ``fault.detected_t``/``detected_by`` from /diagnostics statuses ``(t, name, level,
    message)`` with level >= WARN and node log lines ``(t, node, level, message)``."""
    words = FAULT_KEYWORDS[fault.kind]
    said_before = {(_src, _shape(m)) for t, _src, _lvl, m in statuses if fault.t - BASELINE_S <= t < fault.t}
    said_before |= {(_src, _shape(m)) for t, _src, _lvl, m in log_lines if fault.t - BASELINE_S <= t < fault.t}
    end = fault.window_end_t if fault.window_end_t is not None else math.inf
    candidates = []
    for t, name, level, message in statuses:
        if fault.t <= t <= end and (name, _shape(message)) not in said_before and any(w in message.lower() for w in words):
            candidates.append((t, f"/diagnostics {name} level {level}: {message[:160]}"))
            break
    for t, node, level, message in log_lines:
        if fault.t <= t <= end and (node, _shape(message)) not in said_before and any(w in message.lower() for w in words):
            candidates.append((t, f"log {node} [{level}]: {message[:160]}"))
            break
    if candidates:
        fault.detected_t, fault.detected_by = min(candidates)


def read_log_lines(log_dir: Path) -> List[Tuple[float, str, str, str]]:
    """WARN/ERROR/FATAL lines of every node log in ``log_dir``: ``(wall time, node, level, text)``."""
    out = []
    for path in sorted(Path(log_dir).glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            m = _LOG_LINE.match(line.strip())
            if m:
                out.append((float(m["stamp"]), m["node"], m["level"], m["msg"]))
    out.sort()
    return out


# -- the run (ROS) ------------------------------------------------------------------------------
def run_soak(minutes: float, faults: Sequence[str] = FAULT_KINDS, seed: int = 0, width: int = 320,
             height: int = 200, fps: float = 10.0, drive: str = "step_test", method: str = "average",
             log_dir: Optional[Path] = None, down_s: float = 2.0, slot_s: float = 15.0,
             settle_s: float = 5.0, start_timeout_s: float = 120.0, progress: bool = True) -> Dict:
    """Run the soak for ``minutes``; returns the JSON-ready record (see module doc)."""
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    from neural_ae_ros.msg import AppliedExposure, ExposureCommand, HistogramStack

    from ..graph import pipeline, ros_args
    from . import topics
    from .dds import clean_stale_shm, configure_middleware, fastdds_shm_files, stale_shm_groups
    from .loop import free_domain_id
    from .processes import children_of, pid_alive, start_node_process, stop_processes

    duration_s = 60.0 * float(minutes)
    plan = fault_schedule(list(faults), duration_s, seed, slot_s=slot_s)
    configure_middleware()
    clean_stale_shm()
    shm_at_start = set(fastdds_shm_files())
    domain = free_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="neural_ae_soak_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    graph = {n.executable: n for n in pipeline(method, camera={
        "source": "drive", "drive": drive, "seed": seed, "width": width, "height": height,
        "frame_rate_hz": float(fps), "lockstep_timeout_s": 0.0, "max_frames": 0})}

    frames: List[FrameRecord] = []
    statuses: List[Tuple[float, str, int, str]] = []
    arrivals: Dict[str, List[float]] = {"command": []}
    procs: Dict[str, object] = {}
    all_procs = []
    starts: Dict[str, int] = {}
    logs = []
    camera_session = [0]

    def start(name: str) -> None:
        k = starts.get(name, 0)
        starts[name] = k + 1
        log = open(log_dir / f"{name}.{k}.log", "w")
        logs.append(log)
        p = start_node_process(graph[name].module, ros_args(graph[name]), log, env)
        procs[name] = p
        all_procs.append(p)

    def kill(name: str) -> None:
        p = procs.pop(name, None)
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("soak_monitor")
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    session_ids: List[int] = []

    def on_exposure(msg) -> None:
        index = int(msg.frame_index)
        session_id = getattr(msg, "session_id", None)  # cameras that announce a session id
        if session_id is not None and session_ids and session_id != session_ids[-1]:
            camera_session[0] += 1
        elif session_id is None and frames and index + 5 < frames[-1].index:  # indices restarted
            camera_session[0] += 1
        if session_id is not None:
            session_ids.append(session_id)
        frames.append(FrameRecord(time.time(), camera_session[0], index, bool(msg.from_command),
                                  int(msg.command_source_frame_index), str(getattr(msg, "command_method", "")),
                                  bool(getattr(msg, "fallback_active", False))))

    def on_diagnostics(msg) -> None:
        now = time.time()
        for s in msg.status:
            level = s.level[0] if isinstance(s.level, (bytes, bytearray)) else int(s.level)
            if level >= 1:
                statuses.append((now, s.name, level, s.message))

    node.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, on_exposure, topics.RECORD_QOS)
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diagnostics, 50)
    arrivals["histograms"] = []
    node.create_subscription(ExposureCommand, topics.EXPOSURE_COMMAND,
                             lambda m: m.method != "soak_bad" and arrivals["command"].append(time.time()),
                             topics.RECORD_QOS)
    node.create_subscription(HistogramStack, topics.HISTOGRAMS,
                             lambda m: arrivals["histograms"].append(time.time()), topics.RECORD_QOS)
    cmd_pub = node.create_publisher(ExposureCommand, topics.EXPOSURE_COMMAND, topics.RECORD_QOS)
    img_pub = node.create_publisher(Image, topics.IMAGE_RAW, topics.IMAGE_QOS)

    def returned_at(f: Fault) -> Optional[float]:
        """Wall time of the restarted node's first output (None: not back yet)."""
        if f.restarted_t is None:
            return None
        name = f.kind.replace("crash_", "") if f.kind.startswith("crash_") else FAULT_NODE.get(f.kind)
        if name == "camera_bridge":
            first = (r.t for r in frames if r.t >= f.restarted_t)
        else:
            first = (t for t in arrivals["command" if name == "ae_controller" else "histograms"] if t >= f.restarted_t)
        return next(first, None)

    def settled(now: float) -> bool:
        """The last fault's part is back (and has run ``settle_s``): the next fault may come."""
        if pending_restarts:
            return False
        for f in injected[-1:]:
            if f.restarted_t is not None:
                back = returned_at(f)
                return back is not None and now - back >= settle_s
        return True

    injected: List[Fault] = []
    postponed_s = 0.0
    pending_restarts: List[Tuple[float, str, Fault]] = []
    result: Dict = {}
    bar = None
    try:
        for name in ("ae_controller", "histogram_node", "camera_bridge"):
            start(name)
        # the clock starts once the loop runs (commands landing): node start-up on a loaded
        # machine takes seconds, and a fault injected before would hit nothing
        started = time.time()
        while not any(fresh_command(r, -1) for r in frames[-5:]):
            executor.spin_once(timeout_sec=0.1)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead or time.time() - started > start_timeout_s:
                raise RuntimeError(f"the loop did not start within {time.time() - started:.0f} s"
                                   + (f" ({', '.join(dead)} exited)" if dead else "") + f"; logs in {log_dir}")
        t0 = time.time()
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=int(duration_s), desc=f"soak ({len(plan)} faults)", unit="s", mininterval=1.0)
        queue = list(plan)
        while time.time() - t0 < duration_s:
            executor.spin_once(timeout_sec=0.05)
            now = time.time()
            if bar is not None:
                bar.update(int(now - t0) - bar.n)
            for name, p in list(procs.items()):
                if p.poll() is not None and not any(n == name for _, n, _ in pending_restarts):
                    # a node died on its own: say so in the record, restart it like a kill fault
                    f = Fault(f"crash_{name}", round(now - t0, 3), now)
                    injected.append(f)
                    procs.pop(name)
                    pending_restarts.append((now + down_s, name, f))
            for item in list(pending_restarts):
                when, name, fault = item
                if now >= when:
                    pending_restarts.remove(item)
                    start(name)
                    fault.restarted_t = time.time()
            if queue and now - t0 >= queue[0][0] + postponed_s and not settled(now):
                postponed_s += now - (t0 + queue[0][0] + postponed_s)  # wait for the last part to be back
            elif queue and now - t0 >= queue[0][0] + postponed_s:
                at_s, kind = queue.pop(0)
                fault = Fault(kind, round(now - t0, 3), now)
                injected.append(fault)
                if kind in ("kill_ae", "kill_histogram"):
                    kill(FAULT_NODE[kind])
                    pending_restarts.append((now + down_s, FAULT_NODE[kind], fault))
                elif kind == "restart_camera":
                    kill("camera_bridge")
                    pending_restarts.append((now, "camera_bridge", fault))
                elif kind == "bad_commands":
                    fault.injected_indices = _inject_bad_commands(cmd_pub, ExposureCommand, frames)
                    fault.returned_t = time.time()
                elif kind == "garbage_images":
                    _inject_garbage_images(img_pub, Image, np, node)
                    fault.returned_t = time.time()
        if bar is not None:
            bar.close()
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        stop_processes(list(procs.values()))
        for p in all_procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    t_end = time.time()
    with open(log_dir / "frames.csv", "w") as fh:  # the raw record, for a second look
        fh.write("t_s,session,frame_index,from_command,command_source_frame_index,method,fallback\n")
        for r in frames:
            fh.write(f"{r.t - t0:.3f},{r.session},{r.index},{int(r.from_command)},{r.source_index},"
                     f"{r.method},{int(r.fallback)}\n")
    # score
    for i, f in enumerate(injected):
        nxt = [g.t for g in injected[i + 1:] if g.t > f.t]
        f.window_end_t = nxt[0] if nxt else t_end
    for f in injected:  # the faulty part is back when its first output arrives
        if f.restarted_t is not None:
            f.returned_t = returned_at(f)
    with open(log_dir / "faults.csv", "w") as fh:
        fh.write("t_s,kind,returned_s\n")
        for f in injected:
            fh.write(f"{f.t - t0:.3f},{f.kind},{'' if f.returned_t is None else round(f.returned_t - t0, 3)}\n")
    log_lines = read_log_lines(log_dir)
    missing = missing_frames(frames)
    counted = 0
    for f in injected:
        score_recovery(f, frames)
        first_detection(f, statuses, log_lines)
        # a fault owns the frames lost until 1 s after it recovered (the whole slot if it never did)
        owned_until = f.window_end_t if f.recovered_t is None else min(f.window_end_t, f.recovered_t + 1.0)
        in_window = [m for m in missing if f.t <= m[0] < owned_until]
        f.frames_lost = len(in_window)
        if f.kind == "restart_camera" or f.kind == "crash_camera_bridge":
            f.frames_lost += camera_outage_frames(frames, f, fps)
        counted += len(in_window)
    leaked = [p.pid for p in all_procs if pid_alive(p.pid)] + children_of(os.getpid())
    new_stale = {b: fs for b, fs in stale_shm_groups(min_age_s=0.0).items() if not set(fs) <= shm_at_start}
    cleaned = clean_stale_shm(min_age_s=0.0)
    left = {b: fs for b, fs in stale_shm_groups(min_age_s=0.0).items() if not set(fs) <= shm_at_start}
    tracebacks = sum(p.read_text(errors="replace").count("Traceback") for p in log_dir.glob("*.log"))
    published = sum(max(r.index for r in frames if r.session == s) + 1 for s in {r.session for r in frames})
    result = {
        "minutes": minutes, "seed": seed, "drive": drive, "method": method, "width": width, "height": height,
        "fps": fps, "ros_domain_id": domain,
        "faults": [f.report() for f in injected],
        "frames_published": published,
        "frames_received": len(frames),
        "frames_with_command": sum(1 for r in frames if fresh_command(r, -1)),
        "frames_with_fallback": sum(1 for r in frames if r.fallback or r.method == "camera_fallback"),
        "frames_lost_uncounted": len(missing) - counted,
        "leaked_processes": len(set(leaked)),
        "leaked_shm_segments": len(left),
        "stale_shm_segments_cleaned_at_end": len(new_stale),
        "shm_files_removed_at_end": len(cleaned),
        "tracebacks_in_node_logs": tracebacks,
        "node_starts": starts,
        "start_up_s": round(t0 - started, 1),
        "faults_planned": len(plan),
        "faults_postponed_s": round(postponed_s, 1),
        "logs": str(log_dir),
    }
    result["summary"] = summarize(result)
    return result


def summarize(result: Dict) -> Dict:
    """Per kind: count, detected, recovered, worst and median latencies (None when none)."""
    out = {}
    for kind in sorted({f["kind"] for f in result["faults"]}):
        fs = [f for f in result["faults"] if f["kind"] == kind]
        det = sorted(f["detected_after_s"] for f in fs if f["detected_after_s"] is not None)
        rec = sorted(f["recovered_after_s"] for f in fs if f["recovered_after_s"] is not None)
        out[kind] = {"injected": len(fs), "detected": len(det), "recovered": len(rec),
                     "detected_after_s_median": det[len(det) // 2] if det else None,
                     "detected_after_s_max": det[-1] if det else None,
                     "recovered_after_s_median": rec[len(rec) // 2] if rec else None,
                     "recovered_after_s_max": rec[-1] if rec else None,
                     "frames_lost": sum(f["frames_lost"] for f in fs)}
    return out


def _inject_bad_commands(pub, ExposureCommand, frames) -> List[int]:
    """NaN, negative, absurd values, and frame indices in the past and far ahead."""
    last = frames[-1].index if frames else 0
    bad = [(last, math.nan, 1.0), (last, -0.01, 2.0), (last, 1e9, 1e9), (last, 0.004, math.inf),
           (max(0, last - 20), 0.03, 8.0), (last + 30, 0.03, 8.0), (1_000_000, 0.03, 8.0)]
    for src, t, k in bad:
        cmd = ExposureCommand(source_frame_index=int(src), target_frame_index=int(src) + 1, exposure_time_s=float(t),
                              analog_gain=float(k), method="soak_bad")
        pub.publish(cmd)
    return sorted({int(src) for src, _, _ in bad})


def _inject_garbage_images(pub, Image, np, node) -> None:
    """Frames no node may die of: too small for the 7x7 grid, odd size, wrong encoding, truncated."""
    stamp = node.get_clock().now().to_msg()
    tiny = np.full((12, 12), 600, np.uint16)
    good = np.full((64, 64), 600, np.uint16)
    for img in (Image(height=12, width=12, encoding="bayer_rggb16", step=24, data=tiny.tobytes()),
                Image(height=63, width=64, encoding="bayer_rggb16", step=128, data=good[:63].tobytes()),
                Image(height=64, width=64, encoding="mono16", step=128, data=good.tobytes()),
                Image(height=64, width=64, encoding="bayer_rggb16", step=128, data=good.tobytes()[:-10])):
        img.header.stamp = stamp
        pub.publish(img)


def write_json(result: Dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
