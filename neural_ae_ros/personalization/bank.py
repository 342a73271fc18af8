"""Re-exposure bank: every scene captured at a grid of exposures, the exact analogue of paper 001
Section 5.3's Lightroom re-exposures (-2 .. +2 EV in steps of 0.2).

Our scenes hold radiance, so a re-exposure is a real capture: the radiance is sampled on the
RGGB mosaic, exposed at ``2**o * e_base`` (``e_base``: paper 000 Sec. 5.3; split into time and
gain by the project's Eq. 6 with T_max), captured with the sensor model's noise
(:func:`neural_ae_ros.imaging.sensor.capture`) and developed by the ISP
(:class:`neural_ae_ros.imaging.isp.Isp`), then resized to the network input (64 x 64). The
same noise seed is used for all offsets of a scene, so its frames differ only by exposure.

The grid spans ``-GRID_HALF_SPAN_EV .. +GRID_HALF_SPAN_EV`` (3 EV) so that every expert's window
of -2 .. +2 EV around its preferred exposure (|p| <= 1 EV) lies on it. The bank is cached as
one ``.npz`` (uint8 frames, offsets, preferences) keyed by the scene set and the settings.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from neural_ae_ros.detector.dataset import LdrRenderer, SceneDataError, load_scene_index
from neural_ae_ros.imaging import sensor as sensor_mod

from .attention_net import INPUT_SIZE
from .experts import EXPERTS, SceneView

#: Paper 001 Sec. 5.3: re-exposures in steps of 0.2 EV, -2 .. +2 around the reference.
STEP_EV = 0.2
WINDOW_HALF_SPAN_EV = 2.0
GRID_HALF_SPAN_EV = 3.0
BANK_FORMAT = "neural_ae_ros.reexposure_bank/1"


def grid_offsets(half_span_ev: float = GRID_HALF_SPAN_EV, step_ev: float = STEP_EV) -> np.ndarray:
    n = int(round(half_span_ev / step_ev))
    return np.round(np.arange(-n, n + 1) * step_ev, 6)


@dataclass
class ReexposureBank:
    """``frames`` uint8 (S, K, 3, h, w) at ``offsets_ev`` (K,) from e_base; ``preferences_ev``
    (S, E) of the experts ``expert_names``; ``names`` of the scenes."""

    frames: np.ndarray
    offsets_ev: np.ndarray
    preferences_ev: np.ndarray
    expert_names: List[str]
    names: List[str]
    source: str = ""

    @property
    def num_scenes(self) -> int:
        return int(self.frames.shape[0])

    def preference(self, expert: str) -> np.ndarray:
        """(S,) preferred offsets (EV from e_base) of one expert; ``mean``: the experts' average
        (paper 001 Table 5's "mean" model)."""
        if expert == "mean":
            return self.preferences_ev.mean(axis=1)
        try:
            return self.preferences_ev[:, self.expert_names.index(expert)]
        except ValueError:
            raise ValueError(f"expert {expert!r} not in the bank ({self.expert_names})") from None

    def window(self, centre_ev: np.ndarray, half_span_ev: float = WINDOW_HALF_SPAN_EV) -> np.ndarray:
        """(S, K) bool: frames within ``half_span_ev`` of each scene's ``centre_ev`` (paper 001:
        re-exposures -2 .. +2 EV around the reference)."""
        centre = np.broadcast_to(np.asarray(centre_ev, np.float64), (self.num_scenes,))
        return np.abs(self.offsets_ev[None, :] - centre[:, None]) <= half_span_ev + 1e-6

    def images(self, s: np.ndarray, k: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.frames[s, k]).float().div_(255.0)


def _cache_key(scene_dir: Path, offsets: np.ndarray, max_scenes: Optional[int], seed: int) -> str:
    index = (scene_dir / "index.json").read_bytes()
    h = hashlib.sha256(index)
    h.update(json.dumps({"offsets": offsets.tolist(), "max": max_scenes, "seed": seed,
                         "size": INPUT_SIZE, "experts": sorted(EXPERTS), "format": BANK_FORMAT}).encode())
    return h.hexdigest()[:16]


def _reduce(rad: np.ndarray, size_hw):
    """Average radiance over f x f pixels (a lower-resolution sensor seeing the same scene),
    ``f`` the largest integer that keeps the image at least ``size_hw``, cropped to even sizes
    for the Bayer mosaic. Rendering cost falls by f**2; the network sees 64 x 64 anyway.
    Returns (radiance, f)."""
    hh, ww = rad.shape[-2:]
    f = max(1, min(hh // size_hw[0], ww // size_hw[1]))
    if f > 1:
        hh, ww = hh // f * f, ww // f * f
        rad = rad[:, :hh, :ww].reshape(3, hh // f, f, ww // f, f).mean(axis=(2, 4))
    hh, ww = rad.shape[-2:]
    return np.ascontiguousarray(rad[:, : hh - hh % 2, : ww - ww % 2]), f


def build_bank(scene_dir, max_scenes: Optional[int] = None, seed: int = 0, cache_dir=None,
               progress: bool = True, renderer: Optional[LdrRenderer] = None) -> ReexposureBank:
    """Render (or load from ``cache_dir``) the re-exposure bank of a scene set written by
    ``neural-ae scenes``. Raises :class:`SceneDataError` naming the file for unusable scenes."""
    scene_dir = Path(scene_dir)
    records = load_scene_index(scene_dir)
    if max_scenes is not None:
        records = records[:max_scenes]
    offsets = grid_offsets()
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"bank_{scene_dir.name}_{_cache_key(scene_dir, offsets, max_scenes, seed)}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return ReexposureBank(z["frames"], z["offsets_ev"], z["preferences_ev"],
                                      [str(x) for x in z["expert_names"]], [str(x) for x in z["names"]],
                                      str(scene_dir))
    renderer = renderer or LdrRenderer()
    names = list(EXPERTS)
    h, w = INPUT_SIZE
    frames = np.zeros((len(records), len(offsets), 3, h, w), np.uint8)
    prefs = np.zeros((len(records), len(names)), np.float64)
    for i, rec in enumerate(tqdm(records, desc=f"re-expose {scene_dir.name}", unit="scene", disable=not progress)):
        rad, view_scale = _reduce(rec.load_radiance(), (h, w))
        mosaic_mean = float(sensor_mod.bayer_sample_rggb(torch.from_numpy(rad)).double().mean())
        if not mosaic_mean > 0:
            raise SceneDataError(f"{rec.path}: black scene (mean radiance {mosaic_mean}) has no base exposure")
        view = SceneView(rad, np.asarray(rec.boxes, np.float64) / view_scale, rec.labels, mosaic_mean)
        prefs[i] = [EXPERTS[n].preferred_ev(view) for n in names]
        for k, o in enumerate(offsets):
            rgb = renderer.render(rad, float(2.0 ** o), out_size=(w, h), seed=seed * 1_000_003 + i)
            frames[i, k] = (rgb * 255 + 0.5).to(torch.uint8).numpy()
    bank = ReexposureBank(frames, offsets, prefs, names, [r.name for r in records], str(scene_dir))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, frames=frames, offsets_ev=offsets, preferences_ev=prefs,
                 expert_names=np.array(names), names=np.array(bank.names))
        tmp.replace(cache)
    return bank
