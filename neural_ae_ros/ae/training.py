"""``neural-ae train``: end-to-end training of an exposure policy with its detector (paper 000
Section 5.3), resumable, with a progress bar and a metadata file.

Training examples are the two frames of each scene written by ``neural-ae scenes``: frame 1 at
``kappa * e_base`` (log kappa uniform in [log 0.1, log 10]), the policy's one-step decision, frame
2 captured at the new exposure, detection loss on frame 2. Frame 1 is seen whole (its histograms
and conv2 features describe the full frame, as in the running loop); frame 2 is simulated on a
crop around a labelled object (``crop_size``), which keeps a training step CPU-sized without
changing object scale (the detector runs on full-resolution frames at inference).

* Learned methods (``histogram_nn``, ``semantic_nn``, ``hybrid_nn``): the exposure network and
  the detector train jointly; only the detection loss (+ a weighted L2 on the AE weights).
* Classical methods (``average``, ``gradient``): paper 000 Table 2's fairness: the detector is
  fine-tuned with that AE in the loop on the same data, so every method ends with its own
  detector.
"""
from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from neural_ae_ros.ae.end_to_end import base_exposure_batch, differentiable_split
from neural_ae_ros.ae.networks import NETWORK_METHODS, ExposureNet, build_network
from neural_ae_ros.detector.checkpoint import file_sha256, git_commit, load_checkpoint, save_checkpoint
from neural_ae_ros.detector.dataset import SceneRecord, load_scene_index
from neural_ae_ros.detector.loss import collate_targets, detection_loss
from neural_ae_ros.detector.model import OUTPUT_STRIDE
from neural_ae_ros.imaging import sensor as sensor_mod
from neural_ae_ros.imaging.histograms import histogram_stack_torch
from neural_ae_ros.imaging.isp import Isp, IspParams

__all__ = ["AeTrainConfig", "PairSample", "load_pairs", "train_ae", "save_ae_checkpoint",
           "load_ae_checkpoint", "AeCheckpointError", "AE_FORMAT", "TRAINABLE_METHODS"]

AE_FORMAT = "neural_ae_ros.ae_net/1"
CLASSICAL_METHODS = ("average", "gradient")
TRAINABLE_METHODS = tuple(NETWORK_METHODS) + CLASSICAL_METHODS


class AeCheckpointError(RuntimeError):
    """An exposure-network checkpoint could not be used; the message names the file and why."""


@dataclass
class AeTrainConfig:
    """Settings of one training run (stored in the metadata)."""

    method: str = "hybrid_nn"
    steps: int = 2000
    batch_size: int = 6
    lr_ae: float = 1e-3
    lr_detector: float = 1e-4
    l2_weight: float = 1e-4
    #: log-uniform exposure shift of frame 1 around e_base (paper: [0.1, 10]).
    kappa_range: Tuple[float, float] = (0.1, 10.0)
    #: (width, height) of the frame-2 crop, multiples of 16.
    crop_size: Tuple[int, int] = (320, 192)
    t_max_s: float = 0.015
    #: noise augmentation (paper 000 Section 5.2): the sensor's read and post-amplification noise
    #: are scaled by a factor drawn per step in this range (shot noise stays physical).
    noise_augmentation: Tuple[float, float] = (0.8, 1.25)
    seed: int = 0
    max_minutes: Optional[float] = None
    checkpoint_every: int = 100
    threads: int = 2


@dataclass
class PairSample:
    """Two consecutive radiance frames as RGGB mosaics (H, W) in e-/s and frame 2's labels."""

    frame1: torch.Tensor
    frame2: torch.Tensor
    boxes: np.ndarray
    labels: np.ndarray
    ignored: np.ndarray
    name: str


def _load_frames(rec: SceneRecord) -> Tuple[np.ndarray, np.ndarray]:
    with np.load(rec.path) as z:
        rad = z["radiance"]
        scale = z["radiance_scale"] if "radiance_scale" in z.files else np.ones(len(rad), np.float32)
        if rad.ndim != 4 or rad.shape[0] < 2:
            raise ValueError(f"{rec.path}: a training pair needs two frames, radiance has shape {rad.shape}")
        f1 = rad[0].astype(np.float32) * np.float32(np.asarray(scale).reshape(-1)[0])
        f2 = rad[-1].astype(np.float32) * np.float32(np.asarray(scale).reshape(-1)[-1])
    for f in (f1, f2):
        if not np.isfinite(f).all() or (f < 0).any():
            raise ValueError(f"{rec.path}: radiance has negative or non-finite values")
    return f1, f2


def load_pairs(scene_dir, max_scenes: Optional[int] = None, progress: bool = True) -> List[PairSample]:
    """Every scene of ``scene_dir`` as a two-frame pair (scenes without labels are kept: they
    teach the detector what is not an object)."""
    records = load_scene_index(scene_dir)
    if max_scenes:
        records = records[:max_scenes]
    out = []
    for rec in tqdm(records, desc="load pairs", unit="scene", disable=not progress):
        f1, f2 = _load_frames(rec)
        h, w = f1.shape[-2:]
        h2, w2 = h - h % 2, w - w % 2
        m1 = sensor_mod.bayer_sample_rggb(torch.from_numpy(f1[:, :h2, :w2]))
        m2 = sensor_mod.bayer_sample_rggb(torch.from_numpy(f2[:, :h2, :w2]))
        ign = rec.ignore_boxes if rec.ignore_boxes is not None else np.zeros((0, 4))
        out.append(PairSample(m1, m2, rec.boxes.astype(np.float32), rec.labels.copy(),
                              np.asarray(ign, np.float32).reshape(-1, 4), rec.name))
    return out


def _crop_origin(sample: PairSample, crop_wh: Tuple[int, int], rng: np.random.Generator) -> Tuple[int, int]:
    """Top-left (x, y), even, of a crop that holds a random labelled object's centre if any."""
    h, w = sample.frame2.shape
    cw, ch = min(crop_wh[0], w), min(crop_wh[1], h)
    if len(sample.boxes):
        b = sample.boxes[rng.integers(len(sample.boxes))]
        cx, cy = 0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])
        x = int(np.clip(cx - rng.uniform(0.2, 0.8) * cw, 0, w - cw))
        y = int(np.clip(cy - rng.uniform(0.2, 0.8) * ch, 0, h - ch))
    else:
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return x - x % 2, y - y % 2


def _crop_boxes(boxes: np.ndarray, x: int, y: int, cw: int, ch: int, min_visible: float = 0.5):
    """Boxes shifted into the crop; those less than ``min_visible`` inside are returned as ignored."""
    if not len(boxes):
        return np.zeros((0, 4), np.float32), np.zeros(0, bool)
    shifted = boxes - np.array([x, y, x, y], np.float32)
    clipped = shifted.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, cw)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, ch)
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0)
    keep = inside >= min_visible * np.maximum(area, 1e-6)
    return clipped, keep


# ------------------------------------------------------------------------------ policies
def classical_policy(method: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """u per frame of a (B, H, W) raw batch from a classical method (no gradient), through the
    project's own AE implementation (:mod:`neural_ae_ros.ae`)."""
    from neural_ae_ros.ae import Observation, make_method
    from neural_ae_ros.imaging.exposure import FrameExposure

    ae = make_method(method)
    sensor = sensor_mod.SensorParams.from_yaml()

    def decide(raw: torch.Tensor, e1: torch.Tensor) -> torch.Tensor:
        us = []
        for i in range(raw.shape[0]):
            ae.reset()
            mosaic = raw[i].round().clamp(0, sensor.white_level_dn).to(torch.int32).numpy().astype(np.uint16)
            obs = Observation.from_raw(mosaic, FrameExposure(float(e1[i]), 1.0, 0), int(sensor.white_level_dn),
                                       float(sensor.black_level_dn))
            us.append(float(ae.next_exposure(obs).adjustment_factor))
        return torch.tensor(us, dtype=raw.dtype)

    return decide


# ------------------------------------------------------------------------------ checkpoints
def save_ae_checkpoint(net: ExposureNet, path, metadata: Dict) -> Path:
    """``path`` (.pt: format, method, M_exp, weights) and ``.json`` metadata with its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": AE_FORMAT, "method": net.method, "m_exp": net.m_exp,
                "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}, tmp)
    tmp.replace(path)
    meta = dict(metadata, format=AE_FORMAT, method=net.method, sha256=file_sha256(path))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str))
    return path


def load_ae_checkpoint(path, expected_method: Optional[str] = None) -> Tuple[ExposureNet, Dict]:
    """Load an exposure network; :class:`AeCheckpointError` names the file and the reason
    (missing, corrupt, checksum mismatch, another method, weights that do not fit)."""
    path = Path(path)
    if not path.is_file():
        raise AeCheckpointError(f"{path}: no such exposure-network checkpoint")
    meta: Dict = {}
    mpath = path.with_suffix(".json")
    if mpath.is_file():
        try:
            meta = json.loads(mpath.read_text())
        except json.JSONDecodeError as e:
            raise AeCheckpointError(f"{mpath}: corrupt metadata JSON: {e}") from e
        if meta.get("sha256") and meta["sha256"] != file_sha256(path):
            raise AeCheckpointError(f"{path}: sha256 does not match its metadata {mpath} (corrupt or replaced file)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for corrupt files
        raise AeCheckpointError(f"{path}: not a readable torch checkpoint: {type(e).__name__}: {e}") from e
    if not isinstance(blob, dict) or blob.get("format") != AE_FORMAT:
        raise AeCheckpointError(f"{path}: not an exposure-network checkpoint (expected format {AE_FORMAT!r})")
    method = blob.get("method")
    if expected_method is not None and method != expected_method:
        raise AeCheckpointError(f"{path}: holds a {method!r} network, not {expected_method!r}")
    try:
        net = build_network(method, blob["state_dict"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise AeCheckpointError(f"{path}: weights do not fit the {method!r} network: {e}") from e
    return net.eval(), meta


# ------------------------------------------------------------------------------ training
def _batch(samples: Sequence[PairSample], idx: np.ndarray, cfg: AeTrainConfig, rng: np.random.Generator):
    lo, hi = cfg.kappa_range
    kappa = torch.tensor(np.exp(rng.uniform(math.log(lo), math.log(hi), len(idx))), dtype=torch.float32)
    f1, f2, boxes, labels, ignored = [], [], [], [], []
    cw, ch = cfg.crop_size
    for i in idx:
        s = samples[i]
        x, y = _crop_origin(s, (cw, ch), rng)
        f1.append(s.frame1)
        f2.append(s.frame2[y:y + ch, x:x + cw])
        b, keep = _crop_boxes(s.boxes, x, y, cw, ch)
        ig, _ = _crop_boxes(s.ignored, x, y, cw, ch, min_visible=0.0)
        boxes.append(torch.from_numpy(b[keep]))
        labels.append(torch.from_numpy(s.labels[keep]))
        ignored.append(torch.from_numpy(np.concatenate([ig, b[~keep]]) if len(b) else ig))
    return torch.stack(f1), torch.stack(f2), kappa, boxes, labels, ignored


def _step_loss(cfg, net, decide, detector, isp, sensor, batch, gen, noise_scale) -> Dict[str, torch.Tensor]:
    frame1, frame2, kappa, boxes, labels, ignored = batch
    base_sensor = sensor
    sensor = dataclasses.replace(sensor, read_noise_e=sensor.read_noise_e * noise_scale,
                                 post_noise_dn=sensor.post_noise_dn * noise_scale)
    e1 = kappa * base_exposure_batch(frame1, base_sensor)
    t1, k1 = differentiable_split(e1, cfg.t_max_s)
    with torch.no_grad():
        raw1 = sensor_mod.capture(frame1, t1[:, None, None], k1[:, None, None], sensor, generator=gen)
    if net is not None:
        hist = histogram_stack_torch(raw1, int(sensor.white_level_dn)) if "histograms" in net.inputs else None
        feats = detector.extract_features(isp(raw1).clamp(0, 1)) if "features" in net.inputs else None
        u = net(histograms=hist, features=feats)
    else:
        u = decide(raw1, e1)
    e2 = e1 * u
    t2, k2 = differentiable_split(e2, cfg.t_max_s)
    raw2 = sensor_mod.capture(frame2, t2[:, None, None], k2[:, None, None], sensor, generator=gen)
    rgb2 = isp(raw2).clamp(0, 1)
    out = detector(rgb2)
    grid = (rgb2.shape[-2] // OUTPUT_STRIDE, rgb2.shape[-1] // OUTPUT_STRIDE)
    targets = collate_targets(boxes, labels, detector.cfg.num_classes, grid, ignored)
    parts = detection_loss(out, targets)
    l2 = net.ae_weights_l2() if net is not None else torch.zeros(())
    return {"loss": parts["loss"] + cfg.l2_weight * l2, "detection": parts["loss"], "u": u.detach()}


def train_ae(scenes, out, cfg: AeTrainConfig, val_scenes=None, detector_init=None,
             max_scenes: Optional[int] = None, progress: bool = True, resume: bool = True,
             log=print) -> Dict:
    """Train ``cfg.method`` end to end; writes ``out`` (.pt AE weights for learned methods),
    ``out`` stem + ``_detector.pt`` (its detector) and the ``.json`` metadata; resumable from
    ``out`` stem + ``.resume.pt`` (written every ``checkpoint_every`` steps)."""
    if cfg.method not in TRAINABLE_METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; trainable: {', '.join(TRAINABLE_METHODS)}")
    if cfg.crop_size[0] % 16 or cfg.crop_size[1] % 16:
        raise ValueError(f"crop_size {cfg.crop_size} must be multiples of 16")
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    det_out = out.with_name(out.stem + "_detector.pt")
    resume_path = out.with_name(out.stem + ".resume.pt")
    t_start = time.time()
    samples = load_pairs(scenes, max_scenes, progress)
    if not samples:
        raise ValueError(f"{scenes}: no scenes")
    detector, det_meta = load_checkpoint(detector_init)
    sensor = sensor_mod.SensorParams.from_yaml()
    isp = Isp(IspParams.from_sensor(sensor))
    learned = cfg.method in NETWORK_METHODS
    torch.manual_seed(cfg.seed)
    net = ExposureNet(cfg.method) if learned else None
    decide = None if learned else classical_policy(cfg.method)
    groups = [{"params": list(detector.parameters()), "lr": cfg.lr_detector}]
    if net is not None:
        groups.append({"params": list(net.parameters()), "lr": cfg.lr_ae})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    history: Dict[str, list] = {"step": [], "loss": [], "detection": [], "log2_u_abs": []}
    step = 0
    rng = np.random.default_rng(cfg.seed)
    elapsed_before = 0.0
    if resume and resume_path.is_file():
        state = torch.load(resume_path, map_location="cpu", weights_only=False)
        if state.get("method") != cfg.method:
            raise ValueError(f"{resume_path}: resume state is for {state.get('method')!r}, not {cfg.method!r}")
        detector.load_state_dict(state["detector"])
        if net is not None:
            net.load_state_dict(state["net"])
        opt.load_state_dict(state["optimizer"])
        step, history, elapsed_before = state["step"], state["history"], state.get("elapsed_s", 0.0)
        rng = np.random.default_rng(cfg.seed + step)
        log(f"train {cfg.method}: resuming from {resume_path} at step {step}")

    def save_resume():
        torch.save({"method": cfg.method, "detector": detector.state_dict(),
                    "net": net.state_dict() if net is not None else None, "optimizer": opt.state_dict(),
                    "step": step, "history": history, "elapsed_s": elapsed_before + time.time() - t_start},
                   resume_path)

    detector.train()
    if net is not None:
        net.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.method}", unit="step", disable=not progress)
    base_lrs = [g["lr"] for g in opt.param_groups]
    stopped_early = False
    while step < cfg.steps:
        idx = rng.choice(len(samples), size=min(cfg.batch_size, len(samples)), replace=False)
        batch = _batch(samples, idx, cfg, rng)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        frac = step / max(1, cfg.steps)
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        parts = _step_loss(cfg, net, decide, detector, isp, sensor, batch, gen,
                           float(rng.uniform(*cfg.noise_augmentation)))
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 10.0)
        opt.step()
        step += 1
        history["step"].append(step)
        history["loss"].append(float(parts["loss"].detach()))
        history["detection"].append(float(parts["detection"].detach()))
        history["log2_u_abs"].append(float(parts["u"].log2().abs().mean()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(history['loss'][-20:]):.3f}",
                        u_ev=f"{np.mean(history['log2_u_abs'][-20:]):.2f}")
        if step % cfg.checkpoint_every == 0:
            save_resume()
        if cfg.max_minutes is not None and (elapsed_before + time.time() - t_start) / 60 > cfg.max_minutes:
            stopped_early = True
            break
    bar.close()
    save_resume()
    wall_s = elapsed_before + time.time() - t_start
    meta = {
        "method": cfg.method,
        "settings": asdict(cfg),
        "training_data": {"scenes": str(scenes), "count": len(samples), "max_scenes": max_scenes},
        "detector_init": str(detector_init or "shipped default"),
        "detector_checkpoint": det_out.name,
        "commit": git_commit(),
        "steps_done": step,
        "stopped_early": stopped_early,
        "wall_time_s": round(wall_s, 1),
        "machine": {"node": platform.node(), "processor": platform.processor() or platform.machine(),
                    "torch_threads": cfg.threads, "device": "cpu"},
        "history": history,
    }
    detector.eval()
    save_checkpoint(detector, det_out, dict(det_meta, ae_method=cfg.method, ae_training=meta["settings"],
                                            commit=meta["commit"]))
    if net is not None:
        save_ae_checkpoint(net.eval(), out, meta)
    else:
        out.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str))
    log(f"train {cfg.method}: {step} steps in {wall_s / 60:.1f} min; detector -> {det_out}"
        + (f", AE -> {out}" if net is not None else ""))
    return meta
