"""Pinhole camera of the scene renderer: pose, projection of world points, one ray per pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def _cam_dirs(width: int, height: int, hfov_deg: float) -> np.ndarray:
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    u = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / f
    v = -(np.arange(height, dtype=np.float32) + 0.5 - height / 2) / f
    d = np.empty((3, height, width), np.float32)
    d[0] = u[None, :]
    d[1] = v[:, None]
    d[2] = 1.0
    d /= np.sqrt((d * d).sum(0, keepdims=True))
    d.setflags(write=False)
    return d.reshape(3, -1)


@dataclass
class Camera:
    """Pinhole camera. ``yaw_deg`` > 0 turns right (toward +x), ``pitch_deg`` > 0 looks up."""

    width: int  # px
    height: int  # px
    hfov_deg: float = 60.0  # horizontal field of view
    #: optical centre in world metres (x right, y up, z along the road); 1.4 m: a car's roof line
    x: float = 0.0
    y: float = 1.4
    z: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0

    @property
    def f(self) -> float:
        return 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def center(self) -> np.ndarray:
        return np.array([self.x, self.y, self.z], np.float64)

    def rotation(self) -> np.ndarray:
        """Columns: right, up, forward in world coordinates (camera -> world)."""
        yw, p = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        ry = np.array([[math.cos(yw), 0, math.sin(yw)], [0, 1, 0], [-math.sin(yw), 0, math.cos(yw)]])
        rp = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
        return ry @ rp

    def rays(self) -> np.ndarray:
        """Unit world ray directions ``(3, H*W)`` float32, row-major pixels."""
        R = self.rotation().astype(np.float32)
        c = _cam_dirs(self.width, self.height, float(self.hfov_deg))
        out = np.empty_like(c)
        for i in range(3):
            np.multiply(c[0], R[i, 0], out=out[i])
            out[i] += c[1] * R[i, 1]
            out[i] += c[2] * R[i, 2]
        return out

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """World points ``(3, N)`` -> camera coordinates (x right, y up, z forward)."""
        return self.rotation().T @ (np.asarray(pts, np.float64) - self.center[:, None])

    def project(self, pts: np.ndarray):
        """World points ``(3, N)`` -> pixel ``u, v`` (continuous, pixel edges at integers), depth."""
        c = self.to_camera(pts)
        z = c[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.width / 2 + self.f * c[0] / z
            v = self.height / 2 - self.f * c[1] / z
        return u, v, z

    def horizon_row(self) -> float:
        return self.height / 2 + self.f * math.tan(math.radians(self.pitch_deg))
