#!/usr/bin/env python3
"""ISP speed at 1920x1200 (the IMX249 frame): per-frame time and fps of ``Isp.to_rgb8`` (the
isp_node path) and of the differentiable ``Isp.forward`` (training path, no grad), for
full-resolution bilinear / Malvar demosaicing and the half-resolution 2x2 binning option.

    python benchmarks/bench_isp.py [--frames 30] [--threads 2] [--height 1200 --width 1920]

Goal (issue 4): under 33 ms per frame (30 fps) on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from neural_ae_ros.imaging.isp import Isp, IspParams  # noqa: E402


def synthetic_raw(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A 12-bit RGGB frame with smooth structure, some saturation and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.45 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    raw = 64 + base * 4400 + rng.normal(0, 20, (h, w))
    return np.clip(raw, 0, 4095).astype(np.uint16)


def psnr_report(black: float = 64.0, white: float = 4095.0) -> list[str]:
    """PSNR of our demosaics against OpenCV's (independent implementation) and against the
    truth, on the RGGB mosaic of a real HDR panorama crop (same raw for all)."""
    import os

    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        import cv2
    except ImportError:
        return ["PSNR: opencv-python-headless not installed, skipped"]
    from neural_ae_ros.imaging.isp import psnr
    from neural_ae_ros.imaging.sensor import bayer_sample_rggb

    pano = Path(__file__).resolve().parent.parent / "neural_ae_ros" / "data" / "panoramas" / "courtyard.exr"
    img = cv2.imread(str(pano), cv2.IMREAD_UNCHANGED)
    if img is None:
        return [f"PSNR: cannot read {pano}"]
    crop = np.clip(img[140:380, 300:620, ::-1].astype(np.float64), 0, None)
    rgb = np.clip(crop / np.percentile(crop, 99) * 0.9, 0, 1).transpose(2, 0, 1).astype(np.float32)
    raw = np.round(black + bayer_sample_rggb(rgb) * (white - black)).astype(np.uint16)
    ours = {}
    for m in ("bilinear", "malvar"):
        with torch.no_grad():
            ours[m] = Isp(IspParams(demosaic=m)).linear_rgb(torch.from_numpy(raw.astype(np.float32))).numpy()
    cv_in = np.clip(raw.astype(np.int32) - int(black), 0, None).astype(np.uint16)
    cv_b = cv2.cvtColor(cv_in, cv2.COLOR_BayerBG2RGB).astype(np.float64).transpose(2, 0, 1) / (white - black)
    inner = (slice(None), slice(2, -2), slice(2, -2))
    return [
        "PSNR on the same 12-bit RGGB raw (courtyard.exr crop 320x240, linear RGB, peak 1):",
        f"  ours bilinear vs OpenCV bilinear (COLOR_BayerBG2RGB): {psnr(ours['bilinear'][inner], cv_b[inner]):.1f} dB "
        f"(interior), {psnr(ours['bilinear'], cv_b):.1f} dB (whole image, borders differ)",
        f"  ours Malvar   vs OpenCV bilinear:                    {psnr(ours['malvar'][inner], cv_b[inner]):.1f} dB",
        f"  vs truth: ours bilinear {psnr(ours['bilinear'][inner], rgb[inner]):.2f} dB, OpenCV bilinear "
        f"{psnr(cv_b[inner], rgb[inner]):.2f} dB, ours Malvar {psnr(ours['malvar'][inner], rgb[inner]):.2f} dB",
    ]


def time_it(fn, frames: int, desc: str) -> list[float]:
    fn()  # warm-up (LUT, allocator)
    times = []
    for _ in tqdm(range(frames), desc=desc, leave=False):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    raw = synthetic_raw(args.height, args.width)
    raw_t = torch.from_numpy(raw.astype(np.float32))
    results = []
    configs = [("to_rgb8", "bilinear", False), ("to_rgb8", "malvar", False), ("to_rgb8", "bilinear", True),
               ("forward", "bilinear", False), ("forward", "bilinear", True)]
    for path, demosaic, binning in configs:
        isp = Isp(IspParams(demosaic=demosaic, binning=binning))
        if path == "to_rgb8":
            fn = lambda: isp.to_rgb8(raw)  # noqa: E731
        else:
            def fn():
                with torch.no_grad():
                    return isp(raw_t)
        out = fn()
        times = time_it(fn, args.frames, f"{path} {demosaic} binning={binning}")
        med, best = statistics.median(times) * 1e3, min(times) * 1e3
        oh, ow = (out.shape[0], out.shape[1]) if path == "to_rgb8" else tuple(out.shape[-2:])
        results.append(dict(path=path, demosaic=demosaic, binning=binning, out=f"{ow}x{oh}",
                            median_ms=round(med, 2), min_ms=round(best, 2), fps=round(1e3 / med, 1)))
    print(f"ISP on a {args.width}x{args.height} RGGB frame, {args.threads} threads, {args.frames} frames "
          f"(torch {torch.__version__})")
    print(f"{'path':9s} {'demosaic':9s} {'binning':8s} {'output':10s} {'median ms':>10s} {'min ms':>8s} {'fps':>7s}")
    for r in results:
        ok = "ok" if r["median_ms"] < 33.3 else "SLOW"
        print(f"{r['path']:9s} {r['demosaic']:9s} {str(r['binning']):8s} {r['out']:10s} "
              f"{r['median_ms']:10.2f} {r['min_ms']:8.2f} {r['fps']:7.1f}  {ok} (goal < 33 ms)")
    for line in psnr_report():
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
