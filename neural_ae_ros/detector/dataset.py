"""Detector data: scene radiance -> simulated 12-bit capture -> ISP -> LDR RGB at the model size.

Scenes come from ``neural-ae scenes --split ... --out DIR`` (:mod:`neural_ae_ros.scenes`): a
directory with ``index.json`` and one ``.npz`` per scene holding the radiance in e-/s
(``(3, H, W)``) and the labelled boxes (classes of :data:`neural_ae_ros.classes.CLASS_NAMES`).

Exposure (paper 000, Section 5.3): the base exposure of a frame is

    e_base = 0.5 * M_white / (g1 * mean(radiance_e_per_s))      [seconds, K * t]

(the paper's ``gamma`` converts scene values to DN; here radiance is in e-/s and ``g1`` in
DN/e-, so ``g1 * radiance * e`` is the mean DN the frame would record without clipping).
The mean is over the Bayer mosaic the sensor sees. A capture at ``factor * e_base`` uses
Eq. 6 with ``T_max = 15 ms``: ``t = min(e, T_max)``, ``K = e / t`` (K is not capped at the
sensor's maximum analog gain: beyond it the extra gain acts like digital gain, which has
the same noise in this model), then :func:`neural_ae_ros.imaging.sensor.capture` adds shot, read and
ADC noise and quantises, and :class:`neural_ae_ros.imaging.isp.Isp` develops the raw frame.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from neural_ae_ros.imaging import sensor as sensor_mod
from neural_ae_ros.imaging.exposure import SIMULATION_LIMITS, base_exposure_s, split_exposure
from neural_ae_ros.imaging.isp import Isp, IspParams
from neural_ae_ros.classes import CLASS_NAMES
from .inference import resize_rgb

T_MAX_S = SIMULATION_LIMITS.max_exposure_time_s  # paper 000 Eq. 6


class SceneDataError(ValueError):
    """A scene directory or file that cannot be used."""


@dataclass
class SceneRecord:
    """One labelled scene frame: where its radiance is, its boxes in radiance pixels (xyxy),
    and the "ignored" (don't-care: heavily occluded, truncated or tiny) objects."""

    path: Path
    boxes: np.ndarray  # (M, 4) float, xyxy pixels of the radiance image
    labels: np.ndarray  # (M,) int class indices
    width: int
    height: int
    name: str = ""
    frame: int = -1  # index into the npz's frame axis (-1: the last = labelled frame)
    ignore_boxes: np.ndarray | None = None  # (K, 4)
    ignore_labels: np.ndarray | None = None  # (K,)
    kind: str | None = None

    def load_radiance(self) -> np.ndarray:
        """(3, H, W) float32 e-/s of the labelled frame."""
        try:
            with np.load(self.path) as z:
                if "radiance" not in z.files:
                    raise SceneDataError(f"{self.path}: no 'radiance' array (has {z.files})")
                rad = z["radiance"]
                if rad.ndim == 4:  # (F, 3, H, W) frames
                    rad = rad[self.frame]
                    scale = z["radiance_scale"][self.frame] if "radiance_scale" in z.files else 1.0
                else:
                    scale = z["radiance_scale"].reshape(-1)[0] if "radiance_scale" in z.files else 1.0
                rad = rad.astype(np.float32) * np.float32(scale)
        except SceneDataError:
            raise
        except (OSError, ValueError, KeyError, IndexError, EOFError) as e:
            raise SceneDataError(f"{self.path}: cannot read scene: {type(e).__name__}: {e}") from e
        if rad.ndim != 3 or rad.shape[0] != 3:
            raise SceneDataError(f"{self.path}: radiance must be (3, H, W) per frame, got {rad.shape}")
        if not np.isfinite(rad).all() or (rad < 0).any():
            raise SceneDataError(f"{self.path}: radiance has negative or non-finite values")
        return rad


def _objects(objs: list, classes: Sequence[str], where: str, need_box: bool = True):
    boxes, labels = [], []
    for o in objs:
        b = o.get("box", o.get("bbox"))
        c = o.get("cls", o.get("class"))
        if b is None:
            if need_box:
                raise SceneDataError(f"{where}: object without a box")
            continue
        if c not in classes:
            raise SceneDataError(f"{where}: unknown class {c!r}; expected one of {list(classes)}")
        boxes.append(b); labels.append(classes.index(c))
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(labels, np.int64)


def load_scene_index(scene_dir: str | Path, classes: Sequence[str] = CLASS_NAMES) -> list[SceneRecord]:
    """Read a scene set written by ``neural-ae scenes`` (:mod:`neural_ae_ros.scenes.generate`):
    ``index.json`` + per scene ``scene_K.npz`` (radiance) and ``scene_K.json`` (boxes)."""
    scene_dir = Path(scene_dir)
    index = scene_dir / "index.json"
    if not index.is_file():
        raise SceneDataError(f"{scene_dir}: no index.json (make scenes with "
                             f"`neural-ae scenes --split test --count N --out {scene_dir}`)")
    try:
        data = json.loads(index.read_text())
    except json.JSONDecodeError as e:
        raise SceneDataError(f"{index}: corrupt JSON: {e}") from e
    if not isinstance(data, dict) or not data.get("scenes"):
        raise SceneDataError(f"{index}: no scenes listed")
    idx_classes = data.get("classes")
    if idx_classes is not None and set(idx_classes) - set(classes):
        raise SceneDataError(f"{index}: classes {idx_classes} are not the detector's {list(classes)}")
    frame = int(data.get("labelled_frame", -1))
    classes = list(classes)
    records = []
    for i, e in enumerate(data["scenes"]):
        f, lf = e.get("file"), e.get("labels")
        if f is None or lf is None:
            raise SceneDataError(f"{index}: scene {i} lacks 'file' or 'labels'")
        where = f"{scene_dir / lf}"
        try:
            lab = json.loads((scene_dir / lf).read_text())
            fr = lab["frames"][frame]
        except (OSError, json.JSONDecodeError, KeyError, IndexError) as err:
            raise SceneDataError(f"{where}: cannot read labels: {type(err).__name__}: {err}") from err
        boxes, labels = _objects(fr.get("boxes", []), classes, where)
        ib, il = _objects(fr.get("ignored", []), classes, where, need_box=False)
        records.append(SceneRecord(scene_dir / f, boxes, labels, int(data.get("width", 0)),
                                   int(data.get("height", 0)), name=Path(f).stem, frame=frame,
                                   ignore_boxes=ib, ignore_labels=il, kind=e.get("kind")))
    return records


# ----------------------------------------------------------------------------- rendering
class LdrRenderer:
    """Radiance (3, H, W) e-/s -> LDR float RGB (3, h, w) [0, 1] at a given exposure factor."""

    def __init__(self, sensor: sensor_mod.SensorParams | None = None, isp: Isp | None = None):
        self.sensor = sensor if sensor is not None else sensor_mod.SensorParams.from_yaml()
        if isp is None:
            isp = Isp(IspParams.from_sensor(self.sensor))
        self.isp = isp.eval()

    @torch.no_grad()
    def render(self, radiance: np.ndarray | torch.Tensor, exposure_factor: float = 1.0,
               out_size: Sequence[int] | None = None, seed: int | None = None, noise: bool = True) -> torch.Tensor:
        rad = torch.as_tensor(radiance, dtype=torch.float32)
        mosaic = sensor_mod.bayer_sample_rggb(rad)
        try:
            e = exposure_factor * base_exposure_s(mosaic, self.sensor.g1_dn_per_e, self.sensor.white_level_dn)
        except ValueError as exc:
            raise SceneDataError(str(exc)) from exc
        t, k, _ = split_exposure(e, T_MAX_S, SIMULATION_LIMITS)
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        raw = sensor_mod.capture(mosaic, t, k, self.sensor, generator=gen, noise=noise)
        rgb = self.isp(raw)  # (3, H, W) (or half size with binning)
        if out_size is not None:
            rgb = resize_rgb(rgb[None], out_size)[0]
        return rgb.clamp_(0, 1)


def scale_boxes(boxes: np.ndarray, src_wh: Sequence[float], dst_wh: Sequence[float]) -> np.ndarray:
    sx, sy = dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1]
    return np.asarray(boxes, np.float64) * np.array([sx, sy, sx, sy])


@dataclass
class RenderedSample:
    image: np.ndarray  # (h, w, 3) uint8
    boxes: np.ndarray  # (M, 4) float32 in image pixels
    labels: np.ndarray  # (M,) int64
    name: str
    exposure_factor: float
    ignore_boxes: np.ndarray | None = None  # (K, 4) don't-care objects
    ignore_labels: np.ndarray | None = None

    def ground_truth(self) -> dict:
        return {"boxes": self.boxes, "labels": self.labels,
                "ignore_boxes": self.ignore_boxes if self.ignore_boxes is not None else np.zeros((0, 4)),
                "ignore_labels": self.ignore_labels if self.ignore_labels is not None else np.zeros(0, np.int64)}


def render_scenes(records: Sequence[SceneRecord], image_size: Sequence[int] | None, exposure_factors,
                  renderer: LdrRenderer | None = None, seed: int = 0, desc: str = "render",
                  progress: bool = True) -> list[RenderedSample]:
    """Render every scene at the given exposure factor(s) of e_base.

    ``exposure_factors``: a sequence (every scene at every factor, the same noise seed per
    scene for all factors, so factors differ only by exposure) or a callable
    ``f(rng) -> factor`` drawn once per scene (training jitter). ``image_size`` (w, h): resize
    the developed image (and boxes) to it; None keeps the scene's resolution.
    """
    renderer = renderer or LdrRenderer()
    out = []
    rng = np.random.default_rng(seed)
    it = tqdm(records, desc=desc, unit="scene", disable=not progress)
    for i, rec in enumerate(it):
        rad = rec.load_radiance()
        h, w = rad.shape[-2:]
        if h % 2 or w % 2:  # the Bayer pattern needs even sizes
            rad = rad[:, : h - h % 2, : w - w % 2]
        size = tuple(image_size) if image_size is not None else (rad.shape[-1], rad.shape[-2])
        boxes = scale_boxes(rec.boxes, (w, h), size).astype(np.float32)
        ib = scale_boxes(rec.ignore_boxes, (w, h), size).astype(np.float32) \
            if rec.ignore_boxes is not None else np.zeros((0, 4), np.float32)
        il = rec.ignore_labels.copy() if rec.ignore_labels is not None else np.zeros(0, np.int64)
        factors = [exposure_factors(rng)] if callable(exposure_factors) else exposure_factors
        for f in factors:
            rgb = renderer.render(rad, f, None if image_size is None else size, seed=seed * 1_000_003 + i)
            img = (rgb.permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
            out.append(RenderedSample(img, boxes, rec.labels.copy(), rec.name, float(f), ib, il))
    return out


# ----------------------------------------------------------------------------- training set
class DetectionDataset(torch.utils.data.Dataset):
    """Rendered samples with light augmentation: random scale (``scale_range``), random crop of
    ``crop_size`` (w, h) (the detector is fully convolutional: it trains on crops at the
    scene's resolution and runs on whole frames), horizontal flip, brightness / contrast
    jitter. Boxes less than 40 % inside the crop become don't-care (like the scene
    generator's occlusion rule).

    Items: (image float (3, h, w), boxes (M, 4), labels (M,), ignore_boxes (K, 4)).
    """

    def __init__(self, samples: Sequence[RenderedSample], augment: bool = True,
                 crop_size: Sequence[int] | None = None, scale_range: tuple[float, float] = (0.8, 1.25),
                 min_visible: float = 0.4, seed: int = 0):
        self.samples = list(samples)
        self.augment = augment
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.scale_range = scale_range
        self.min_visible = min_visible
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        img = torch.from_numpy(s.image).permute(2, 0, 1).float().div_(255.0)
        boxes = torch.from_numpy(s.boxes.astype(np.float32)).reshape(-1, 4)
        labels = torch.from_numpy(s.labels.astype(np.int64))
        ign = torch.from_numpy(np.asarray(s.ignore_boxes if s.ignore_boxes is not None else np.zeros((0, 4)),
                                          np.float32)).reshape(-1, 4)
        rng = self.rng
        if self.augment and self.scale_range != (1.0, 1.0):
            z = math.exp(rng.uniform(math.log(self.scale_range[0]), math.log(self.scale_range[1])))
            _, h, w = img.shape
            nh, nw = max(int(round(h * z)), 16), max(int(round(w * z)), 16)
            img = torch.nn.functional.interpolate(img[None], size=(nh, nw), mode="bilinear",
                                                  align_corners=False, antialias=z < 1)[0]
            sc = torch.tensor([nw / w, nh / h, nw / w, nh / h])
            boxes, ign = boxes * sc, ign * sc
        if self.crop_size is not None:
            cw, ch = self.crop_size
            _, h, w = img.shape
            if h < ch or w < cw:  # pad bottom/right with mid grey
                img = torch.nn.functional.pad(img, (0, max(0, cw - w), 0, max(0, ch - h)), value=0.45)
                _, h, w = img.shape
            x0 = int(rng.integers(0, w - cw + 1)) if self.augment else (w - cw) // 2
            y0 = int(rng.integers(0, h - ch + 1)) if self.augment else (h - ch) // 2
            img = img[:, y0:y0 + ch, x0:x0 + cw]
            off = torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
            nb = boxes - off
            area0 = (nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1])
            nb[:, 0::2] = nb[:, 0::2].clamp(0, cw)
            nb[:, 1::2] = nb[:, 1::2].clamp(0, ch)
            area1 = (nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1])
            keep = area1 >= self.min_visible * area0.clamp(min=1e-6)
            inside = area1 > 0
            ign = torch.cat([(ign - off), nb[~keep & inside]])
            ign[:, 0::2] = ign[:, 0::2].clamp(0, cw)
            ign[:, 1::2] = ign[:, 1::2].clamp(0, ch)
            ign = ign[(ign[:, 2] > ign[:, 0]) & (ign[:, 3] > ign[:, 1])]
            boxes, labels = nb[keep], labels[keep]
        if self.augment:
            if rng.random() < 0.5:
                w = img.shape[-1]
                img = img.flip(-1)
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
                ign = torch.stack([w - ign[:, 2], ign[:, 1], w - ign[:, 0], ign[:, 3]], 1)
            if rng.random() < 0.8:
                gain = math.exp(rng.uniform(-0.2, 0.2))
                contrast = math.exp(rng.uniform(-0.15, 0.15))
                m = img.mean()
                img = (((img - m) * contrast + m) * gain).clamp_(0, 1)
        return img.contiguous(), boxes.reshape(-1, 4), labels, ign.reshape(-1, 4)


def collate(batch):
    imgs = torch.stack([b[0] for b in batch])
    return imgs, [b[1] for b in batch], [b[2] for b in batch], [b[3] for b in batch]


def synthetic_samples(n: int, input_size: Sequence[int] = (384, 240), seed: int = 0,
                      num_classes: int = len(CLASS_NAMES)) -> list[RenderedSample]:
    """Tiny stand-in data for tests: coloured rectangles (colour = class) on a noisy background."""
    rng = np.random.default_rng(seed)
    w, h = input_size
    palette = np.array([[230, 40, 40], [40, 200, 40], [40, 80, 230], [230, 230, 40], [230, 40, 230],
                        [40, 230, 230]], np.uint8)
    out = []
    for i in range(n):
        img = rng.integers(40, 90, (h, w, 3)).astype(np.uint8)
        m = int(rng.integers(1, 5))
        boxes, labels = [], []
        for _ in range(m):
            bw, bh = rng.uniform(12, w / 3), rng.uniform(12, h / 3)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            c = int(rng.integers(0, num_classes))
            img[int(y0):int(y0 + bh), int(x0):int(x0 + bw)] = palette[c % len(palette)]
            boxes.append([int(x0), int(y0), int(x0 + bw), int(y0 + bh)])
            labels.append(c)
        out.append(RenderedSample(img, np.array(boxes, np.float32), np.array(labels, np.int64), f"syn{i}", 1.0))
    return out
