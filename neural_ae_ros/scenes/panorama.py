"""Real HDR radiance from the shipped equirectangular panoramas: perspective crops and lighting.

Panorama convention: column ``u`` of a ``W``-wide panorama is azimuth
``phi = 360 * (u + 0.5) / W`` degrees (increasing to the right), row ``v`` of an ``H``-high one
is elevation ``90 - 180 * (v + 0.5) / H``. A camera with heading ``h`` looks at ``phi = h``.

Absolute scale: the files are in relative units; each panorama is scaled so that the median
luminance of its ground half (elevation < 0) equals ``ground_nits`` of :data:`PANORAMA_INFO`
(times ``E_PER_S_PER_NIT`` = 2300 e-/s per cd/m^2, see :mod:`.radiometry`). The lighting class
and ground level of each were judged from the images: sunny day streets ~2000-2500 cd/m^2
(sun-lit pavement), the forest floor ~800, low sun ~300-400, a night field ~1.

Split partition (no heading range shared between splits): every panorama's azimuth circle is
cut into sectors, train ``[0, 216)``, val ``[216, 288)``, test ``[288, 360)`` degrees; a crop is
only drawn for a split if *all* its pixels' azimuths (computed from the exact ray grid, so
pitch and the image corners are accounted for) fall inside that split's sector. ``interior``
and ``studio`` are indoor scenes and are not used for road scenes (still loadable).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from neural_ae_ros.imaging import hdr_io
from .camera_geometry import Camera
from .radiometry import E_PER_S_PER_NIT

PANORAMA_DIR = Path(__file__).resolve().parent.parent / "data" / "panoramas"

PANORAMA_INFO = {
    "city": dict(lighting="day", ground_nits=2500.0, outdoor=True),
    "courtyard": dict(lighting="day", ground_nits=2000.0, outdoor=True),
    "forest": dict(lighting="day", ground_nits=800.0, outdoor=True),
    "sunrise": dict(lighting="dusk", ground_nits=300.0, outdoor=True),
    "sunset": dict(lighting="dusk", ground_nits=400.0, outdoor=True),
    "night": dict(lighting="night", ground_nits=1.0, outdoor=True),
    "interior": dict(lighting="indoor", ground_nits=100.0, outdoor=False),
    "studio": dict(lighting="indoor", ground_nits=100.0, outdoor=False),
}
OUTDOOR_PANORAMAS = tuple(k for k, v in PANORAMA_INFO.items() if v["outdoor"])
SPLIT_SECTORS = {"train": (0.0, 216.0), "val": (216.0, 288.0), "test": (288.0, 360.0)}


def list_panoramas() -> list:
    return sorted(p.stem for p in PANORAMA_DIR.glob("*.exr"))


@lru_cache(maxsize=8)
def load_panorama(name: str) -> np.ndarray:
    """Panorama ``name`` as ``radiance_e_per_s`` float32 ``(3, H, W)`` (read-only, cached)."""
    path = PANORAMA_DIR / f"{name}.exr"
    if name not in PANORAMA_INFO:
        raise ValueError(f"unknown panorama {name!r}; shipped: {sorted(PANORAMA_INFO)}")
    rel = hdr_io.load_radiance(path)
    y = 0.2126 * rel[0] + 0.7152 * rel[1] + 0.0722 * rel[2]
    ground_med = float(np.median(y[y.shape[0] // 2:]))
    scale = PANORAMA_INFO[name]["ground_nits"] * E_PER_S_PER_NIT / max(ground_med, 1e-12)
    out = rel * np.float32(scale)
    # nothing is darker than ~0.01 cd/m^2 (lens flare floor), as in the procedural scenes
    np.maximum(out, np.float32(0.002 * E_PER_S_PER_NIT), out=out)
    out.setflags(write=False)
    return out


def _sample_equirect(pano: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Bilinear lookup of unit directions ``d (3, N)`` in an equirectangular panorama."""
    _, H, W = pano.shape
    az = np.degrees(np.arctan2(d[0], d[2])) % 360.0
    el = np.degrees(np.arcsin(np.clip(d[1], -1, 1)))
    u = az / 360.0 * W - 0.5
    v = (90.0 - el) / 180.0 * H - 0.5
    u0 = np.floor(u).astype(np.int64)
    v0 = np.floor(v).astype(np.int64)
    fu = (u - u0).astype(np.float32)
    fv = (v - v0).astype(np.float32)
    u0w, u1w = u0 % W, (u0 + 1) % W
    v0c, v1c = np.clip(v0, 0, H - 1), np.clip(v0 + 1, 0, H - 1)
    flat = pano.reshape(3, -1)
    out = (flat[:, v0c * W + u0w] * ((1 - fu) * (1 - fv))[None]
           + flat[:, v0c * W + u1w] * (fu * (1 - fv))[None]
           + flat[:, v1c * W + u0w] * ((1 - fu) * fv)[None]
           + flat[:, v1c * W + u1w] * (fu * fv)[None])
    return out.astype(np.float32)


def perspective_crop(pano: np.ndarray, heading_deg: float, pitch_deg: float, hfov_deg: float,
                     width: int, height: int) -> np.ndarray:
    """Pinhole view ``(3, height, width)`` of an equirectangular ``(3, H, W)`` panorama (bilinear)."""
    cam = Camera(width, height, hfov_deg, yaw_deg=heading_deg, pitch_deg=pitch_deg)
    return _sample_equirect(pano, cam.rays()).reshape(3, height, width)


@lru_cache(maxsize=64)
def azimuth_half_extent(hfov_deg: float, pitch_deg: float, width: int, height: int) -> float:
    """Largest |azimuth - heading| over all pixels of a crop (degrees)."""
    cam = Camera(width, height, hfov_deg, pitch_deg=pitch_deg)
    d = cam.rays()
    return float(np.degrees(np.abs(np.arctan2(d[0], d[2]))).max())


def crop_azimuth_range(heading_deg, pitch_deg, hfov_deg, width, height):
    a = azimuth_half_extent(float(hfov_deg), float(pitch_deg), int(width), int(height))
    return heading_deg - a, heading_deg + a


def sample_view(rng: np.random.Generator, split: str, width: int, height: int,
                names=OUTDOOR_PANORAMAS) -> dict:
    """Random crop parameters inside ``split``'s heading sector."""
    if split not in SPLIT_SECTORS:
        raise ValueError(f"split must be one of {tuple(SPLIT_SECTORS)}")
    lo, hi = SPLIT_SECTORS[split]
    for _ in range(100):
        name = str(names[int(rng.integers(len(names)))])
        hfov = float(rng.uniform(45, 70))
        pitch = float(rng.uniform(-6, 3))
        a = azimuth_half_extent(hfov, pitch, width, height)
        if hi - lo > 2 * a:
            break
    else:  # pragma: no cover
        raise RuntimeError("no crop fits the sector")
    heading = float(rng.uniform(lo + a, hi - a))
    return dict(panorama=name, heading_deg=heading, pitch_deg=pitch, hfov_deg=hfov)


@lru_cache(maxsize=8)
def _small(name: str) -> np.ndarray:
    """Box-downsampled 64 x 32 panorama (for lighting integrals)."""
    p = load_panorama(name)
    _, H, W = p.shape
    fy, fx = H // 32, W // 64
    return p[:, :32 * fy, :64 * fx].reshape(3, 32, fy, 64, fx).mean(axis=(2, 4))


@lru_cache(maxsize=8)
def _small_dirs():
    v = (np.arange(32) + 0.5) / 32
    u = (np.arange(64) + 0.5) / 64
    el = np.radians(90 - 180 * v)[:, None]
    az = np.radians(360 * u)[None, :]
    d = np.stack([np.cos(el) * np.sin(az), np.sin(el) * np.ones_like(az), np.cos(el) * np.cos(az)])
    solid = (np.cos(el) * np.ones_like(az)) * (math.pi / 32) * (2 * math.pi / 64)
    return d.reshape(3, -1), solid.reshape(-1)


def white_radiance(name: str, normal, sun_threshold: Optional[float] = None) -> np.ndarray:
    """Radiance (3,) of a white Lambertian surface with ``normal`` lit by the panorama.

    ``L_white = (1/pi) * integral L(w) max(n.w, 0) dw``; pixels above ``sun_threshold`` (e-/s)
    are left out (the surface is in shadow of the sun).
    """
    small = _small(name).reshape(3, -1)
    d, solid = _small_dirs()
    cos = np.maximum(np.asarray(normal, np.float64) @ d, 0) * solid
    L = small
    if sun_threshold is not None:
        L = np.where(small.max(0, keepdims=True) > sun_threshold, 0.0, small)
    return (L @ cos / math.pi).astype(np.float32)
