#!/usr/bin/env python3
"""Full-resolution loop rate from a scene bag, and the bag's size per frame.

Runs ``neural-ae loop --bag BAG`` (camera bridge + histogram node + AE controller, separate
processes, real rclpy over shared-memory Fast DDS) and prints the frame rate the camera
sustained, frames lost, frames that carried a command, and MB per bag frame.

Without ``--bag`` it writes a synthetic 1920 x 1200 scene bag first (format v2, a textured
log-normal scene with a tunnel entry and exit; seconds to write, where rendering a built-in
drive at this size takes ~5 s per frame: record one with
``neural-ae record-scene --drive panorama_pan --frames 90 --width 1920 --height 1200``
and pass it with ``--bag`` for a rendered scene). Decoding speed and size do not depend on
the content, except with ``--compress``.

    python benchmarks/bench_loop_bag.py [--bag BAG] [--frames 90] [--method average]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neural_ae_ros.scenes.illumination_events import IlluminationEvent  # noqa: E402
from neural_ae_ros.scenes.scene_bag import SceneBagWriter  # noqa: E402


def synthetic_bag(path: Path, frames: int, width: int, height: int, fps: float, compress: bool) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.exp(rng.normal(0.0, 1.2, (height // 8 + 1, width // 8 + 1))).astype(np.float32)
    base = base.repeat(8, 0).repeat(8, 1)[:height, :width] * (1.2 + np.sin(xx / 17.0) * np.cos(yy / 23.0))
    base *= np.float32(2e5 / base.mean())
    rgb = np.stack([base * 0.8, base, base * 0.7])
    entry, leave = frames // 3, 2 * frames // 3
    events = [IlluminationEvent(entry, 1e-3, "tunnel_entry", entry / fps),
              IlluminationEvent(leave, 1e3, "tunnel_exit", leave / fps)]
    info = dict(drive="synthetic_tunnel", frames=frames, events=[e.to_dict() for e in events])
    with SceneBagWriter(path, width, height, fps, info, compress=compress) as w:
        for i in tqdm(range(frames), desc="write synthetic bag", unit="frame", leave=False):
            factor = 1e-3 if entry <= i < leave else 1.0
            w.write(i, rgb * np.float32(factor), [], events=[e for e in events if e.frame_index == i])
    return path


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bag", type=Path, default=None, help="scene bag to replay (default: write a synthetic one)")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--method", default="average")
    ap.add_argument("--compress", action="store_true", help="synthetic bag with zstd chunks")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_loop_bag_"))
    bag = args.bag or synthetic_bag(tmp / "bag", args.frames, args.width, args.height, 30.0, args.compress)
    files = [f for f in Path(bag).rglob("*") if f.is_file()]
    from neural_ae_ros.scenes.scene_bag import read_scene_bag

    info = read_scene_bag(bag).info
    bag_frames = int(info.get("frames") or args.frames)
    mb_per_frame = sum(f.stat().st_size for f in files) / 1e6 / bag_frames
    out = tmp / "loop.json"
    exe = Path(sys.executable).with_name("neural-ae")
    cmd = [str(exe) if exe.exists() else "neural-ae", "loop", "--bag", str(bag), "--frames", str(args.frames),
           "--method", args.method, "--json", str(out)]
    t0 = time.monotonic()
    try:
        subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        wall = time.monotonic() - t0
        r = json.loads(out.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the synthetic bag is 0.4 GB at 1920x1200
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"scene bag {bag}: {info.get('format')} {info.get('width')}x{info.get('height')} "
          f"{info.get('encoding', '?')}, {bag_frames} frames, {mb_per_frame:.2f} MB per frame")
    print(f"loop --bag ({args.method}, latency {r['actuation_latency_frames']}): {r['fps']:.1f} fps "
          f"(target {r['target_fps']:.0f}), {r['frames_published']}/{r['frames_requested']} frames, "
          f"{r['frames_lost']} lost, {r['frames_with_command']} with a command; {wall:.0f} s wall incl. "
          f"start-up; cpus={os.cpu_count()}, load average {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
