"""Tileable value noise that textures road, facades and sprites (deterministic, seed 7).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def noise_tile(seed: int = 7, size: int = 512) -> np.ndarray:
    """Tileable multi-octave value noise in roughly [-1, 1], float32 (size, size)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((size, size), np.float32)
    amp = 1.0
    total = 0.0
    for cells in (4, 8, 16, 32, 64, 128, 256):
        g = rng.standard_normal((cells, cells)).astype(np.float32)
        idx = np.arange(size) * cells / size
        i0 = np.floor(idx).astype(int)
        fr = (idx - i0).astype(np.float32)
        fr = fr * fr * (3 - 2 * fr)
        i1 = (i0 + 1) % cells
        rows = g[i0] * (1 - fr)[:, None] + g[i1] * fr[:, None]
        layer = rows[:, i0] * (1 - fr)[None, :] + rows[:, i1] * fr[None, :]
        out += amp * layer
        total += amp
        amp *= 0.75
    out /= total
    out /= np.abs(out).max()
    out.setflags(write=False)
    return out


def tex(a, b, scale: float, off=(0.0, 0.0)) -> np.ndarray:
    """Sample the noise tile at world coordinates (a, b) metres with ``scale`` texels/metre."""
    t = noise_tile()
    n = t.shape[0]
    ia = ((a * scale + off[0]).astype(np.int64)) % n
    ib = ((b * scale + off[1]).astype(np.int64)) % n
    return t[ia, ib]
