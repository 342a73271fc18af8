#!/usr/bin/env python3
"""Benchmark scene generation: frames per second, per scene kind, and a 2000-pair extrapolation.

    python benchmarks/bench_scenes.py [--width 640 --height 384 --count 40 --workers 1]

Renders ``--count`` training pairs (two frames each) in memory with a progress bar (per kind
timing), then writes the same number through ``generate_split`` (rendering + float16 storage +
JSON), and prints frames/s and the time a 2000-pair training set would take with the same
number of workers.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from neural_ae_ros.scenes import drives, generate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--count", type=int, default=40, help="pairs")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--drive-frames", type=int, default=30, help="frames of each drive to time")
    args = ap.parse_args(argv)

    per_kind = defaultdict(list)
    t0 = time.perf_counter()
    for k in tqdm(range(args.count), desc="render pairs", unit="pair"):
        t = time.perf_counter()
        sc = generate.make_scene("train", args.seed, k, args.width, args.height, pairs=True)
        per_kind[sc["meta"]["kind"]].append(time.perf_counter() - t)
    render_s = time.perf_counter() - t0
    frames = 2 * args.count
    print(f"\nrender only: {frames} frames of {args.width}x{args.height} in {render_s:.1f} s -> "
          f"{frames / render_s:.2f} frames/s (1 process)")
    for kind, ts in sorted(per_kind.items()):
        print(f"  {kind:12s} n={len(ts):3d}  {2 * len(ts) / sum(ts):6.2f} frames/s")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        idx = generate.generate_split(tmp, "train", args.count, seed=args.seed + 1, width=args.width,
                                      height=args.height, workers=args.workers)
        full_s = time.perf_counter() - t
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    fps = frames / full_s
    print(f"generate_split (render + store, {args.workers} worker(s)): {fps:.2f} frames/s, "
          f"{size / args.count / 1e6:.2f} MB per pair")
    print(f"extrapolated 2000-pair training set: {2 * 2000 / fps / 60:.1f} min with {args.workers} worker(s), "
          f"{2000 * size / args.count / 1e9:.1f} GB")
    print(f"dynamic range of these scenes: median {idx['dynamic_range_db']['median']:.1f} dB")

    for name in drives.DRIVES:
        src = drives.DriveSource(name, args.width, args.height, seed=args.seed, num_frames=max(args.drive_frames, 2))
        t = time.perf_counter()
        for i in tqdm(range(args.drive_frames), desc=f"drive {name}", unit="frame", leave=False):
            src.frame(i)
        dt = time.perf_counter() - t
        print(f"drive {name:18s} {args.drive_frames / dt:6.2f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
