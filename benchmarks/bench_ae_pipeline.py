#!/usr/bin/env python3
"""Per-frame cost of the AE pipeline pieces at full IMX249 resolution (1920 x 1200), 1 core.

Stages timed (median and 95th percentile over ``--iters`` frames):

* memory read baseline: one pass over the raw frame (``raw.sum()``) and a frame copy
* histogram extraction: 59 x 256 stack + mean green level (paper 000 Section 4.1)
* average AE + EMA: AverageAE + ExposureController (Eq. 5 EMA, Eq. 6 split, clamping)
* histograms + average AE + EMA: the whole classical per-frame path (goal <= 1 ms)
* gradient AE: Shim et al. 2018 on the 1/4-resolution green plane, + controller
* sensor capture, camera path: ``capture_realtime`` (one summed Gaussian, uint16 out into a
  reused buffer; goal <= 10 ms on one core)
* sensor capture, training path: ``capture`` (two Gaussian draws, float out), for comparison

The "x sum" / "x copy" columns divide the stage time by the time of one arithmetic pass
(``raw.sum()``) / one copy (``np.copy``, memory bandwidth) over the frame. "cpu ms" is the
thread's CPU time (``time.thread_time``): on a shared machine the wall time also counts the
time the process waited for a core, the CPU time does not (it still counts cache and
hyper-thread contention).

    python benchmarks/bench_ae_pipeline.py [--iters 200] [--width 1920 --height 1200]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neural_ae_ros.ae import ExposureController, Observation, make_method  # noqa: E402
from neural_ae_ros.imaging.exposure import CameraExposureInfo, FrameExposure  # noqa: E402
from neural_ae_ros.imaging.histograms import histogram_stack  # noqa: E402
from neural_ae_ros.imaging.sensor import SensorParams, capture, capture_realtime  # noqa: E402


def textured_scene(h: int, w: int, mean_e_per_s: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tex = (np.sin(xx / 9.0) * np.cos(yy / 13.0) > 0) * np.float32(0.8) + np.float32(0.2)
    blocks = np.exp(rng.normal(0, 0.8, (h // 16 + 1, w // 16 + 1))).astype(np.float32)
    blocks = blocks.repeat(16, 0).repeat(16, 1)[:h, :w]
    scene = tex * blocks
    return scene * np.float32(mean_e_per_s / scene.mean())


def time_it(fn: Callable[[], object], iters: int, warmup: int, bar: tqdm):
    """(wall ms, thread CPU ms) per call."""
    for _ in range(warmup):
        fn()
    wall, cpu = np.empty(iters), np.empty(iters)
    for i in range(iters):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        wall[i] = time.perf_counter() - t0
        cpu[i] = time.thread_time() - c0
        bar.update(1)
    return wall * 1e3, cpu * 1e3


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--iters", type=int, default=200, help="timed frames per stage")
    ap.add_argument("--capture-iters", type=int, default=40, help="timed frames for the sensor capture")
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    params = SensorParams.from_yaml()
    h, w = args.height, args.width
    scene = textured_scene(h, w, mean_e_per_s=2e5)
    phi = torch.from_numpy(scene)
    t_exp, gain = 0.01, 1.0
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        raw = capture(phi, t_exp, gain, params, gen).numpy().astype(np.uint16)

    white, black = params.white_level_dn, params.black_level_dn
    camera = CameraExposureInfo.from_yaml()
    avg_ctrl = ExposureController(make_method("average"), camera, smoothing="paper_ema", ema_mu=0.9)
    grad_ctrl = ExposureController(make_method("gradient"), camera, smoothing="paper_ema", ema_mu=0.9)
    exposure = FrameExposure(t_exp, gain, 0)
    hist_mean = histogram_stack(raw, white, return_mean=True)
    obs_mean = Observation(exposure, mean_level_dn=hist_mean[1], histograms=hist_mean[0],
                           white_level_dn=white, black_level_dn=black)
    obs_raw = Observation(exposure, raw=raw, white_level_dn=white, black_level_dn=black)
    out_buf = torch.empty_like(phi)

    def full_classical():
        hist, mean = histogram_stack(raw, white, return_mean=True)
        obs = Observation(exposure, mean_level_dn=mean, histograms=hist,
                          white_level_dn=white, black_level_dn=black)
        return avg_ctrl.update(obs)

    raw_buf = np.empty((h, w), np.uint16)

    def capture_camera():
        return capture_realtime(phi, t_exp, gain, params, gen, out=raw_buf)

    def capture_training():
        with torch.no_grad():
            return capture(phi, t_exp, gain, params, gen, out=out_buf)

    make_method_cache = {"gradient": make_method("gradient")}
    stages: Dict[str, tuple] = {
        "frame read (raw.sum)": (lambda: raw.sum(dtype=np.uint64), args.iters),
        "frame copy (np.copy)": (lambda: np.copy(raw), args.iters),
        "histograms 59x256 + mean": (lambda: histogram_stack(raw, white, return_mean=True), args.iters),
        "average AE + EMA/split": (lambda: avg_ctrl.update(obs_mean), args.iters),
        "hist + average AE + EMA": (full_classical, args.iters),
        "gradient AE (1/4 green)": (lambda: make_method_cache["gradient"].next_exposure(obs_raw), args.iters),
        "gradient AE + EMA/split": (lambda: grad_ctrl.update(obs_raw), args.iters),
        "capture, camera path": (capture_camera, args.capture_iters),
        "capture, training path": (capture_training, args.capture_iters),
    }

    total = sum(n for _, n in stages.values())
    results: Dict[str, tuple] = {}
    with tqdm(total=total, desc="benchmark", unit="frame", leave=False) as bar:
        for name, (fn, n) in stages.items():
            bar.set_postfix_str(name)
            results[name] = time_it(fn, n, args.warmup, bar)

    def med(name, cpu=False):
        return float(np.median(results[name][1 if cpu else 0]))

    read_ms, copy_ms = med("frame read (raw.sum)"), med("frame copy (np.copy)")
    read_cpu = med("frame read (raw.sum)", cpu=True)
    print(f"AE pipeline per-frame cost, {w}x{h} RGGB uint16 frame ({raw.nbytes / 1e6:.1f} MB), "
          f"torch {torch.__version__} threads={torch.get_num_threads()}, numpy {np.__version__}, "
          f"python {platform.python_version()}, cpus={os.cpu_count()}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'stage':<28} {'median ms':>10} {'p95 ms':>9} {'min ms':>8} {'cpu ms':>8} {'x sum':>7} "
          f"{'x copy':>7} {'n':>5}")
    print("-" * 89)
    for name, (ms, cpu) in results.items():
        m, p95 = float(np.median(ms)), float(np.percentile(ms, 95))
        print(f"{name:<28} {m:>10.3f} {p95:>9.3f} {ms.min():>8.3f} {float(np.median(cpu)):>8.3f} "
              f"{m / read_ms:>7.1f} {m / copy_ms:>7.1f} {ms.size:>5d}")
    print("-" * 89)
    print("x sum / x copy = median / median of 'frame read (raw.sum)' / 'frame copy (np.copy)' "
          "(one arithmetic pass / one bandwidth-bound pass over the frame).\n"
          "cpu ms = median thread CPU time. The machine may be shared with other jobs: 'min' is the least "
          "disturbed run.")
    classical, classical_cpu = med("hist + average AE + EMA"), med("hist + average AE + EMA", cpu=True)
    cam, cam_cpu = med("capture, camera path"), med("capture, camera path", cpu=True)
    ref, ref_cpu = med("capture, training path"), med("capture, training path", cpu=True)
    print(f"histograms + average AE: {classical:.3f} ms wall, {classical_cpu:.3f} ms cpu = "
          f"{classical / read_ms:.1f}x / {classical_cpu / read_cpu:.1f}x one read of the frame "
          f"(goal <= 1 ms: {'met' if min(classical, classical_cpu) <= 1.0 else 'NOT met'} on cpu time)")
    print(f"sensor capture, camera path: {cam:.2f} ms wall, {cam_cpu:.2f} ms cpu "
          f"({ref_cpu / cam_cpu:.1f}x less cpu than the training path's {ref_cpu:.2f} ms; "
          f"goal <= 10 ms: {'met' if cam_cpu <= 10.0 else 'NOT met'} on cpu time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
