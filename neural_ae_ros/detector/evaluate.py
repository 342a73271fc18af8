"""``neural-ae detector-eval``: detector AP@0.5 on scenes captured at exposure factors of e_base.

For every factor f (default 0.1, 1, 10) every scene is captured at ``f * e_base`` (paper 000
Sec. 5.3; same noise seed per scene for all factors), developed by the ISP, resized to the
detector's input and detected; AP@0.5 per class and mAP (paper 000 Sec. 6.1, COCO-style
101-point interpolation, see :mod:`neural_ae_ros.evaluation.detection_metrics`) are computed over the scenes and,
with ``hflip`` (the paper's protocol, default), their horizontal mirror images too.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from neural_ae_ros.evaluation.detection_metrics import evaluate_detections, hflip_annotation
from neural_ae_ros.evaluation.reports import write_report
from .dataset import LdrRenderer, load_scene_index, render_scenes
from .inference import DetectorRuntime, load_detector


def evaluate_rendered(det: DetectorRuntime, samples, hflip: bool = True, batch_size: int = 8,
                      progress: bool = False, desc: str = "detect"):
    dets, gts = [], []
    w = det.input_size[0]
    times = []
    for i in tqdm(range(0, len(samples), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = samples[i:i + batch_size]
        x = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in chunk])
        t0 = time.perf_counter()
        out = det.detect_tensor(x)
        out_f = det.detect_tensor(x.flip(-1)) if hflip else None
        times.append((time.perf_counter() - t0) / (len(chunk) * (2 if hflip else 1)))
        for j, s in enumerate(chunk):
            gt = s.ground_truth()
            dets.append(out[j].as_dict()); gts.append(gt)
            if hflip:
                dets.append(out_f[j].as_dict()); gts.append(hflip_annotation(gt, w))
    r = evaluate_detections(dets, gts, class_names=det.classes)
    return r, float(np.mean(times)) if times else float("nan")


def detector_eval(
    scenes: str | Path,
    checkpoint: str | Path | None = None,
    exposure_factors: Sequence[float] = (0.1, 1.0, 10.0),
    hflip: bool = True,
    seed: int = 1234,
    max_scenes: int | None = None,
    json_out: str | Path | None = None,
    progress: bool = True,
    log=print,
    score_threshold: float = 0.01,
) -> dict:
    det = load_detector(checkpoint, score_threshold=score_threshold)
    records = load_scene_index(scenes, det.classes)
    if max_scenes:
        records = records[:max_scenes]
    renderer = LdrRenderer()
    results = []
    for f in exposure_factors:
        samples = render_scenes(records, det.input_size, (f,), renderer, seed=seed,
                                desc=f"render x{f:g}", progress=progress)
        r, per_img = evaluate_rendered(det, samples, hflip=hflip, progress=progress, desc=f"detect x{f:g}")
        mean_level = float(np.mean([s.image.mean() for s in samples]) / 255)
        results.append({"exposure_factor": float(f), "map": None if np.isnan(r.map) else r.map,
                        "ap": r.ap_dict(), "num_gt": {k: int(v) for k, v in zip(r.class_names, r.num_gt)},
                        "mean_rgb_level": mean_level, "detector_ms_per_image": per_img * 1e3})
        log(f"exposure x{f:g}: mAP@0.5 = {r.map * 100:.2f}  (mean image level {mean_level:.2f})")
    report = {
        "scenes": str(Path(scenes).resolve()),
        "num_scenes": len(records),
        "num_images_per_factor": len(records) * (2 if hflip else 1),
        "hflip": hflip,
        "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else "default",
        "checkpoint_commit": det.metadata.get("commit"),
        "classes": list(det.classes),
        "input_size": list(det.input_size),
        "metric": "AP at IoU 0.5, COCO 101-point interpolation (pycocotools COCOeval), mAP over classes with ground truth",
        "exposure": "factor x e_base, e_base = 0.5 M_white / (g1 mean radiance) (paper 000 Sec. 5.3)",
        "seed": seed,
        "score_threshold": score_threshold,
        "map": {f"{r['exposure_factor']:g}": r["map"] for r in results},
        "ap": {f"{r['exposure_factor']:g}": r["ap"] for r in results},
        "factors": results,
    }
    log(format_table(report))
    if json_out:
        write_report(report, json_out, log)
    return report


def format_table(report: dict) -> str:
    facs = report["factors"]
    head = f"{'class':14s}" + "".join(f"{'x' + format(r['exposure_factor'], 'g'):>10s}" for r in facs)
    lines = [f"AP@0.5 (%) on {report['num_images_per_factor']} images per factor "
             f"({report['num_scenes']} scenes{' + flips' if report['hflip'] else ''})", head]
    for c in report["classes"]:
        vals = [r["ap"][c] for r in facs]
        lines.append(f"{c:14s}" + "".join(f"{'n/a':>10s}" if v is None else f"{v * 100:10.2f}" for v in vals))
    lines.append(f"{'mAP':14s}" + "".join(f"{'n/a':>10s}" if r['map'] is None else f"{r['map'] * 100:10.2f}"
                                          for r in facs))
    return "\n".join(lines)
