"""A/B evaluation: one scene recording played into two complete pipelines side by side.

Each side (namespace ``a`` / ``b``) is :func:`neural_ae_ros.graph.perception_pipeline`:
camera_bridge (replaying the recording), histogram_node, ae_controller (its method), isp_node,
detector_node, each its own process (real rclpy, Fast DDS over shared memory). This process
records each side's outputs to its own rosbag2 MCAP bag (:class:`ABRecorder`,
layout in :mod:`neural_ae_ros.evaluation.ab_bags`): the ISP image as a thumbnail, the applied
exposures, the detections; the scores are computed afterwards from those bags alone
(:mod:`neural_ae_ros.evaluation.ab_scoring`).

Pacing (``pace``): ``stamps``: each camera captures on a timer at the recording's frame rate;
``lockstep``: as fast as each side's graph goes. Either way every command lands on its frame
(``lockstep_timeout_s``) and the camera holds the next frame until the detections of the frame
before last came back (``max_frames_in_flight``), so no queue overflows and no frame is dropped.

Faults: a node process that dies is recorded (side, node, exit code, last frame recorded
before) and the run goes on; a side ends when every frame is recorded, or when nothing has come
from it for ``stall_timeout_s`` (its remaining frames are reported missing); with ``timeout_s``
the whole run ends then at the latest (default: no limit; the cameras stop after the recording). A scene bag that cannot be read fully fails before anything starts.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import serialize_message
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from neural_ae_ros.msg import AppliedExposure, CameraExposureInfo

from ..evaluation.ab_bags import SideBagWriter, thumbnail
from ..graph import perception_pipeline, ros_args
from ..parameters import node_defaults
from . import topics
from .convert import image_to_rgb, rgb_to_image, stamp_key
from .dds import clean_stale_shm, configure_middleware
from .loop import free_domain_id
from .processes import signals_ignored, start_node_process, stop_processes

PACES = ("stamps", "lockstep")
#: Once a side's camera captured every frame, the seconds of silence after which no more
#: detections are expected (the camera waits for them while they come).
DRAIN_S = 10.0
SIDES = ("a", "b")


def load_scene_labels(bag_path) -> tuple:
    """(scene info, [(stamp_ns, boxes, ignored)] per frame) of a scene recording; reads (and so
    checks) every frame: a truncated or damaged bag raises SceneBagError naming file and frame."""
    from neural_ae_ros.scenes.scene_bag import read_scene_bag

    bag = read_scene_bag(bag_path)
    labels = [(f.stamp_ns, list(f.boxes), list(f.ignored)) for f in bag.frames(reuse_buffers=2)]
    if not labels:
        raise ValueError(f"{bag_path}: the scene recording holds no frame")
    return dict(bag.info), labels


@dataclass
class SideState:
    """What the recorder has seen of one side."""

    name: str
    frames: int
    exposures: Dict[int, int] = field(default_factory=dict)   # stamp -> frame index
    detected: set = field(default_factory=set)                # frame indices with detections recorded
    thumbnails: int = 0
    rgb_size: Optional[List[int]] = None
    last_message: float = field(default_factory=time.monotonic)
    first_frame_t: Optional[float] = None
    last_frame_t: Optional[float] = None
    end_reason: Optional[str] = None

    def complete(self) -> bool:
        return len(self.detected) >= self.frames


class ABRecorder(Node):
    """Records both sides into their bags as the messages arrive (serialized CDR, no re-encoding
    but the thumbnail)."""

    def __init__(self, writers: Dict[str, SideBagWriter], sides: Dict[str, SideState], thumbnail_width: int) -> None:
        super().__init__("ab_recorder")
        self.writers, self.sides, self.thumbnail_width = writers, sides, thumbnail_width
        for side in sides:
            ns = f"/{side}"
            self.create_subscription(CameraExposureInfo, f"{ns}/{topics.CAMERA_EXPOSURE_INFO}",
                                     lambda m, s=side: self._write(s, "camera_info", m), topics.LATCHED_QOS)
            self.create_subscription(AppliedExposure, f"{ns}/{topics.APPLIED_EXPOSURE}",
                                     lambda m, s=side: self._on_exposure(s, m), topics.RECORD_QOS)
            self.create_subscription(Detection2DArray, f"{ns}/{topics.DETECTIONS}",
                                     lambda m, s=side: self._on_detections(s, m), topics.RECORD_QOS)
            self.create_subscription(Image, f"{ns}/{topics.IMAGE_RGB}",
                                     lambda m, s=side: self._on_rgb(s, m), topics.IMAGE_QOS)

    def _write(self, side: str, key: str, msg) -> None:
        self.writers[side].write(key, stamp_key(msg.header), serialize_message(msg))
        self.sides[side].last_message = time.monotonic()

    def _on_exposure(self, side: str, msg: AppliedExposure) -> None:
        state = self.sides[side]
        state.exposures[stamp_key(msg.header)] = int(msg.frame_index)
        now = time.monotonic()
        state.first_frame_t = state.first_frame_t or now
        state.last_frame_t = now
        self._write(side, "exposure", msg)

    def _on_detections(self, side: str, msg: Detection2DArray) -> None:
        index = self.sides[side].exposures.get(stamp_key(msg.header))
        if index is not None:
            self.sides[side].detected.add(index)
        self._write(side, "detections", msg)

    def _on_rgb(self, side: str, msg: Image) -> None:
        rgb = image_to_rgb(msg, f"/{side}/{topics.IMAGE_RGB}")
        self.sides[side].rgb_size = [int(msg.width), int(msg.height)]
        out = rgb_to_image(thumbnail(rgb, self.thumbnail_width), msg.header)
        self.sides[side].thumbnails += 1
        self._write(side, "thumbnail", out)


def _target_level_dn(method: str, ae_params: Dict) -> Optional[float]:
    """The level a method aims at (DN), when it has a level target (the loop's scores)."""
    from neural_ae_ros.ae import method_class
    from neural_ae_ros.imaging.sensor import SensorParams

    if not any(p.name == "target_level_fraction" for p in method_class(method).parameters):
        return None
    s = SensorParams.from_yaml()
    return s.black_level_dn + ae_params["target_level_fraction"] * (s.white_level_dn - s.black_level_dn)


def run_ab(method_a: str, method_b: str, scene_bag, out_dir, pace: str = "lockstep", frames: Optional[int] = None,
           timeout_s: Optional[float] = None, stall_timeout_s: float = 60.0, thumbnail_width: int = 160,
           latency: Optional[int] = None, progress: bool = True, on_started=None) -> Dict:
    """Run both sides, record, then return ``{"bags": {side: path}, "run": {...}}`` (scoring is
    :func:`neural_ae_ros.evaluation.ab_report.score_and_report`). ``on_started(log_dir, procs)``:
    called once all node processes are started (tests inject faults there)."""
    if pace not in PACES:
        raise ValueError(f"pace {pace!r}: expected one of {', '.join(PACES)}")
    from neural_ae_ros.parameters import AE_METHODS

    for m in (method_a, method_b):
        if m not in AE_METHODS:
            raise ValueError(f"unknown AE method {m!r}; expected one of {', '.join(AE_METHODS)}")
    scene_info, labels = load_scene_labels(scene_bag)  # before anything starts
    fps = float(scene_info.get("fps") or 0)
    if fps <= 0:
        raise ValueError(f"{scene_bag}: /scene/info has no frame rate (fps)")
    n = len(labels) if frames is None else min(int(frames), len(labels))
    if n < 1:
        raise ValueError(f"--frames {frames}: nothing to play")
    out_dir = Path(out_dir)
    bag_dir = out_dir / "bags"
    existing = [p for p in (bag_dir / s for s in SIDES) if p.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]}: already exists; choose a new --out or remove it")
    saved_environ = dict(os.environ)
    try:
        return _run(method_a, method_b, Path(scene_bag), out_dir, bag_dir, pace, n, fps, scene_info, labels,
                    timeout_s, stall_timeout_s, thumbnail_width, latency, progress, on_started)
    finally:
        if dict(os.environ) != saved_environ:
            os.environ.clear()
            os.environ.update(saved_environ)


def _run(method_a, method_b, scene_bag, out_dir, bag_dir, pace, n, fps, scene_info, labels, timeout_s,
         stall_timeout_s, thumbnail_width, latency, progress, on_started) -> Dict:
    configure_middleware()
    clean_stale_shm()
    ae_defaults = node_defaults("ae_controller")
    cam_defaults = node_defaults("camera_bridge")
    latency = cam_defaults["actuation_latency_frames"] if latency is None else int(latency)
    methods = {"a": method_a, "b": method_b}
    camera = {"source": "bag", "bag_path": str(scene_bag.resolve()), "max_frames": n, "frame_rate_hz": fps,
              "actuation_latency_frames": latency, "lockstep_timeout_s": 1.0, "max_frames_in_flight": 2,
              "in_flight_timeout_s": 3.0,
              "pace": "pipeline" if pace == "lockstep" else "frame_rate"}
    graphs = {s: perception_pipeline(methods[s], s, camera=dict(camera), wait_for_recorder=True) for s in SIDES}
    domain = free_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    bag_dir.mkdir(parents=True, exist_ok=True)
    ab_info = {"scene_bag": str(scene_bag), "frames": n, "fps": fps, "pace": pace, "actuation_latency_frames": latency,
               "ros_domain_id": domain, "sides": {}}
    for s in SIDES:
        ae_used = {**ae_defaults, "method": methods[s]}
        ab_info["sides"][s] = {"method": methods[s], "frames": n, "namespace": s,
                               "target_level_dn": _target_level_dn(methods[s], ae_used),
                               "ae_parameters": ae_used}
    writers: Dict[str, SideBagWriter] = {}
    sides = {s: SideState(s, n) for s in SIDES}
    procs: List[tuple] = []
    deaths: List[Dict] = []
    bar = None
    t0 = time.monotonic()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO, domain_id=domain)
    try:
        for s in SIDES:
            writers[s] = SideBagWriter(bag_dir / s, s, {**ab_info, "side": s, "method": methods[s]}, scene_info,
                                       labels[:n])
        recorder = ABRecorder(writers, sides, thumbnail_width)
        executor = SingleThreadedExecutor()
        executor.add_node(recorder)
        for s in SIDES:
            for node in graphs[s]:
                log = open(log_dir / f"{s}_{node.executable}.log", "w")
                procs.append((s, node.executable, start_node_process(node.module, ros_args(node), log, env), log))
        if on_started is not None:
            on_started(log_dir, [(s, m, p) for s, m, p, _ in procs])
        # no fixed limit by default: a side ends complete or stalled (the cameras stop at n frames)
        deadline = time.monotonic() + timeout_s if timeout_s else float("inf")
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=2 * n, desc=f"A/B {method_a} vs {method_b}", unit="frame", leave=False, mininterval=1.0)
        for state in sides.values():
            state.last_message = time.monotonic() + 60.0  # start-up (model loading) is not a stall
        while True:
            executor.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if bar is not None:
                bar.update(sum(len(st.detected) for st in sides.values()) - bar.n)
            for s, name, p, _ in procs:
                if p.poll() is not None and not any(d["pid"] == p.pid for d in deaths):
                    deaths.append({"namespace": s, "node": name, "pid": p.pid, "exit_code": p.returncode,
                                   "after_s": round(now - t0, 2), "frames_recorded_before": len(sides[s].detected),
                                   "log": str(log_dir / f"{s}_{name}.log")})
                    print(f"ab-eval: side {s}: {name} ended (exit code {p.returncode}) after "
                          f"{len(sides[s].detected)} of {n} frames; the run goes on, its frames are reported missing",
                          flush=True)
            for st in sides.values():
                if st.end_reason is None:
                    if st.complete():
                        st.end_reason = "complete"
                    elif (len(st.exposures) >= n and now - st.last_message > 2.0
                          and any(d["namespace"] == st.name and d["node"] in ("isp_node", "detector_node") for d in deaths)):
                        st.end_reason = (f"all {n} frames captured; no more detections can come (a node of the "
                                         f"side died) after {len(st.detected)} of {n} frames")
                    elif len(st.exposures) >= n and now - st.last_message > DRAIN_S:
                        st.end_reason = (f"all {n} frames captured; nothing more came for {DRAIN_S:.0f} s: "
                                         f"{n - len(st.detected)} without detections")
                    elif now - st.last_message > stall_timeout_s:
                        st.end_reason = (f"stalled: nothing recorded for {stall_timeout_s:.0f} s after "
                                         f"{len(st.detected)} of {n} frames")
            if all(st.end_reason for st in sides.values()):
                break
            if now > deadline:
                for st in sides.values():
                    st.end_reason = st.end_reason or f"run time limit reached after {len(st.detected)} of {n} frames"
                break
        # the last messages in flight
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()
        recorder.destroy_node()
    finally:
        if bar is not None:
            bar.close()
        with signals_ignored():
            stop_processes([p for _, _, p, _ in procs])
            for *_, log in procs:
                log.close()
            rclpy.try_shutdown()
            run_end = {"node_deaths": deaths, "end_reason": {s: st.end_reason for s, st in sides.items()},
                       "rgb_size": {s: st.rgb_size for s, st in sides.items()},
                       "fps": {s: _fps(st) for s, st in sides.items()}, "wall_s": round(time.monotonic() - t0, 2)}
            for w in writers.values():
                w.close(run_end)
            clean_stale_shm(min_age_s=0.0)
    return {"bags": {s: str(bag_dir / s) for s in SIDES}, "logs": str(log_dir), "run": run_end}


def _fps(state: SideState) -> Optional[float]:
    if state.first_frame_t is None or state.last_frame_t is None or len(state.exposures) < 2:
        return None
    span = state.last_frame_t - state.first_frame_t
    return round((len(state.exposures) - 1) / span, 2) if span > 0 else None
