"""Decision time per frame of every AE method at 1920x1200 on one core (paper 000 Section 4;
issue 7: histogram_nn under 1 ms beyond the histograms).

Prints, per frame (median over repeats, torch.set_num_threads(1)):

* the 59 x 256 histogram stack of a 1920x1200 RGGB mosaic (what every method gets);
* each method's time beyond the histograms (``next_exposure`` on an Observation that already
  holds them; ``gradient`` also reads the raw mosaic);
* semantic methods beyond the detector's conv2 features: the detector-side encoder (channel
  compression + pyramid pooling of the 640x384 input's 128 x 96 x 160 conv2 map) and the
  controller-side decision from the pooled vector, separately; plus the conv2 extraction itself
  for scale (few repeats);
* bytes per frame on the wire: the whole conv2 FeatureMap vs the pooled SemanticFeatures.

Shipped weights (neural_ae_ros/data/ae/<method>.pt) are used when present; otherwise randomly
initialised networks of the same shape (same cost), and the output says so.

    .venv/bin/python benchmarks/bench_ae_decision.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neural_ae_ros.ae import Observation, make_method
from neural_ae_ros.ae.networks import ExposureNet
from neural_ae_ros.ae.neural import POOLED_SIZE, SemanticEncoder, default_weights
from neural_ae_ros.ae.training import save_ae_checkpoint
from neural_ae_ros.imaging.exposure import FrameExposure
from neural_ae_ros.imaging.histograms import histogram_stack

WIDTH, HEIGHT = 1920, 1200
LEARNED = ("histogram_nn", "semantic_nn", "hybrid_nn")


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def weights_for(method: str, tmp: Path):
    """(path, 'shipped' | 'random init') of ``method``'s weights."""
    shipped = default_weights(method)
    if shipped.is_file():
        return shipped, "shipped"
    torch.manual_seed(0)
    return save_ae_checkpoint(ExposureNet(method).eval(), tmp / f"{method}.pt", {"note": "benchmark"}), "random init"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    scene = rng.uniform(0.05, 2.0, size=(HEIGHT // 16, WIDTH // 16)).repeat(16, 0).repeat(16, 1)
    raw = np.clip(64 + 900 * scene + rng.normal(0, 8, (HEIGHT, WIDTH)), 0, 4095).astype(np.uint16)
    exposure = FrameExposure(0.005, 1.0, 0)
    print(f"AE decision time per frame, {WIDTH}x{HEIGHT} RGGB mosaic, 1 torch thread, median of {args.repeats} "
          f"(machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}: shared and noisy, compare ratios within this run)")
    t_hist = median_ms(lambda: histogram_stack(raw, 4095, return_mean=True), max(20, args.repeats // 4))
    hist, mean = histogram_stack(raw, 4095, return_mean=True)
    print(f"  histograms (59 x 256 stack + mean level): {t_hist:8.3f} ms")

    conv2 = torch.randn(1, 128, 384 // 4, 640 // 4).relu()  # the detector's conv2 map of a 640x384 input
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        print("  beyond the histograms:")
        for name in ("average", "gradient"):
            ae = make_method(name)
            obs = Observation(exposure, mean_level_dn=mean, raw=raw, histograms=hist)
            print(f"    {name:<13} {median_ms(lambda: ae.next_exposure(obs), args.repeats):8.3f} ms")
        for name in LEARNED:
            path, origin = weights_for(name, tmp)
            ae = make_method(name, weights=str(path))
            if name == "histogram_nn":
                obs = Observation(exposure, mean_level_dn=mean, histograms=hist)
                t = median_ms(lambda: ae.next_exposure(obs), args.repeats)
                goal = "goal < 1 ms: " + ("met" if t < 1.0 else "NOT met")
                print(f"    {name:<13} {t:8.3f} ms  ({goal}; weights: {origin})")
                continue
            encoder = SemanticEncoder(path, name)
            t_enc = median_ms(lambda: encoder.encode(conv2), args.repeats)
            pooled = encoder.encode(conv2)
            obs = Observation(exposure, mean_level_dn=mean, histograms=hist, features=pooled)
            t_dec = median_ms(lambda: ae.next_exposure(obs), args.repeats)
            print(f"    {name:<13} {t_enc + t_dec:8.3f} ms beyond the detector's conv2 features = "
                  f"{t_enc:.3f} ms encoder (detector node: compression + pyramid pooling) + {t_dec:.3f} ms decision "
                  f"(ae_controller, from the pooled vector{' and the histograms' if name == 'hybrid_nn' else ''}; "
                  f"weights: {origin})")

    try:
        from neural_ae_ros.detector.inference import load_detector

        det = load_detector(None)
        rgb = torch.rand(1, 3, 384, 640)
        with torch.no_grad():
            t_feat = median_ms(lambda: det.model.extract_features(rgb), 3, warmup=1)
        print(f"  for scale: the detector's conv2 features of a 640x384 input: {t_feat:8.1f} ms (median of 3)")
    except Exception as exc:  # noqa: BLE001 - the scale line is optional
        print(f"  for scale: detector features not measured ({type(exc).__name__}: {exc})")

    full_bytes = 4 * 128 * 96 * 160
    pooled_bytes = 4 * POOLED_SIZE
    serialized = ""
    try:
        from rclpy.serialization import serialize_message

        from neural_ae_ros.msg import FeatureMap, SemanticFeatures

        fm = FeatureMap(layer="conv2", channels=128, height=96, width=160)
        fm.data = np.zeros(128 * 96 * 160, np.float32).tolist()
        sf = SemanticFeatures(method="hybrid_nn", ae_weights_sha256="0" * 64, input_width=640, input_height=384)
        sf.data = np.zeros(POOLED_SIZE, np.float32).tolist()
        serialized = (f"; serialized messages: FeatureMap {len(serialize_message(fm)):,} B, SemanticFeatures "
                      f"{len(serialize_message(sf)):,} B")
    except Exception as exc:  # noqa: BLE001 - without the built interfaces only the payloads are printed
        serialized = f" (messages not serialized: {type(exc).__name__})"
    print(f"  on the wire per frame (640x384 detector input): conv2 map {full_bytes:,} B payload, pooled vector "
          f"{pooled_bytes:,} B payload{serialized}")


if __name__ == "__main__":
    main()
