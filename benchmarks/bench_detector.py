#!/usr/bin/env python3
"""Detector speed (and, with --scenes, quality) at its input resolution.

    python benchmarks/bench_detector.py [--checkpoint PATH] [--frames 30] [--threads 2]
           [--scenes artifacts/scenes/test --max-scenes 100]

Times ``DetectorRuntime.detect`` on an rgb8 frame at the model's input size (default
checkpoint: 640x384), with and without the conv2 features, and on a 1920x1200 frame
(includes the resize). Goal (issue 4): >= 10 fps on 2 cores. With ``--scenes`` it also
prints AP@0.5 / mAP at e_base on those scenes (no flips, for speed).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from neural_ae_ros.detector import Detector, DetectorConfig, DetectorRuntime, load_detector  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="default: the shipped default checkpoint (random weights if absent)")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scenes", type=Path, help="also measure AP@0.5 at e_base on these scenes")
    ap.add_argument("--max-scenes", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        det = load_detector(args.checkpoint)
        src = str(args.checkpoint or "default checkpoint")
    except Exception as e:  # noqa: BLE001
        if args.checkpoint:
            raise
        print(f"(no default checkpoint: {e}; timing an untrained model)")
        det, src = DetectorRuntime(Detector(DetectorConfig())), "untrained"
    w, h = det.input_size
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame_src = "random noise"
    if args.scenes:  # time on a real rendered scene (decoding cost depends on the content)
        from neural_ae_ros.detector.dataset import LdrRenderer, load_scene_index, render_scenes

        rec = load_scene_index(args.scenes, det.classes)[:1]
        frame = render_scenes(rec, det.input_size, (1.0,), LdrRenderer(), seed=0, progress=False)[0].image
        frame_src = f"scene {rec[0].name} at e_base"
    big = torch.nn.functional.interpolate(torch.from_numpy(frame).permute(2, 0, 1)[None].float(),
                                          size=(1200, 1920), mode="bilinear", align_corners=False)
    big = big[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    rows = []
    for label, img, feats in ((f"{w}x{h} rgb8", frame, False), (f"{w}x{h} rgb8 + conv2", frame, True),
                              ("1920x1200 rgb8 (resize)", big, False)):
        det.detect(img, want_features=feats)
        ts = []
        for _ in tqdm(range(args.frames), desc=label, leave=False):
            t0 = time.perf_counter()
            det.detect(img, want_features=feats)
            ts.append(time.perf_counter() - t0)
        med = statistics.median(ts) * 1e3
        rows.append((label, med, min(ts) * 1e3, 1e3 / med))
    n_par = sum(p.numel() for p in det.model.parameters())
    print(f"Detector ({src}; {n_par / 1e6:.2f} M parameters), input {w}x{h}, {args.threads} threads, "
          f"{args.frames} frames of {frame_src}, torch {torch.__version__}")
    print(f"{'input':28s} {'median ms':>10s} {'min ms':>8s} {'fps':>7s}")
    for label, med, best, fps in rows:
        print(f"{label:28s} {med:10.1f} {best:8.1f} {fps:7.1f}  {'ok' if fps >= 10 else 'SLOW'} (goal >= 10 fps)")
    if args.scenes:
        from neural_ae_ros.detector.dataset import LdrRenderer, load_scene_index, render_scenes
        from neural_ae_ros.detector.evaluate import evaluate_rendered

        recs = load_scene_index(args.scenes, det.classes)[: args.max_scenes]
        samples = render_scenes(recs, det.input_size, (1.0,), LdrRenderer(), seed=1234, desc="render")
        r, per_img = evaluate_rendered(det, samples, hflip=False, progress=True)
        print(f"\nQuality at e_base on {len(samples)} scenes of {args.scenes} (no flips):")
        print(r.table())
        print(f"batched inference: {per_img * 1e3:.1f} ms per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
