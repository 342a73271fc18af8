"""Supersampled drawing surface in metres on which sprites are painted (albedo, alpha, emission, retro).
"""
from __future__ import annotations

import numpy as np

from .textures import tex

SUPERSAMPLE = 2


class Canvas:
    """A supersampled drawing surface in metres: X right, Y up, origin bottom-left."""

    def __init__(self, width_m: float, height_m: float, u0: float, v_top: float, px_per_m: float,
                 cols: np.ndarray, rows: np.ndarray, ss: int = SUPERSAMPLE):
        self.wm, self.hm = width_m, height_m
        self.cols, self.rows = cols, rows
        self.ss = ss
        cs = (cols[:, None] + (np.arange(ss) + 0.5)[None] / ss).reshape(-1)
        rs = (rows[:, None] + (np.arange(ss) + 0.5)[None] / ss).reshape(-1)
        self.X = ((cs - u0) / px_per_m).astype(np.float32)[None, :]
        self.Y = (height_m - (rs - v_top) / px_per_m).astype(np.float32)[:, None]
        shp = (rs.size, cs.size)
        self.alpha = np.zeros(shp, np.float32)
        self.alb = np.zeros((3,) + shp, np.float32)
        self.emit = np.zeros((3,) + shp, np.float32)
        self.shade = np.ones(shp, np.float32)
        self.retro = np.zeros(shp, np.float32)
        self.px_per_m = px_per_m
        # level of detail: fine parts (spokes, slats, LED rings) only where they span pixels
        self.detail = px_per_m * 0.5 >= 8.0

    # primitives return (row slice, col slice, boolean mask of that window) or None
    def _win(self, x0, y0, x1, y1):
        xs = self.X[0]
        ys = self.Y[:, 0]  # decreasing
        c0 = int(np.searchsorted(xs, x0, side="left"))
        c1 = int(np.searchsorted(xs, x1, side="right"))
        r0 = int(np.searchsorted(-ys, -y1, side="left"))
        r1 = int(np.searchsorted(-ys, -y0, side="right"))
        if c1 <= c0 or r1 <= r0:
            return None
        return slice(r0, r1), slice(c0, c1), self.X[:, c0:c1], self.Y[r0:r1]

    def m_rect(self, x0, y0, x1, y1):
        w = self._win(x0, y0, x1, y1)
        if w is None:
            return None
        rs, cs, X, Y = w
        return rs, cs, (X >= x0) & (X < x1) & (Y >= y0) & (Y < y1)

    def m_ellipse(self, cx, cy, rx, ry):
        w = self._win(cx - rx, cy - ry, cx + rx, cy + ry)
        if w is None:
            return None
        rs, cs, X, Y = w
        return rs, cs, ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 <= 1.0

    def m_ring(self, cx, cy, r0, r1):
        w = self._win(cx - r1, cy - r1, cx + r1, cy + r1)
        if w is None:
            return None
        rs, cs, X, Y = w
        d2 = (X - cx) ** 2 + (Y - cy) ** 2
        return rs, cs, (d2 <= r1 * r1) & (d2 >= r0 * r0)

    def m_line(self, x0, y0, x1, y1, w):
        h = w / 2
        win = self._win(min(x0, x1) - h, min(y0, y1) - h, max(x0, x1) + h, max(y0, y1) + h)
        if win is None:
            return None
        rs, cs, X, Y = win
        dx, dy = x1 - x0, y1 - y0
        L2 = dx * dx + dy * dy + 1e-12
        t = np.clip(((X - x0) * dx + (Y - y0) * dy) / L2, 0, 1)
        px, py = x0 + t * dx - X, y0 + t * dy - Y
        return rs, cs, px * px + py * py <= h * h

    def m_poly(self, pts):
        """Convex polygon, vertices counter-clockwise or clockwise."""
        pts = np.asarray(pts, np.float32)
        win = self._win(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
        if win is None:
            return None
        rs, cs, X, Y = win
        area = 0.0
        for i in range(len(pts)):
            a, b = pts[i], pts[(i + 1) % len(pts)]
            area += a[0] * b[1] - b[0] * a[1]
        sgn = 1.0 if area > 0 else -1.0
        m = np.ones((Y.shape[0], X.shape[1]), bool)
        for i in range(len(pts)):
            a, b = pts[i], pts[(i + 1) % len(pts)]
            cross = (b[0] - a[0]) * (Y - a[1]) - (b[1] - a[1]) * (X - a[0])
            m &= cross * sgn >= 0
        return rs, cs, m

    def paint(self, m, albedo=None, emit=None, shade=None, retro=None, alpha=1.0, texture=0.0, tex_scale=40.0):
        if m is None:
            return
        rs, cs, mask = m
        mask = np.broadcast_to(mask, (rs.stop - rs.start, cs.stop - cs.start))
        if not mask.any():
            return
        self.alpha[rs, cs][mask] = alpha
        if albedo is not None:
            col = np.asarray(albedo, np.float32)
            blk = self.alb[:, rs, cs]
            if texture:
                Xw = np.broadcast_to(self.X[:, cs], mask.shape)[mask]
                Yw = np.broadcast_to(self.Y[rs], mask.shape)[mask]
                t = tex(Xw * tex_scale, Yw * tex_scale + 17, 1.0)
                blk[:, mask] = col[:, None] * (1 + texture * t)[None]
            else:
                blk[:, mask] = col[:, None]
        if emit is not None:
            self.emit[:, rs, cs][:, mask] = np.asarray(emit, np.float32)[:, None]
        if shade is not None:
            self.shade[rs, cs][mask] = shade
        if retro is not None:
            self.retro[rs, cs][mask] = retro

    def finish(self):
        s = self.ss
        h, w = self.alpha.shape[0] // s, self.alpha.shape[1] // s

        def down(a):
            if s == 2:
                return (a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2] + a[..., 1::2, 1::2]) * 0.25
            return a.reshape(a.shape[:-2] + (h, s, w, s)).mean(axis=(-3, -1))

        a = down(self.alpha)
        wsum = np.maximum(a, 1e-6)
        alb = down(self.alb * self.alpha) / wsum
        shade = down(self.shade * self.alpha) / wsum
        retro = down(self.retro * self.alpha) / wsum
        emit = down(self.emit * self.alpha) / wsum
        return a, alb, emit, shade, retro
