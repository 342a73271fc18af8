"""``neural-ae train-detector``: train the detector on well-exposed LDR renders of scenes.

This is the "pretrained on LDR" stage of paper 000 (Table 2): scenes rendered around the
base exposure ``e_base`` (Sec. 5.3) with light augmentation (exposure jitter of +-0.5 EV,
random scale 0.8-1.25, random crops at the scene resolution, flips, brightness / contrast
jitter). The detector is fully convolutional: it trains on crops and runs on whole frames. The result is a checkpoint ``.pt`` and
its metadata ``.json`` (classes, input size, training data, git commit, settings, metrics).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from neural_ae_ros.classes import CLASS_NAMES
from neural_ae_ros.evaluation.detection_metrics import evaluate_detections
from .checkpoint import save_checkpoint
from .dataset import (DetectionDataset, LdrRenderer, RenderedSample, collate, load_scene_index,
                      render_scenes)
from .loss import collate_targets, detection_loss
from .model import OUTPUT_STRIDE, Detector, DetectorConfig
from .postprocess import decode


@dataclass
class TrainConfig:
    """Detector training settings (AdamW, linear warm-up then cosine learning-rate schedule)."""

    epochs: int = 30
    batch_size: int = 16  # crops per step
    lr: float = 2e-3  # peak AdamW learning rate, after warm-up
    weight_decay: float = 1e-4
    warmup_steps: int = 50  # optimizer steps of linear warm-up
    #: renders per training scene, each at a factor drawn log-uniformly in exposure_jitter
    renders_per_scene: int = 1
    #: exposure factor range (x e_base) of the training renders: +-0.5 EV
    exposure_jitter: tuple[float, float] = (0.71, 1.41)
    #: training crop (w, h) at the scene's resolution; None trains on whole frames
    crop_size: tuple[int, int] | None = (320, 192)
    max_minutes: float | None = None
    seed: int = 0
    threads: int | None = None
    val_every: int = 5


def evaluate_model(model: Detector, samples: Sequence[RenderedSample], batch_size: int = 16):
    """AP@0.5 of a model on rendered samples (their own pixel frame)."""
    model.eval()
    dets, gts = [], []
    with torch.inference_mode():
        for i in range(0, len(samples), batch_size):
            chunk = samples[i:i + batch_size]
            x = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in chunk])
            out = model(x)
            for s, d in zip(chunk, decode(out["heatmap"], out["box"])):
                dets.append(d.as_dict())
                gts.append(s.ground_truth())
    return evaluate_detections(dets, gts, class_names=model.cfg.classes)


def train_on_samples(
    model: Detector,
    train_samples: Sequence[RenderedSample],
    cfg: TrainConfig,
    val_samples: Sequence[RenderedSample] | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """Train in place. Returns a history dict (loss per epoch, validation mAP)."""
    torch.manual_seed(cfg.seed)
    ds = DetectionDataset(train_samples, augment=True, crop_size=cfg.crop_size, seed=cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
                                         drop_last=len(ds) > cfg.batch_size, generator=g, num_workers=0)
    steps_total = max(1, cfg.epochs * len(loader))
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.dim() <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)

    def progress_at(step):
        """Fraction of training done: by steps, or by time when a time budget is set."""
        p = (step - cfg.warmup_steps) / max(1, steps_total - cfg.warmup_steps)
        if cfg.max_minutes:
            p = max(p, (time.time() - t0) / 60 / cfg.max_minutes)
        return min(max(p, 0.0), 1.0)

    def lr_at(step):
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress_at(step))))

    w, h = cfg.crop_size if cfg.crop_size is not None else model.cfg.input_size
    grid = (h // OUTPUT_STRIDE, w // OUTPUT_STRIDE)
    history = {"epoch_loss": [], "val_map": [], "stopped_early": False}
    t0 = time.time()
    out_of_time = False
    step = 0
    bar = tqdm(total=steps_total, desc="train-detector", unit="step", disable=not progress)
    for epoch in range(cfg.epochs):
        model.train()
        losses = []
        for imgs, boxes, labels, ignore in loader:
            for gp in opt.param_groups:
                gp["lr"] = lr_at(step)
            targets = collate_targets(boxes, labels, model.cfg.num_classes, grid, ignore)
            out = model(imgs)
            parts = detection_loss(out, targets)
            opt.zero_grad(set_to_none=True)
            parts["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            losses.append(float(parts["loss"].detach()))
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-20:]):.3f}",
                            heat=f"{float(parts['heatmap']):.3f}", box=f"{float(parts['box']):.3f}")
            out_of_time = cfg.max_minutes is not None and (time.time() - t0) / 60 > cfg.max_minutes
            if out_of_time:
                break
        history["epoch_loss"].append(float(np.mean(losses)) if losses else float("nan"))
        last = epoch == cfg.epochs - 1
        if val_samples and ((epoch + 1) % cfg.val_every == 0 or last or out_of_time):
            r = evaluate_model(model, val_samples)
            history["val_map"].append({"epoch": epoch + 1, "map": r.map, "ap": r.ap_dict()})
            log(f"epoch {epoch + 1}: loss {history['epoch_loss'][-1]:.3f}  val mAP@0.5 {r.map * 100:.2f}")
        if out_of_time and not last:
            history["stopped_early"] = True
            log(f"stopping in epoch {epoch + 1} (step {step}): time budget of {cfg.max_minutes} min used")
            break
    bar.close()
    history["epochs_run"] = len(history["epoch_loss"])
    history["steps"] = step
    history["minutes"] = (time.time() - t0) / 60
    return history


def train_detector(
    scenes: str | Path,
    out: str | Path,
    val_scenes: str | Path | None = None,
    input_size: Sequence[int] = (640, 384),
    train_cfg: TrainConfig | None = None,
    max_scenes: int | None = None,
    progress: bool = True,
    log=print,
    init_checkpoint: str | Path | None = None,
) -> dict:
    """Render the scenes, train, save ``out`` (.pt) + ``.json``. Returns the metadata.

    ``init_checkpoint``: start from these weights (fine-tuning / continuing a run) instead
    of a random initialisation; its classes must be the six of paper 000."""
    cfg = train_cfg or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    records = load_scene_index(scenes)
    if max_scenes:
        records = records[:max_scenes]
    renderer = LdrRenderer()
    lo, hi = cfg.exposure_jitter
    log(f"rendering {len(records)} training scenes x {cfg.renders_per_scene} at {input_size[0]}x{input_size[1]}, "
        f"exposure {lo:g}-{hi:g} x e_base")
    jitter = lambda rng: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))  # noqa: E731
    train_samples = []
    for r in range(cfg.renders_per_scene):
        train_samples += render_scenes(records, input_size, jitter, renderer, seed=cfg.seed + 17 * r,
                                       desc=f"render train {r + 1}/{cfg.renders_per_scene}", progress=progress)
    val_samples = None
    if val_scenes:
        vrec = load_scene_index(val_scenes)
        val_samples = render_scenes(vrec, input_size, (1.0,), renderer, seed=cfg.seed + 1,
                                    desc="render val", progress=progress)
    init_meta = None
    if init_checkpoint:
        from .checkpoint import load_checkpoint

        model, init_meta = load_checkpoint(init_checkpoint, expected_classes=CLASS_NAMES)
        model.cfg.input_size = tuple(input_size)  # fully convolutional: the run size may change
        log(f"starting from {init_checkpoint}")
    else:
        model = Detector(DetectorConfig(classes=CLASS_NAMES, input_size=tuple(input_size)))
    history = train_on_samples(model, train_samples, cfg, val_samples, progress=progress, log=log)
    n_obj = np.bincount(np.concatenate([r.labels for r in records]) if records else np.zeros(0, int),
                        minlength=len(CLASS_NAMES))
    try:
        idx = json.loads((Path(scenes) / "index.json").read_text())
        scene_set = {k: idx.get(k) for k in ("format", "split", "seed", "count", "width", "height", "storage")}
    except (OSError, ValueError):
        scene_set = {}
    meta = {
        "training_data": {
            "scenes": str(Path(scenes).resolve()),
            "scene_set": scene_set,
            "num_scenes": len(records),
            "objects_per_class": {c: int(n) for c, n in zip(CLASS_NAMES, n_obj)},
            "rendering": "sensor.capture (config/sensor_imx249.yaml) + Isp (config/isp.yaml) at "
                         "e_base = 0.5 M_white / (g1 mean radiance) (paper 000 Sec. 5.3)",
            "exposure_jitter": list(cfg.exposure_jitter),
            "renders_per_scene": cfg.renders_per_scene,
            "crop_size": list(cfg.crop_size) if cfg.crop_size else None,
            "validation_scenes": str(Path(val_scenes).resolve()) if val_scenes else None,
        },
        "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "initialised_from": None if not init_checkpoint else {
            "checkpoint": str(Path(init_checkpoint).resolve()),
            "training_data": (init_meta or {}).get("training_data"),
            "training": (init_meta or {}).get("training"),
            "history": (init_meta or {}).get("history"),
        },
        "history": history,
        "metrics": {"val_map_at_0.5": history["val_map"][-1]["map"] if history["val_map"] else None,
                    "val_ap_at_0.5": history["val_map"][-1]["ap"] if history["val_map"] else None},
    }
    pt, js = save_checkpoint(model, out, meta)
    log(f"saved {pt} ({pt.stat().st_size / 1e6:.2f} MB) and {js}")
    return meta
