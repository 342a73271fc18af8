#!/usr/bin/env python3
"""Camera bridge throughput and per-hop latency over the shared-memory Fast DDS profile.

Starts camera_bridge (cheap synthetic 'step_test' source, so the sensor simulation and the
transport are measured, not scene rendering) and histogram_node as separate processes, and
records in this process:
  * frames received vs published, sustained fps at the requested rate,
  * hop latency camera -> here for image_raw (stamp at publish to receipt),
  * camera -> histogram_node -> here for histograms (includes histogram extraction).
Usage: python benchmarks/bench_transport.py [--width 1920 --height 1200 --fps 30 --frames 150]
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args()

    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    from neural_ae_ros.ros.dds import configure_middleware

    print("middleware:", configure_middleware())
    import rclpy
    from sensor_msgs.msg import Image
    from tqdm import tqdm

    from neural_ae_ros.msg import AppliedExposure, HistogramStack
    from neural_ae_ros.ros import topics

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cam = subprocess.Popen([sys.executable, "-m", "neural_ae_ros.ros.camera_bridge", "--ros-args",
                            "-p", "drive:=step_test", "-p", f"width:={args.width}", "-p", f"height:={args.height}",
                            "-p", f"frame_rate_hz:={args.fps}", "-p", f"max_frames:={args.frames}",
                            "-p", "wait_for_image_subscribers:=2", "-p", "wait_for_exposure_subscribers:=1"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    hist = subprocess.Popen([sys.executable, "-m", "neural_ae_ros.ros.histogram_node"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    img_lat, hist_lat, recv_t, exposures = [], [], [], {}
    image_stamps = set()
    rclpy.init()
    node = rclpy.create_node("bench_transport")
    clock = node.get_clock()

    def lat(msg):
        now = clock.now().nanoseconds
        return (now - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) * 1e-6

    def on_image(msg):
        img_lat.append(lat(msg))
        recv_t.append(time.monotonic())
        image_stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))

    node.create_subscription(Image, topics.IMAGE_RAW, on_image, topics.IMAGE_QOS)
    node.create_subscription(HistogramStack, topics.HISTOGRAMS, lambda m: hist_lat.append(lat(m)), topics.RECORD_QOS)
    node.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, lambda m: exposures.__setitem__(m.frame_index, (m.header.stamp.sec, m.header.stamp.nanosec)),
                             topics.RECORD_QOS)
    deadline = time.monotonic() + 60 + 3 * args.frames / args.fps
    with tqdm(total=args.frames, desc="frames", unit="frame", mininterval=1.0) as bar:
        drain_until = None
        while time.monotonic() < deadline:
            complete = len(exposures) >= args.frames and len(img_lat) >= len(exposures) and len(hist_lat) >= len(img_lat)
            if complete:
                break
            if len(exposures) >= args.frames:  # all published: give stragglers 2 s, then count losses
                drain_until = drain_until or time.monotonic() + 2.0
                if time.monotonic() > drain_until:
                    break
            rclpy.spin_once(node, timeout_sec=0.1)
            bar.update(len(exposures) - bar.n)
            if cam.poll() is not None and len(exposures) < args.frames:
                break
    for p in (cam, hist):
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
    rclpy.shutdown()

    fps = (len(recv_t) - 1) / (recv_t[-1] - recv_t[0]) if len(recv_t) > 1 else 0.0
    mb = args.width * args.height * 2 / 1e6
    print(f"\n{args.width}x{args.height} bayer_rggb16 ({mb:.1f} MB/frame) at {args.fps:g} fps requested")
    print(f"  frames published (exposure records): {len(exposures)}  images received: {len(img_lat)}  "
          f"lost: {len(exposures) - len(img_lat)}"
          + (f" (frames {sorted(i for i, st in exposures.items() if st not in image_stamps)})"
             if len(exposures) > len(img_lat) else ""))
    print(f"  sustained receive rate: {fps:.1f} fps")
    for name, v in (("camera -> subscriber (image_raw)", img_lat),
                    ("camera -> histogram_node -> subscriber (histograms)", hist_lat)):
        if v:
            a = np.array(v)
            print(f"  {name}: median {np.median(a):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, max {a.max():.1f} ms")


if __name__ == "__main__":
    main()
