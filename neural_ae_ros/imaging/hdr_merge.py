"""Latent HDR from bracketed LDR captures (paper 000, Eq. 7) and noise adaptation (Section 5.2).

Merge (Eq. 7)
-------------
Each LDR image ``J_i`` (values in [0, 1] after the inverse tone curve ``phi``, i.e. linear) is
scaled by its exposure factor ``alpha_i = 1 / (K_i * t_i)``: ``I_i = alpha_i * phi(J_i)``. The
latent HDR image is the minimum-variance unbiased combination::

    I_hdr = sum_i w_i I_i / sum_i w_i,     w_i = delta(J_i < M_white) / (alpha_i^2 * V_unsat)

``V_unsat`` is the noise variance of an unsaturated LDR value. With the paper's constant
``V_unsat`` the weights are ``(K_i t_i)^2``: the longest unsaturated exposure dominates.
Passing a Poisson-Gaussian model ``V(J) = shot * J + floor`` (``noise_model=(shot, floor)``)
gives the exact minimum-variance weights per pixel. Saturated samples (``J_i >=
saturation``) are excluded per channel; where all brackets are saturated the shortest one is
used as a lower bound and ``saturated_all`` marks the pixel. :func:`merge_exposures` also
returns the variance of ``I_hdr`` (``1 / sum_i w_i``), which noise adaptation needs.
``I_hdr`` is in "full scale per second" (``J = 1`` over 1 s at K = 1); multiply by
``radiance_scale`` (``gamma`` of Section 5.2: e-/s per unit, the capture camera's full scale
in electrons for normalised inputs) to get ``radiance_e_per_s``.

Folder layout for :func:`merge_folder`::

    DIR/exposures.json
    DIR/<frame>_0.<ext>  DIR/<frame>_1.<ext>  DIR/<frame>_2.<ext>    (ext: jpg, jpeg, png, npy)

    exposures.json = {
      "encoding": "srgb" | "linear",       # srgb: 8/16-bit sRGB images (JPEG/PNG), inverted here
      "white_level": 255,                  # value of full scale in the files (npy: e.g. 4095 or 1.0)
      "black_level": 0,
      "saturation": 0.98,                  # fraction of full scale counted as saturated (optional)
      "radiance_scale": 1.0,               # gamma: e-/s per unit of I_hdr (optional)
      "noise_model": [shot, floor],        # optional, in normalised units^2
      "frames": {"<frame>": {"exposure_time_s": [t0, t1, t2], "analog_gain": [1, 1, 1]}, ...}
    }

Noise adaptation and augmentation (Section 5.2)
-----------------------------------------------
A capture simulated from ``I_hdr`` at exposure ``t``, gain ``K`` should have the *target*
sensor's noise (Eq. 2: shot noise, read noise ``n_pre``, post-gain noise ``n_post``). The
latent HDR already carries noise of variance ``Var[I_hdr] * (radiance_scale * t)^2`` (in
electrons), so :func:`capture_adapted` adds only ``max(s^2 * V_target - V_source, 0)``, where
``s`` is the noise strength: ``s = 1`` is noise adaptation, ``s`` drawn log-uniformly around 1
by :func:`sample_noise_strength` is noise augmentation.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "srgb_to_linear",
    "linear_to_srgb",
    "merge_exposures",
    "MergeResult",
    "merge_folder",
    "read_ldr",
    "synthesize_brackets",
    "source_noise_e2",
    "target_noise_e2",
    "adapted_noise_std_e",
    "capture_adapted",
    "sample_noise_strength",
    "base_exposure_s",
]


# --------------------------------------------------------------------------- tone curve
def srgb_to_linear(v):
    """Inverse sRGB transfer curve (IEC 61966-2-1) on values in [0, 1]."""
    v = np.clip(np.asarray(v, np.float64), 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v):
    v = np.clip(np.asarray(v, np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


# --------------------------------------------------------------------------------- merge
class MergeResult(tuple):
    """``(hdr, variance, saturated_all)``; attribute access too."""

    def __new__(cls, hdr, variance, saturated_all):
        return super().__new__(cls, (hdr, variance, saturated_all))

    hdr = property(lambda s: s[0])
    variance = property(lambda s: s[1])
    saturated_all = property(lambda s: s[2])


def merge_exposures(images: Sequence[np.ndarray], exposure_times_s: Sequence[float],
                    analog_gains: Optional[Sequence[float]] = None, saturation: float = 0.98,
                    v_unsat: float = 1.0, noise_model: Optional[tuple] = None) -> MergeResult:
    """Eq. 7 merge of linear LDR images ``J_i`` in [0, 1] (any shape, all the same).

    Returns ``(I_hdr, Var[I_hdr], saturated_all)``; ``I_hdr = J / (K t)`` units.
    """
    if len(images) < 1 or len(images) != len(exposure_times_s):
        raise ValueError("need one exposure time per image")
    gains = [1.0] * len(images) if analog_gains is None else list(analog_gains)
    if len(gains) != len(images):
        raise ValueError("need one analog gain per image")
    e = np.array([float(t) * float(k) for t, k in zip(exposure_times_s, gains)], np.float64)
    if np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise ValueError(f"exposure times and gains must be > 0, got effective exposures {e.tolist()}")
    shape = np.shape(images[0])
    num = np.zeros(shape, np.float64)
    den = np.zeros(shape, np.float64)
    for J, ei in zip(images, e):
        J = np.asarray(J, np.float64)
        if J.shape != shape:
            raise ValueError(f"image shapes differ: {J.shape} vs {shape}")
        alpha = 1.0 / ei
        if noise_model is not None:
            shot, floor = noise_model
            V = shot * np.clip(J, 0, 1) + floor
        else:
            V = v_unsat
        w = (J < saturation) / (alpha * alpha * V)
        num += w * (alpha * J)
        den += w
    sat_all = den <= 0
    shortest = int(np.argmin(e))
    J0 = np.asarray(images[shortest], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        hdr = np.where(sat_all, J0 / e[shortest], num / np.where(sat_all, 1.0, den))
        var = np.where(sat_all, np.inf, 1.0 / np.where(sat_all, 1.0, den))
    return MergeResult(hdr.astype(np.float32), var.astype(np.float32), sat_all)


# ------------------------------------------------------------------------------ folders
def read_ldr(path, encoding: str = "srgb", white_level: Optional[float] = None,
             black_level: float = 0.0) -> np.ndarray:
    """Read one LDR capture as linear float64 ``(3, H, W)`` in [0, 1] (inverse tone curve applied)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(path)
            wl = float(white_level) if white_level is not None else (255.0 if arr.dtype == np.uint8 else
                                                                     65535.0 if arr.dtype == np.uint16 else 1.0)
        else:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode not in ("RGB", "L", "I;16", "I"):
                    im = im.convert("RGB")
                arr = np.asarray(im)
            wl = float(white_level) if white_level is not None else (255.0 if arr.dtype == np.uint8 else 65535.0)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable image ({exc})") from exc
    arr = np.asarray(arr, np.float64)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    if arr.ndim != 3:
        raise ValueError(f"{path}: expected an RGB image, got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = np.moveaxis(arr, 0, -1)
    if arr.shape[-1] != 3:
        raise ValueError(f"{path}: expected 3 channels, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: non-finite values")
    v = np.clip((arr - black_level) / (wl - black_level), 0.0, 1.0)
    if encoding == "srgb":
        v = srgb_to_linear(v)
    elif encoding != "linear":
        raise ValueError(f"encoding must be 'srgb' or 'linear', got {encoding!r}")
    return np.moveaxis(v, -1, 0)


def merge_folder(folder, frames: Optional[Sequence[str]] = None):
    """Merge every frame of a bracket folder (layout in the module docstring).

    Yields ``(frame_name, radiance (3, H, W) float32, variance (3, H, W) float32)`` with
    radiance in ``radiance_scale`` units (e-/s when the scale is set) and its Eq. 7 variance in
    the same units squared (``noise_model`` or ``v_unsat`` set the absolute level).
    """
    folder = Path(folder)
    meta_path = folder / "exposures.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: missing (see neural_ae_ros.imaging.hdr_merge docstring for the layout)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: invalid JSON ({exc})") from exc
    enc = meta.get("encoding", "srgb")
    wl = meta.get("white_level")
    bl = float(meta.get("black_level", 0.0))
    sat = float(meta.get("saturation", 0.98))
    scale = float(meta.get("radiance_scale", 1.0))
    nm = meta.get("noise_model")
    v_unsat = float(meta.get("v_unsat", 1.0))
    entries = meta.get("frames")
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"{meta_path}: 'frames' must be a non-empty mapping name -> exposures")
    names = list(entries) if frames is None else list(frames)
    for name in names:
        if name not in entries:
            raise KeyError(f"{meta_path}: no frame {name!r}")
        ent = entries[name]
        times = ent.get("exposure_time_s")
        gains = ent.get("analog_gain", [1.0] * len(times or []))
        if not times or len(times) != 3:
            raise ValueError(f"{meta_path}: frame {name!r} needs 3 exposure_time_s values")
        imgs = []
        for i in range(3):
            cands = [folder / f"{name}_{i}{ext}" for ext in (".jpg", ".jpeg", ".png", ".npy")]
            path = next((p for p in cands if p.is_file()), None)
            if path is None:
                raise FileNotFoundError(f"{folder}: missing bracket {name}_{i}.(jpg|png|npy)")
            imgs.append(read_ldr(path, enc, wl, bl))
        res = merge_exposures(imgs, times, gains, saturation=sat, v_unsat=v_unsat,
                              noise_model=tuple(nm) if nm is not None else None)
        yield name, (res.hdr * np.float32(scale)), (res.variance * np.float32(scale * scale))


def synthesize_brackets(radiance: np.ndarray, exposure_times_s: Sequence[float], full_scale: float,
                        analog_gains: Optional[Sequence[float]] = None, shot: float = 0.0, floor: float = 0.0,
                        rng: Optional[np.random.Generator] = None, encoding: str = "linear",
                        bits: Optional[int] = None) -> list:
    """LDR brackets of a known radiance, for tests: ``J_i = clip(radiance * K_i t_i / full_scale + noise)``.

    Noise is Gaussian with variance ``shot * J + floor`` (normalised units); ``encoding='srgb'``
    applies the sRGB curve and ``bits`` quantises (8 for JPEG-like data).
    """
    rng = rng or np.random.default_rng(0)
    gains = [1.0] * len(exposure_times_s) if analog_gains is None else analog_gains
    out = []
    for t, k in zip(exposure_times_s, gains):
        J = np.asarray(radiance, np.float64) * t * k / full_scale
        if shot or floor:
            J = J + rng.standard_normal(J.shape) * np.sqrt(shot * np.clip(J, 0, None) + floor)
        J = np.clip(J, 0.0, 1.0)
        if encoding == "srgb":
            J = linear_to_srgb(J)
        if bits:
            q = 2 ** bits - 1
            J = np.floor(J * q + 0.5) / q
        out.append(J)
    return out


# ------------------------------------------------------------------- noise adaptation
def _p(params):
    if params is None:
        from neural_ae_ros.imaging.sensor import SensorParams

        return SensorParams.from_yaml()
    return params


def target_noise_e2(signal_e, analog_gain: float, params=None):
    """Variance (e-^2, referred to the photosite) of the target sensor at mean signal ``signal_e``.

    Eq. 2: shot (Poisson, = signal incl. dark electrons) + ``read_noise_e^2`` + ``(post_noise_dn /
    g)^2`` + quantisation ``1/12 / g^2``.
    """
    p = _p(params)
    g = p.g1_dn_per_e * float(analog_gain)
    return np.maximum(signal_e, 0) + p.read_noise_e ** 2 + (p.post_noise_dn ** 2 + 1.0 / 12.0) / (g * g)


def source_noise_e2(hdr_variance, radiance_scale: float, exposure_time_s: float):
    """Noise already in the latent HDR, as electrons^2 of a capture at ``exposure_time_s``."""
    return np.asarray(hdr_variance, np.float64) * (radiance_scale * exposure_time_s) ** 2


def adapted_noise_std_e(signal_e, source_var_e2, analog_gain: float, params=None, strength: float = 1.0):
    """Std (e-) of the Gaussian noise to add so the total matches ``strength^2`` x the target."""
    tgt = target_noise_e2(signal_e, analog_gain, params) * strength ** 2
    return np.sqrt(np.maximum(tgt - np.asarray(source_var_e2, np.float64), 0.0))


def capture_adapted(radiance_e_per_s, source_var_e2_per_s2, exposure_time_s: float, analog_gain: float,
                    params=None, strength: float = 1.0, generator=None):
    """Eq. 1-3 capture (DN, torch float) of an already-noisy radiance with adapted noise.

    ``radiance_e_per_s``: mosaic or RGB tensor/array (e-/s); ``source_var_e2_per_s2``: its noise
    variance ((e-/s)^2, same shape or broadcastable; e.g. ``MergeResult.variance * scale^2``).
    Only ``max(strength^2 V_target - V_source, 0)`` of noise is added (Gaussian, electrons),
    then full-well clipping, gain, black level and quantisation as in :func:`sensor.capture`.
    """
    import torch

    from neural_ae_ros.imaging.sensor import quantize_ste

    p = _p(params)
    phi = torch.as_tensor(np.asarray(radiance_e_per_s, np.float32)) if not isinstance(radiance_e_per_s, torch.Tensor) \
        else radiance_e_per_s.float()
    var_src = torch.as_tensor(np.asarray(source_var_e2_per_s2, np.float32)) \
        if not isinstance(source_var_e2_per_s2, torch.Tensor) else source_var_e2_per_s2.float()
    t = float(exposure_time_s)
    g = p.g1_dn_per_e * float(analog_gain)
    mean_e = phi * t + p.dark_current_e_per_s * t
    tgt = (mean_e.clamp_min(0) + p.read_noise_e ** 2 + (p.post_noise_dn ** 2 + 1.0 / 12.0) / (g * g)) * strength ** 2
    # the quantisation step itself adds 1/12 DN^2 below, so it is not added as Gaussian noise
    add = (tgt - var_src * t * t - 1.0 / 12.0 / (g * g)).clamp_min(0)
    z = torch.randn(phi.shape, generator=generator, dtype=phi.dtype)
    y = (mean_e + z * add.sqrt()).clamp(max=p.full_well_e)
    x = g * y + p.black_level_dn
    return quantize_ste(x, p.white_level_dn)


def sample_noise_strength(rng: np.random.Generator, spread: float = 2.0, size=None):
    """Noise augmentation strength: log-uniform in ``[1/spread, spread]`` around 1 (1 = adaptation only)."""
    if spread < 1:
        raise ValueError("spread must be >= 1")
    return np.exp(rng.uniform(-math.log(spread), math.log(spread), size=size))


def base_exposure_s(radiance_e_per_s, params=None, analog_gain: float = 1.0) -> float:
    """e_base of paper 000 Section 5.3 for the target sensor (see :func:`exposure.base_exposure_s`)."""
    from neural_ae_ros.imaging.exposure import base_exposure_s as _base

    p = _p(params)
    return _base(radiance_e_per_s, p.g1_dn_per_e, p.white_level_dn, analog_gain)
