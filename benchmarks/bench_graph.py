#!/usr/bin/env python3
"""Whole perception graph: throughput to detections (fps) and per-stage latency from stamps.

Starts one side of an A/B run (``graph.perception_pipeline``: camera_bridge, histogram_node,
ae_controller, isp_node, detector_node; each its own process, real rclpy over shared-memory
Fast DDS) on the fast synthetic ``step_test`` source, and listens in this process. Every
message of a frame carries the camera's capture stamp, so the time from capture to the receipt
of each topic here is that topic's cumulative latency; a stage's latency is the difference of
consecutive cumulative latencies (the raw image's transport, histograms, ISP, detector).
Throughput = detections per second over the run (first to last detection).

Two pacings in one run, so their ratio is measured under the same load:
``pipeline`` with 1 and 2 frames in flight (the camera captures once the detections of the
frame before (last) came back: no frame dropped; what ``neural-ae ab-eval --pace lockstep``
runs), and ``frame_rate`` at 30 fps with no gate (frames the detector is too slow for are
dropped there; counted).

    python benchmarks/bench_graph.py [--frames 60] [--width 320 --height 192] [--method average]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_once(method: str, frames: int, width: int, height: int, pace: str, in_flight: int, namespace: str,
             timeout_s: float = 300.0) -> Dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from neural_ae_ros.graph import perception_pipeline, ros_args
    from neural_ae_ros.msg import AppliedExposure, HistogramStack
    from neural_ae_ros.ros import topics
    from neural_ae_ros.ros.convert import stamp_key
    from neural_ae_ros.ros.dds import clean_stale_shm, configure_middleware
    from neural_ae_ros.ros.loop import free_domain_id
    from neural_ae_ros.ros.processes import start_node_process, stop_processes

    configure_middleware()
    clean_stale_shm()
    camera = {"source": "drive", "drive": "step_test", "width": width, "height": height, "max_frames": frames,
              "frame_rate_hz": 30.0, "lockstep_timeout_s": 1.0 if pace == "pipeline" else 0.0,
              "max_frames_in_flight": in_flight, "pace": pace}
    graph = perception_pipeline(method, namespace, camera=camera, wait_for_recorder=True)
    domain = free_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    log_dir = Path(tempfile.mkdtemp(prefix="bench_graph_"))
    receipts: Dict[str, Dict[int, float]] = {k: {} for k in ("exposure", "image_raw", "histograms", "image_rgb",
                                                             "detections")}
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO, domain_id=domain)
    procs, logs = [], []
    try:
        node = rclpy.create_node("bench_graph")

        def recv(kind):
            def cb(msg):
                receipts[kind][stamp_key(msg.header)] = time.time_ns()
            return cb

        ns = f"/{namespace}"
        node.create_subscription(AppliedExposure, f"{ns}/{topics.APPLIED_EXPOSURE}", recv("exposure"), topics.RECORD_QOS)
        node.create_subscription(Image, f"{ns}/{topics.IMAGE_RAW}", recv("image_raw"), topics.IMAGE_QOS)
        node.create_subscription(HistogramStack, f"{ns}/{topics.HISTOGRAMS}", recv("histograms"), topics.RECORD_QOS)
        node.create_subscription(Image, f"{ns}/{topics.IMAGE_RGB}", recv("image_rgb"), topics.IMAGE_QOS)
        node.create_subscription(Detection2DArray, f"{ns}/{topics.DETECTIONS}", recv("detections"), topics.RECORD_QOS)
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        for n in graph:
            log = open(log_dir / f"{n.executable}.log", "w")
            logs.append(log)
            procs.append(start_node_process(n.module, ros_args(n), log, env))
        deadline = time.monotonic() + timeout_s
        last_change, last_count = time.monotonic(), 0
        while time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
            count = len(receipts["detections"])
            if count != last_count or len(receipts["exposure"]) < frames:
                last_change, last_count = time.monotonic(), count
            # done: every captured frame detected, or nothing new for 15 s after the last capture
            # (frames the detector dropped never come; its first inference may take seconds)
            if len(receipts["exposure"]) >= frames and (count >= len(receipts["exposure"])
                                                         or time.monotonic() - last_change > 15.0):
                break
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
        node.destroy_node()
    finally:
        stop_processes(procs)
        for log in logs:
            log.close()
        rclpy.try_shutdown()
        clean_stale_shm(min_age_s=0.0)
    det = receipts["detections"]
    out = {"pace": pace, "in_flight": in_flight, "frames_captured": len(receipts["exposure"]),
           "frames_detected": len(det)}
    if len(det) > 1:
        t = sorted(det.values())
        out["fps_to_detections"] = (len(t) - 1) / ((t[-1] - t[0]) / 1e9)
    stages = [("image_raw", "transport raw"), ("histograms", "histograms"), ("image_rgb", "isp"),
              ("detections", "detector")]
    cumulative = {}
    for kind, _ in stages:
        cumulative[kind] = {s: (r - s) / 1e6 for s, r in receipts[kind].items()}
    out["stages_ms"] = {}
    prev = None
    for kind, label in stages:
        if prev is None:
            vals = list(cumulative[kind].values())
        elif kind == "histograms":  # histograms and ISP both start from image_raw
            vals = [cumulative[kind][s] - cumulative["image_raw"][s] for s in cumulative[kind] if s in cumulative["image_raw"]]
        else:
            vals = [cumulative[kind][s] - cumulative[prev][s] for s in cumulative[kind] if s in cumulative[prev]]
        out["stages_ms"][label] = (float(np.median(vals)), float(np.percentile(vals, 95))) if vals else None
        if kind != "histograms":
            prev = kind
    tot = list(cumulative["detections"].values())
    out["stages_ms"]["capture -> detections"] = (float(np.median(tot)), float(np.percentile(tot, 95))) if tot else None
    return out


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--method", default="average")
    ap.add_argument("--only", choices=("pipeline1", "pipeline2", "frame_rate"), default=None,
                    help="run one configuration only")
    args = ap.parse_args(argv)
    print(f"bench_graph: {args.method}, {args.width}x{args.height}, {args.frames} frames per configuration; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    configs = [("pipeline", 1), ("pipeline", 2), ("frame_rate", 0)]
    if args.only:
        configs = [c for c in configs if (c[0] if c[0] == "frame_rate" else f"{c[0]}{c[1]}") == args.only]
    results = []
    for k, (pace, in_flight) in enumerate(configs):
        r = run_once(args.method, args.frames, args.width, args.height, pace, in_flight, f"bench{k}")
        results.append(r)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    labels = list(results[0]["stages_ms"])
    print(f"{'pace':>10} {'in flight':>9} {'captured':>8} {'detected':>8} {'fps':>6} | "
          + " | ".join(f"{lb:>22}" for lb in labels))
    print(f"{'':>47} | " + " | ".join(f"{'median / p95 ms':>22}" for _ in labels))
    for r in results:
        cells = [("n/a" if r["stages_ms"].get(lb) is None else f"{r['stages_ms'][lb][0]:.1f} / {r['stages_ms'][lb][1]:.1f}")
                 for lb in labels]
        fps = r.get("fps_to_detections")
        print(f"{r['pace']:>10} {r['in_flight']:>9} {r['frames_captured']:>8} {r['frames_detected']:>8} "
              f"{'n/a' if fps is None else format(fps, '.2f'):>6} | " + " | ".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
