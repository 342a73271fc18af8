"""Run the closed exposure loop as separate processes over DDS and record it.

camera_bridge, histogram_node and ae_controller each run in their own process (real rclpy,
Fast DDS over shared memory); this process records ``exposure`` (AppliedExposure) and
``exposure_command`` and scores the run (:mod:`neural_ae_ros.evaluation.loop_scores`).
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from neural_ae_ros.msg import AppliedExposure, CameraExposureInfo, ExposureCommand

from ..graph import pipeline, ros_args
from neural_ae_ros.evaluation.loop_scores import TraceRow, oscillation, step_events
from ..parameters import node_defaults
from neural_ae_ros.scenes.sources import open_source
from . import topics
from .convert import camera_info_from_msg
from .dds import clean_stale_shm, configure_middleware
from .processes import signals_ignored, start_node_process, stop_processes


class NodeProcessError(RuntimeError):
    """A node process of the loop ended before the run did."""


def _last_fatal_line(log_dir: Path, executables) -> str:
    """The first FATAL/ERROR line of the dead nodes' logs, to say why in one line."""
    for name in executables:
        try:
            lines = (Path(log_dir) / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if "[FATAL]" in line or "[ERROR]" in line:
                return f"{name}: {line.strip()}; "
    return ""


def graph_has(graph, executable: str) -> bool:
    return any(n.executable == executable for n in graph)


class LoopRecorder(Node):
    def __init__(self, namespace: str = "", features: bool = False) -> None:
        super().__init__("loop_recorder", namespace=namespace or None)
        self.semantic_count = 0
        self.semantic_bytes = None  # serialized size of one SemanticFeatures message (what DDS carries)
        self.ae_diagnostics: Dict[str, str] = {}
        if features:
            from neural_ae_ros.msg import SemanticFeatures

            self.create_subscription(SemanticFeatures, topics.SEMANTIC_FEATURES, self._on_semantic, topics.RECORD_QOS)
        self.applied: Dict[int, AppliedExposure] = {}
        self.commands: List[ExposureCommand] = []
        self.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, self._on_applied, topics.RECORD_QOS)
        self.create_subscription(ExposureCommand, topics.EXPOSURE_COMMAND, self.commands.append, topics.RECORD_QOS)
        self.camera_info = None  # imaging.exposure.CameraExposureInfo the camera announced
        self.create_subscription(CameraExposureInfo, topics.CAMERA_EXPOSURE_INFO, self._on_camera_info,
                                 topics.LATCHED_QOS)
        self.first_receipt: Optional[float] = None
        self.last_receipt: Optional[float] = None
        #: frame index at which the camera's source ended (a recording read to its end or to damage)
        self.source_ended_at: Optional[int] = None
        from diagnostic_msgs.msg import DiagnosticArray

        from .diagnostics import DIAGNOSTICS_TOPIC

        self.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, 50)

    def _on_semantic(self, msg) -> None:
        if self.semantic_bytes is None:
            from rclpy.serialization import serialize_message

            self.semantic_bytes = len(serialize_message(msg))
        self.semantic_count += 1

    def _on_diagnostics(self, msg) -> None:
        """The camera's end of source (a recording read to its end or to damage) and the
        controller's last status (decision inputs of learned methods)."""
        for status in msg.status:
            if status.name.endswith("camera_bridge"):
                for kv in status.values:
                    if kv.key == "source_ended_at_frame":
                        self.source_ended_at = int(kv.value)
            if "ae_controller" in status.name:
                level = status.level
                self.ae_diagnostics = {kv.key: kv.value for kv in status.values}
                self.ae_diagnostics["level"] = str(level[0] if isinstance(level, bytes) else int(level))
                self.ae_diagnostics["message"] = status.message

    def _on_camera_info(self, msg) -> None:
        self.camera_info = camera_info_from_msg(msg)

    def _on_applied(self, msg: AppliedExposure) -> None:
        now = time.monotonic()
        self.first_receipt = self.first_receipt or now
        self.last_receipt = now
        self.applied[int(msg.frame_index)] = msg


def free_domain_id() -> int:
    """A ROS_DOMAIN_ID for this run: the environment's, else a random one in 1..100."""
    env = os.environ.get("ROS_DOMAIN_ID")
    return int(env) if env else random.randint(1, 100)


#: Frames of a ``run_loop`` on a built-in drive when none are asked for (a bag runs to its end).
DEFAULT_DRIVE_FRAMES = 300


def run_loop(method: str = "average", frames: Optional[int] = DEFAULT_DRIVE_FRAMES, latency: Optional[int] = None,
             width: Optional[int] = None, height: Optional[int] = None, fps: Optional[float] = None,
             drive: Optional[str] = None, seed: Optional[int] = None, log_dir: Optional[Path] = None,
             timeout_s: Optional[float] = None, extra_ae_params: Optional[Dict] = None,
             progress: bool = True, lockstep_timeout_s: float = 1.0, bag_path: Optional[str] = None,
             network_weights: Optional[str] = None, detector_checkpoint: Optional[str] = None) -> Dict:
    """Run the three-node loop for ``frames`` frames; returns the result record (see cli).

    ``frames=None``: a built-in drive runs :data:`DEFAULT_DRIVE_FRAMES`, a bag (``bag_path``) to
    its last frame; a bag never runs past the frames it holds.

    The caller's ``os.environ`` is left as it was (the DDS settings are in force only while the
    run's own participant starts; the nodes get theirs in their environment)."""
    saved_environ = dict(os.environ)
    try:
        return _run_loop(method, frames, latency, width, height, fps, drive, seed, log_dir, timeout_s,
                         extra_ae_params, progress, lockstep_timeout_s, bag_path, network_weights,
                         detector_checkpoint)
    finally:
        if dict(os.environ) != saved_environ:
            os.environ.clear()
            os.environ.update(saved_environ)


def _run_loop(method, frames, latency, width, height, fps, drive, seed, log_dir, timeout_s, extra_ae_params,
              progress, lockstep_timeout_s, bag_path, network_weights=None, detector_checkpoint=None) -> Dict:
    from ..ae.neural import train_command
    from ..graph import method_files

    files = method_files(method, network_weights, detector_checkpoint)
    for what, f in files.items():  # before any process starts: one line naming the file
        if not Path(f).is_file():
            weights = files["network_weights"]
            raise FileNotFoundError(f"{method}: {what.replace('_', ' ')} {f} is missing; make it with "
                                    f"`{train_command(method, weights)}` (it writes both {Path(weights).name} and "
                                    f"{Path(weights).stem}_detector.pt)")
    configure_middleware()
    clean_stale_shm()
    cam = node_defaults("camera_bridge")
    ae_defaults = node_defaults("ae_controller")
    latency = cam["actuation_latency_frames"] if latency is None else int(latency)
    width = width or cam["width"]
    height = height or cam["height"]
    fps = fps or cam["frame_rate_hz"]
    drive = drive or cam["drive"]
    seed = cam["seed"] if seed is None else int(seed)
    if bag_path:
        source = open_source("bag", bag_path=str(bag_path))
        width, height = source.width, source.height
        # the frames the bag holds (its index): the run ends with the recording, never waits past it
        frames = source.num_frames if frames is None else min(frames, source.num_frames)
        if frames <= 0:
            raise ValueError(f"{bag_path}: the scene bag holds no frames")
        camera = {"source": "bag", "bag_path": str(Path(bag_path).resolve())}
        drive = f"bag:{bag_path}"
    else:
        frames = DEFAULT_DRIVE_FRAMES if frames is None else frames
        source = open_source("drive", drive, "", seed, width, height, fps, script_frames=frames)
        camera = {"source": "drive", "drive": drive, "seed": seed, "width": width, "height": height}
    graph = pipeline(method, camera={"max_frames": frames, "actuation_latency_frames": latency,
                                     "frame_rate_hz": float(fps), "lockstep_timeout_s": lockstep_timeout_s, **camera},
                     ae=extra_ae_params, wait_for_recorder=True, network_weights=network_weights,
                     detector_checkpoint=detector_checkpoint)
    domain = free_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    # what the controller runs with: the defaults read once above plus this run's overrides
    ae_used = {**ae_defaults, **next(n.parameters for n in graph if n.executable == "ae_controller")}
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="neural_ae_loop_"))
    log_dir.mkdir(parents=True, exist_ok=True)

    events = [e for e in source.events if e.frame_index < frames]

    procs = []
    result: Dict = {}
    bar = None
    # Ctrl-C/SIGTERM: the command's handlers; the run's domain without touching ROS_DOMAIN_ID
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO, domain_id=domain)
    try:
        recorder = LoopRecorder(features=graph_has(graph, "detector_node"))
        executor = SingleThreadedExecutor()
        executor.add_node(recorder)
        for node in graph:
            log = open(log_dir / f"{node.executable}.log", "w")
            # dies with this process, even on SIGKILL (processes.die_with_parent)
            procs.append((node.executable, start_node_process(node.module, ros_args(node), log, env), log))
        deadline = time.monotonic() + (timeout_s or (60.0 + 3.0 * frames / fps))
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=frames, desc=f"loop {method}", unit="frame", leave=False, mininterval=1.0)
        while time.monotonic() < deadline and len(recorder.applied) < frames and recorder.source_ended_at is None:
            executor.spin_once(timeout_sec=0.1)
            if bar is not None:
                bar.update(len(recorder.applied) - bar.n)
            dead = [(m, p.returncode) for m, p, _ in procs if p.poll() is not None]
            if dead:
                raise NodeProcessError(f"node process ended early: {', '.join(f'{m} (exit code {c})' for m, c in dead)}"
                                       f"; {_last_fatal_line(log_dir, [m for m, _ in dead])}logs in {log_dir}")
        # collect the commands of the last frames
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        if bar is not None:
            bar.close()
            bar = None
        result = _score(recorder, frames, method, latency, fps, events, ae_used, width, height, drive,
                        seed, domain)
        result["logs"] = str(log_dir)
        if files:
            result["method_files"] = files
        if recorder.semantic_count:
            result["semantic_features"] = {"messages": recorder.semantic_count,
                                           "serialized_bytes_per_frame": recorder.semantic_bytes}
        if recorder.ae_diagnostics:
            result["ae_controller_diagnostics"] = recorder.ae_diagnostics
        executor.shutdown()
        recorder.destroy_node()
    finally:
        if bar is not None:
            bar.close()
        with signals_ignored():
            stop_processes([p for _, p, _ in procs])
            for _, _, log in procs:
                log.close()
            rclpy.try_shutdown()
            clean_stale_shm(min_age_s=0.0)
    return result


def _score(recorder: "LoopRecorder", frames: int, method: str, latency: int, fps: float, events,
           ae_used: Dict, width: int, height: int, drive: str, seed: int, domain: int) -> Dict:
    """Scores from what the run used: the camera's announced facts (limits, levels, latency,
    session: ``camera_exposure_info``) and the controller's parameters (defaults + overrides)."""
    applied = recorder.applied
    info = recorder.camera_info
    if info is None:
        raise RuntimeError("the camera never announced camera_exposure_info: cannot score the run")
    trace = [TraceRow(i, m.exposure_time_s, m.analog_gain, float(m.mean_level_dn), bool(m.from_command),
                      int(m.command_source_frame_index)) for i, m in sorted(applied.items())]
    with_command = [r for r in trace if r.from_command and r.command_source_frame_index < r.frame_index]
    # lag of each command: from the frame it was computed from to the first frame that used it
    lags = [r.frame_index - r.command_source_frame_index
            for prev, r in zip([None, *trace], trace) if r.from_command and r.command_source_frame_index < r.frame_index
            and (prev is None or not prev.from_command or prev.command_source_frame_index != r.command_source_frame_index)]
    from neural_ae_ros.ae import method_class

    black, white = info.black_level_dn, info.white_level_dn
    if any(p.name == "target_level_fraction" for p in method_class(method).parameters):
        target = black + ae_used["target_level_fraction"] * (white - black)
    else:
        target = None  # no level target: scored against the level the loop settled to before the first event
    stamps = sorted(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in applied.values())
    measured_fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
    return {
        "method": method,
        "smoothing": ae_used.get("smoothing"),
        "ae_parameters": {k: v for k, v in sorted(ae_used.items())},
        "camera": {"session_id": info.session_id, "black_level_dn": black, "white_level_dn": white,
                   "saturation_level_dn": info.saturation_level_dn,
                   "actuation_latency_frames": info.actuation_latency_frames, "t_max_s": info.t_max_s,
                   "limits": dict(vars(info.limits))},
        "drive": drive,
        "seed": seed,
        "width": width,
        "height": height,
        "frames_requested": frames,
        "incomplete": (None if len(applied) >= frames else
                       f"{len(applied)} of {frames} frames recorded: the camera's source ended at frame "
                       f"{recorder.source_ended_at} (a recording frame it could not read: see the camera_bridge "
                       f"log); events after frame {max(applied, default=-1)} are not scored"
                       if recorder.source_ended_at is not None else
                       f"{len(applied)} of {frames} frames recorded before the run's time limit; events after "
                       f"frame {max(applied, default=-1)} are not scored"),
        "frames_published": len(applied),
        "frames_lost": (max(applied) + 1 - len(applied)) if applied else 0,
        "frames_with_command": len(with_command),
        "commands_received": len(recorder.commands),
        "actuation_latency_frames": info.actuation_latency_frames,
        "command_to_frame_lag": sorted(set(lags)),
        "fps": measured_fps,
        "target_fps": fps,
        "ros_domain_id": domain,
        "exposure_trace": [{"index": r.frame_index, "exposure_time_s": r.exposure_time_s,
                            "gain": r.analog_gain, "mean_raw_level_dn": r.mean_level_dn,
                            "from_command": r.from_command,
                            "command_source_frame_index": r.command_source_frame_index} for r in trace],
        "step_events": step_events(trace, events, target, black, limits=info.limits),
        "oscillation": oscillation(trace, [e.frame_index for e in events]),
    }


def write_json(result: Dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
