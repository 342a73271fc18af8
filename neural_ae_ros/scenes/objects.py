"""The six object classes of paper 000 as parametric sprites, placement, lighting and exact boxes.

Classes (ids in this order, :data:`CLASSES`): ``bike`` (bicycle with its rider: the rider is
part of the bike box), ``bus_truck``, ``car_van``, ``person``, ``traffic_light`` (the signal
housing, not the pole), ``traffic_sign`` (the sign panel, not the pole).

Sprites are drawn in metres on an upright billboard standing on the ground (or on a pole),
facing the camera, at the object's world position; the pixel raster of the sprite *is* the
image raster (2 x 2 supersampled), so there is no resampling. Each sprite carries albedo,
coverage (alpha), a shading factor (facets, wheel arches, underbody occlusion), emission
(head/tail/brake lights, traffic-light signals, bus destination signs, plate lights, bike
lights) and retro-reflection (signs, plates: they glow in the ego headlights). Fine detail a
detector can learn and that clipping or noise destroys: licence-plate glyphs, grilles,
window frames, wheel spokes, clothing stripes, sign symbols and digits.

Lighting is evaluated per sprite pixel at its world point with the same functions as the
background (:mod:`.procedural`): sun with exact shadows of buildings / tunnel / bridge, sky
ambient, tunnel lighting, street lamps, ego headlights. Objects cast sun shadows (their box
footprint swept along the sun direction) and contact shadows (ambient occlusion) on the
ground.

Boxes and occlusion
-------------------
Objects are composited far to near with a depth test against the background depth (tunnel
portals, bridge abutments, facades hide what is behind them) and against nearer objects
and props (poles). An object's *instance mask* is the set of image pixels where its coverage
is >= 0.5 and nothing nearer covers it (``instance_map == k``). Its box is the tight box of
that mask in pixel-edge coordinates ``[x0, y0, x1, y1]`` (``x1 = last column + 1``), so a
box always lies inside the image and matches the mask exactly. The visible fraction is
``visible mask pixels / full mask pixels`` where the full mask is the sprite's own coverage
including the parts outside the image (truncation counts as invisible).

Rule: objects with visible fraction < :data:`MIN_VISIBLE_FRACTION` (0.4) or a box less than
:data:`MIN_BOX_HEIGHT_PX` high are **dropped from the labels** and listed under ``ignored``
(with their box, visible fraction and reason) so that evaluation can treat them as
don't-care regions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import procedural as pr
from .procedural import E_PER_S_PER_NIT, Background, Camera, World

CLASSES = ("bike", "bus_truck", "car_van", "person", "traffic_light", "traffic_sign")
CLASS_ID = {c: i for i, c in enumerate(CLASSES)}
MIN_VISIBLE_FRACTION = 0.4
MIN_BOX_HEIGHT_PX = 6
SUPERSAMPLE = 2
RETRO_GAIN = 40.0  # retro-reflective sheeting: headlight return vs a white diffuse surface

GROUND_MATERIALS = (pr.ROAD, pr.MARKING, pr.SIDEWALK, pr.VERGE, pr.CURB)


def _n(v):
    return float(v) * E_PER_S_PER_NIT


# ------------------------------------------------------------------------------- canvas
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
                t = pr.tex(Xw * tex_scale, Yw * tex_scale + 17, 1.0)
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


# ------------------------------------------------------------------------------ objects
@dataclass
class ObjectSpec:
    cls: str  # one of CLASSES, or 'prop'
    kind: str  # drawing variant: 'car_rear', 'bus_side', 'person', 'pole', ...
    x: float
    z: float
    width_m: float
    height_m: float
    depth_m: float = 0.5  # extent along the view, for shadows
    base_y: float = 0.0
    vx: float = 0.0
    vz: float = 0.0
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> bool:
        return self.cls in CLASS_ID

    def position(self, t: float):
        return self.x + self.vx * t, self.z + self.vz * t


def _paint_colour(rng):
    choices = [(0.75, 0.75, 0.78), (0.05, 0.05, 0.06), (0.35, 0.36, 0.38), (0.55, 0.06, 0.05),
               (0.08, 0.15, 0.45), (0.6, 0.6, 0.62), (0.12, 0.25, 0.14), (0.7, 0.55, 0.2),
               (0.85, 0.85, 0.8), (0.2, 0.2, 0.22)]
    c = np.array(choices[int(rng.integers(len(choices)))]) * rng.uniform(0.85, 1.1)
    return tuple(np.clip(c, 0.02, 0.9))


def _glyphs(cv: Canvas, x0, y0, x1, y1, seed, col=(0.03, 0.03, 0.03), n=6, retro=None):
    """Plate / sign lettering: n characters of 7-segment-like strokes."""
    r = np.random.default_rng(seed)
    cw = (x1 - x0) / n
    if cw * cv.px_per_m < 1.5:  # characters below ~1.5 px: a uniform grey band is what a camera sees
        cv.paint(cv.m_rect(x0, y0 + (y1 - y0) * 0.2, x1, y1 - (y1 - y0) * 0.2), albedo=tuple(np.asarray(col) * 0.5 + 0.25),
                 retro=retro if retro is not None else 0.0)
        return
    th = (y1 - y0)
    sw = max(cw * 0.16, 0.004)
    for i in range(n):
        cx0 = x0 + i * cw + cw * 0.15
        cx1 = x0 + (i + 1) * cw - cw * 0.15
        ym = y0 + th / 2
        segs = [(cx0, y1, cx1, y1), (cx0, ym, cx1, ym), (cx0, y0, cx1, y0), (cx0, y0, cx0, ym),
                (cx0, ym, cx0, y1), (cx1, y0, cx1, ym), (cx1, ym, cx1, y1), (cx0, y0, cx1, y1)]
        on = r.random(len(segs)) < 0.5
        on[r.integers(len(segs))] = True
        for s, o in zip(segs, on):
            if o:
                cv.paint(cv.m_line(*s, sw), albedo=col, retro=retro if retro is not None else 0.0)


def draw(spec: ObjectSpec, cv: Canvas, t: float, ctx: dict) -> None:
    """Draw one object into a canvas (metres, origin bottom-left of its billboard)."""
    p = spec.params
    W, H = spec.width_m, spec.height_m
    k = spec.kind
    lights = ctx.get("lights_on", False)
    if k in ("car_rear", "car_front", "van_rear", "van_front"):
        _draw_car_end(cv, W, H, p, k, lights)
    elif k in ("car_side", "van_side"):
        _draw_car_side(cv, W, H, p, lights)
    elif k in ("bus_rear", "bus_front", "truck_rear", "truck_front"):
        _draw_bus_end(cv, W, H, p, k, lights)
    elif k in ("bus_side", "truck_side"):
        _draw_bus_side(cv, W, H, p, k, lights)
    elif k == "person":
        _draw_person(cv, W, H, p, t)
    elif k in ("bike_side", "bike_rear"):
        _draw_bike(cv, W, H, p, k, t, lights)
    elif k == "traffic_light":
        _draw_traffic_light(cv, W, H, p, t)
    elif k == "traffic_sign":
        _draw_sign(cv, W, H, p)
    elif k == "pole":
        cv.paint(cv.m_rect(0, 0, W, H), albedo=p.get("col", (0.3, 0.3, 0.3)), texture=0.15)
    elif k == "street_lamp":
        # arm + luminaire; the pole is a separate prop
        cv.paint(cv.m_rect(0, H * 0.55, W, H), albedo=(0.25, 0.25, 0.25))
        cv.paint(cv.m_rect(W * 0.1, 0, W * 0.9, H * 0.55), albedo=(0.8, 0.8, 0.8),
                 emit=np.asarray(p["lamp_rgb"]) * _n(p["lamp_nits"]))
    else:
        raise ValueError(f"unknown object kind {k!r}")


def _draw_car_end(cv, W, H, p, k, lights):
    front = k.endswith("front")
    van = k.startswith("van")
    col = p["colour"]
    belt = H * (0.58 if not van else 0.5)
    # tyres and underbody
    cv.paint(cv.m_rect(0.08, 0.0, 0.34, 0.38), albedo=(0.03, 0.03, 0.03), shade=0.6, texture=0.3)
    cv.paint(cv.m_rect(W - 0.34, 0.0, W - 0.08, 0.38), albedo=(0.03, 0.03, 0.03), shade=0.6, texture=0.3)
    cv.paint(cv.m_rect(0.3, 0.12, W - 0.3, 0.3), albedo=(0.02, 0.02, 0.02), shade=0.15)
    # body
    cv.paint(cv.m_rect(0.0, 0.28, W, belt), albedo=col, texture=0.05)
    roof_in = 0.18 if not van else 0.06
    cv.paint(cv.m_poly([(0.05, belt), (W - 0.05, belt), (W - roof_in, H - 0.04), (roof_in, H - 0.04)]), albedo=col)
    cv.paint(cv.m_rect(roof_in + 0.05, H - 0.06, W - roof_in - 0.05, H), albedo=col, shade=1.3)
    # glass
    gl = (0.04, 0.05, 0.06)
    cv.paint(cv.m_poly([(0.16, belt + 0.05), (W - 0.16, belt + 0.05), (W - roof_in - 0.06, H - 0.1),
                        (roof_in + 0.06, H - 0.1)]), albedo=gl, shade=1.4)
    if van and not front:  # rear door split
        cv.paint(cv.m_rect(W / 2 - 0.01, 0.3, W / 2 + 0.01, H - 0.1), albedo=(0.02, 0.02, 0.02))
    # bumper
    cv.paint(cv.m_rect(0.0, 0.25, W, 0.42), albedo=(0.06, 0.06, 0.06) if p["dark_bumper"] else col, shade=0.85)
    # plate with glyphs (retro-reflective)
    pw, ph = 0.52, 0.11
    py0 = 0.45 if not front else 0.3
    cv.paint(cv.m_rect(W / 2 - pw / 2, py0, W / 2 + pw / 2, py0 + ph), albedo=(0.8, 0.8, 0.75),
             retro=0.5, emit=(_n(60),) * 3 if (lights and not front) else None)
    cv.paint(cv.m_rect(W / 2 - pw / 2, py0, W / 2 - pw / 2 + 0.04, py0 + ph), albedo=(0.05, 0.1, 0.5))
    _glyphs(cv, W / 2 - pw / 2 + 0.06, py0 + 0.015, W / 2 + pw / 2 - 0.02, py0 + ph - 0.015, p["seed"], n=6)
    ly0, ly1 = belt - 0.22, belt - 0.04
    if front:
        # grille with slats
        gx0, gx1 = W * 0.3, W * 0.7
        cv.paint(cv.m_rect(gx0, 0.45, gx1, ly1), albedo=(0.03, 0.03, 0.03))
        for i in range(5 if cv.detail else 0):
            yy = 0.47 + i * (ly1 - 0.47) / 5
            cv.paint(cv.m_rect(gx0 + 0.02, yy, gx1 - 0.02, yy + 0.012), albedo=(0.35, 0.35, 0.35))
        hl_emit = None
        if lights:
            hl_emit = (_n(p["head_nits"]),) * 3
        elif p["drl"]:
            hl_emit = (_n(2.5e4),) * 3
        for xa in (0.06, W - 0.34):
            cv.paint(cv.m_rect(xa, ly0, xa + 0.28, ly1), albedo=(0.5, 0.5, 0.52), shade=1.2)
            cv.paint(cv.m_ellipse(xa + 0.14, (ly0 + ly1) / 2, 0.09, 0.06), albedo=(0.7, 0.7, 0.7),
                     emit=hl_emit)
            if p["drl"] or lights:
                cv.paint(cv.m_rect(xa + 0.02, ly0, xa + 0.26, ly0 + 0.025), albedo=(0.8, 0.8, 0.8),
                         emit=(_n(2.5e4),) * 3)
    else:
        tail = (_n(400),) * 3 if lights else None
        brake = p["braking"]
        for xa in (0.04, W - 0.32):
            e = None
            if brake:
                e = (_n(6e3), _n(6e3) * 0.05, _n(6e3) * 0.03)
            elif tail is not None:
                e = (tail[0], tail[0] * 0.05, tail[0] * 0.03)
            cv.paint(cv.m_rect(xa, ly0, xa + 0.28, ly1), albedo=(0.45, 0.03, 0.03), emit=e, shade=1.2)
            cv.paint(cv.m_rect(xa + 0.2 if xa < 1 else xa, ly0 + 0.02, xa + 0.28 if xa < 1 else xa + 0.08, ly0 + 0.08),
                     albedo=(0.7, 0.5, 0.2))
        if brake:
            cv.paint(cv.m_rect(W / 2 - 0.2, H - 0.16, W / 2 + 0.2, H - 0.12), albedo=(0.4, 0.03, 0.03),
                     emit=(_n(6e3), _n(300), _n(180)))


def _wheel(cv, cx, r, spokes=5, rim=(0.55, 0.55, 0.57)):
    cv.paint(cv.m_ellipse(cx, r, r, r), albedo=(0.03, 0.03, 0.03), texture=0.3)
    cv.paint(cv.m_ellipse(cx, r, r * 0.6, r * 0.6), albedo=rim, shade=1.1)
    if not cv.detail:
        return
    for i in range(spokes):
        a = 2 * math.pi * i / spokes
        cv.paint(cv.m_line(cx, r, cx + 0.55 * r * math.cos(a), r + 0.55 * r * math.sin(a), r * 0.12), albedo=(0.15, 0.15, 0.16))
    cv.paint(cv.m_ellipse(cx, r, r * 0.15, r * 0.15), albedo=(0.2, 0.2, 0.2))


def _draw_car_side(cv, L, H, p, lights):
    col = p["colour"]
    r = 0.32
    belt = H * 0.6
    face_right = p["face_right"]
    cv.paint(cv.m_rect(0.1, 0.22, L - 0.1, belt), albedo=col, texture=0.05)
    c0, c1 = (L * 0.28, L * 0.82) if face_right else (L * 0.18, L * 0.72)
    cv.paint(cv.m_poly([(c0 - 0.4, belt), (c1 + 0.35, belt), (c1 - 0.15, H), (c0 + 0.2, H)]), albedo=col)
    cv.paint(cv.m_poly([(c0 - 0.25, belt + 0.04), (c1 + 0.2, belt + 0.04), (c1 - 0.18, H - 0.06), (c0 + 0.22, H - 0.06)]),
             albedo=(0.04, 0.05, 0.06), shade=1.4)
    mid = (c0 + c1) / 2
    cv.paint(cv.m_rect(mid - 0.03, belt, mid + 0.03, H - 0.05), albedo=col)
    # doors, handles, sill
    for xd in (mid, c0 - 0.3):
        cv.paint(cv.m_rect(xd - 0.008, 0.3, xd + 0.008, belt), albedo=(0.02, 0.02, 0.02))
    cv.paint(cv.m_rect(mid + 0.25, belt - 0.12, mid + 0.4, belt - 0.09), albedo=(0.1, 0.1, 0.1))
    cv.paint(cv.m_rect(0.3, 0.22, L - 0.3, 0.3), albedo=(0.05, 0.05, 0.05), shade=0.7)
    for wx in (0.85, L - 0.85):
        cv.paint(cv.m_ellipse(wx, r, r + 0.08, r + 0.08), albedo=(0.02, 0.02, 0.02), shade=0.3)
        _wheel(cv, wx, r)
    fx = L - 0.15 if face_right else 0.15
    bx = 0.15 if face_right else L - 0.15
    cv.paint(cv.m_ellipse(fx, belt - 0.12, 0.12, 0.07), albedo=(0.7, 0.7, 0.7),
             emit=(_n(5e3),) * 3 if lights else None)
    cv.paint(cv.m_ellipse(bx, belt - 0.1, 0.1, 0.07), albedo=(0.45, 0.03, 0.03),
             emit=(_n(400), _n(20), _n(12)) if lights else None)


def _draw_bus_end(cv, W, H, p, k, lights):
    front = k.endswith("front")
    truck = k.startswith("truck")
    col = p["colour"]
    cv.paint(cv.m_rect(0.15, 0.0, 0.55, 0.5), albedo=(0.03, 0.03, 0.03), texture=0.3)
    cv.paint(cv.m_rect(W - 0.55, 0.0, W - 0.15, 0.5), albedo=(0.03, 0.03, 0.03), texture=0.3)
    cv.paint(cv.m_rect(0.5, 0.1, W - 0.5, 0.45), albedo=(0.02, 0.02, 0.02), shade=0.15)
    cv.paint(cv.m_rect(0.0, 0.4, W, H), albedo=col, texture=0.04)
    if front:
        cv.paint(cv.m_rect(0.12, H * 0.45, W - 0.12, H * (0.88 if not truck else 0.8)), albedo=(0.04, 0.05, 0.06), shade=1.4)
        cv.paint(cv.m_rect(W / 2 - 0.015, H * 0.45, W / 2 + 0.015, H * 0.85), albedo=(0.1, 0.1, 0.1))
        if not truck:
            cv.paint(cv.m_rect(0.3, H * 0.9, W - 0.3, H * 0.97), albedo=(0.05, 0.05, 0.05),
                     emit=(_n(800), _n(500), _n(60)))
            for i in range(10 if cv.detail else 0):
                xx = 0.4 + i * (W - 0.8) / 10
                cv.paint(cv.m_rect(xx, H * 0.915, xx + 0.08, H * 0.955), albedo=(0.9, 0.6, 0.1),
                         emit=(_n(2000), _n(1300), _n(150)))
        hl = (_n(p["head_nits"]),) * 3 if lights else ((_n(2.5e4),) * 3 if p["drl"] else None)
        for xa in (0.15, W - 0.5):
            cv.paint(cv.m_rect(xa, 0.6, xa + 0.35, 0.78), albedo=(0.7, 0.7, 0.7), emit=hl)
        cv.paint(cv.m_rect(W * 0.3, 0.55, W * 0.7, 0.85), albedo=(0.05, 0.05, 0.05))
        for i in range(6 if cv.detail else 0):
            yy = 0.57 + i * 0.045
            cv.paint(cv.m_rect(W * 0.31, yy, W * 0.69, yy + 0.015), albedo=(0.4, 0.4, 0.4))
    else:
        if truck:  # box doors with bars and handles
            cv.paint(cv.m_rect(W / 2 - 0.015, 0.9, W / 2 + 0.015, H - 0.05), albedo=(0.05, 0.05, 0.05))
            for xx in (W * 0.3, W * 0.7):
                cv.paint(cv.m_rect(xx - 0.02, 0.9, xx + 0.02, H - 0.1), albedo=(0.5, 0.5, 0.5), shade=1.2)
            cv.paint(cv.m_rect(0.3, 0.55, W - 0.3, 0.7), albedo=(0.9, 0.4, 0.05), retro=1.0)
            for i in range(12):
                if i % 2:
                    xx = 0.3 + i * (W - 0.6) / 12
                    cv.paint(cv.m_rect(xx, 0.55, xx + (W - 0.6) / 12, 0.7), albedo=(0.8, 0.8, 0.8), retro=1.0)
        else:
            cv.paint(cv.m_rect(0.2, H * 0.55, W - 0.2, H * 0.85), albedo=(0.04, 0.05, 0.06), shade=1.4)
            cv.paint(cv.m_rect(0.4, H * 0.3, W - 0.4, H * 0.45), albedo=(0.1, 0.1, 0.12))
            for i in range(8 if cv.detail else 0):
                xx = 0.5 + i * (W - 1.0) / 8
                cv.paint(cv.m_rect(xx, H * 0.32, xx + 0.1, H * 0.43), albedo=(0.3, 0.3, 0.3))
        brake = p["braking"]
        lvl = 6e3 if brake else (400 if lights else 0)
        for xa in (0.1, W - 0.35):
            cv.paint(cv.m_rect(xa, 0.55, xa + 0.25, 0.95), albedo=(0.45, 0.03, 0.03),
                     emit=(_n(lvl), _n(lvl) * 0.05, _n(lvl) * 0.03) if lvl else None)
        pw = 0.52
        cv.paint(cv.m_rect(W / 2 - pw / 2, 0.42, W / 2 + pw / 2, 0.53), albedo=(0.8, 0.8, 0.75), retro=0.5)
        _glyphs(cv, W / 2 - pw / 2 + 0.04, 0.435, W / 2 + pw / 2 - 0.02, 0.515, p["seed"], n=6)


def _draw_bus_side(cv, L, H, p, k, lights):
    truck = k.startswith("truck")
    col = p["colour"]
    r = 0.5
    cv.paint(cv.m_rect(0.0, 0.35, L, H), albedo=col, texture=0.04)
    if truck:
        cab = 2.3
        cv.paint(cv.m_rect(L - 0.25 - cab if p["face_right"] else 0.25, 0.35, L - 0.25 if p["face_right"] else 0.25 + cab, H * 0.82),
                 albedo=p["cab_colour"])
        cv.paint(cv.m_rect(L - 0.25 - cab if p["face_right"] else cab + 0.25, 0.35, L - 0.2 - cab if p["face_right"] else cab + 0.3, H),
                 albedo=(0.02, 0.02, 0.02))
        # logo stripes on the box
        for i in range(3):
            yy = H * 0.45 + i * 0.35
            cv.paint(cv.m_rect(L * 0.1, yy, L * 0.65, yy + 0.12), albedo=p["stripe"])
    else:
        for i in range(int(L / 1.4)):
            xx = 0.6 + i * 1.4
            if xx + 1.2 > L - 0.3:
                break
            cv.paint(cv.m_rect(xx, H * 0.5, xx + 1.2, H * 0.88), albedo=(0.04, 0.05, 0.06), shade=1.4)
        dx = L * 0.25
        cv.paint(cv.m_rect(dx, 0.4, dx + 1.1, H * 0.88), albedo=(0.05, 0.06, 0.07), shade=1.2)
        cv.paint(cv.m_rect(dx + 0.54, 0.4, dx + 0.56, H * 0.88), albedo=(0.4, 0.4, 0.4))
        cv.paint(cv.m_rect(0.0, H * 0.3, L, H * 0.36), albedo=p["stripe"])
    for wx in (1.6, L - 2.2):
        cv.paint(cv.m_ellipse(wx, r, r + 0.1, r + 0.1), albedo=(0.02, 0.02, 0.02), shade=0.3)
        _wheel(cv, wx, r, spokes=8, rim=(0.45, 0.45, 0.45))
    cv.paint(cv.m_rect(0.3, 0.3, L - 0.3, 0.4), albedo=(0.03, 0.03, 0.03), shade=0.5)


def _draw_person(cv, W, H, p, t):
    skin, shirt, pants = p["skin"], p["shirt"], p["pants"]
    side = p["side"]
    cx = W / 2
    head_r = H * 0.065
    hy = H - head_r
    phase = math.sin(2 * math.pi * (p["gait_hz"] * t + p["phase"])) if p["walking"] else 0.0
    # legs
    hip = H * 0.5
    sw = 0.22 * phase if side else 0.0
    lw = W * 0.16
    for sgn in (-1, 1):
        off = 0.0 if side else sgn * W * 0.12
        x_foot = cx + off + sgn * sw
        cv.paint(cv.m_line(cx + off, hip, x_foot, 0.06, lw), albedo=pants, texture=0.2)
        cv.paint(cv.m_ellipse(x_foot + (0.05 if side else 0), 0.04, 0.1 if side else 0.07, 0.045), albedo=(0.05, 0.04, 0.04))
    # torso with stripes / pattern
    tw = W * (0.36 if side else 0.5)
    cv.paint(cv.m_rect(cx - tw / 2, hip - 0.05, cx + tw / 2, H * 0.81), albedo=shirt, texture=0.15)
    if p["stripes"]:
        for i in range(4):
            yy = hip + 0.04 + i * 0.1
            cv.paint(cv.m_rect(cx - tw / 2, yy, cx + tw / 2, yy + 0.035), albedo=p["stripe_col"])
    if p["bag"]:
        cv.paint(cv.m_rect(cx + tw / 2 - 0.02, hip - 0.15, cx + tw / 2 + 0.12, hip + 0.1), albedo=(0.15, 0.1, 0.06))
    # arms
    for sgn in (-1, 1):
        ax = cx + sgn * (tw / 2 + W * 0.04) if not side else cx
        hx = ax + (-sgn * 0.18 * phase if side else sgn * 0.03)
        cv.paint(cv.m_line(ax, H * 0.79, hx, hip - 0.02, W * 0.11), albedo=shirt, shade=0.9)
        cv.paint(cv.m_ellipse(hx, hip - 0.04, W * 0.06, W * 0.07), albedo=skin)
    # neck, head, hair, face detail
    cv.paint(cv.m_rect(cx - W * 0.06, H * 0.8, cx + W * 0.06, hy - head_r * 0.8), albedo=skin)
    cv.paint(cv.m_ellipse(cx, hy, head_r * 0.85, head_r), albedo=skin)
    cv.paint(cv.m_ellipse(cx, hy + head_r * 0.45, head_r * 0.9, head_r * 0.6), albedo=p["hair"])
    if not side and p["facing"]:
        for sgn in (-1, 1):
            cv.paint(cv.m_ellipse(cx + sgn * head_r * 0.35, hy, head_r * 0.12, head_r * 0.09), albedo=(0.05, 0.04, 0.04))
        cv.paint(cv.m_rect(cx - head_r * 0.3, hy - head_r * 0.5, cx + head_r * 0.3, hy - head_r * 0.42), albedo=(0.3, 0.1, 0.1))


def _draw_bike(cv, W, H, p, k, t, lights):
    side = k == "bike_side"
    fr = p["frame"]
    if side:
        r = 0.34
        face_right = p["face_right"]
        xb, xf = (0.4, W - 0.4) if face_right else (W - 0.4, 0.4)
        for wx in (xb, xf):
            cv.paint(cv.m_ring(wx, r, r - 0.04, r), albedo=(0.03, 0.03, 0.03))
            for i in range(12 if cv.detail else 0):
                a = 2 * math.pi * i / 12 + t * 6
                cv.paint(cv.m_line(wx, r, wx + r * math.cos(a), r + r * math.sin(a), 0.012), albedo=(0.5, 0.5, 0.52))
        s = 1 if face_right else -1
        crank = (W / 2 - 0.05 * s, r)
        seat = (W / 2 - 0.2 * s, r + 0.55)
        head = (xf - 0.15 * s, r + 0.5)
        for a, b in ((crank, seat), (seat, (xb, r)), ((xb, r), crank), (crank, head), (seat, head), (head, (xf, r))):
            cv.paint(cv.m_line(a[0], a[1], b[0], b[1], 0.04), albedo=fr)
        # rider
        hip = (seat[0], seat[1] + 0.05)
        sh = (seat[0] + 0.3 * s, seat[1] + 0.62)
        ph = 2 * math.pi * (1.2 * t + p["phase"])
        foot = (crank[0] + 0.17 * math.cos(ph), crank[1] + 0.17 * math.sin(ph))
        knee = ((hip[0] + foot[0]) / 2 + 0.18 * s, (hip[1] + foot[1]) / 2 + 0.1)
        cv.paint(cv.m_line(*hip, *knee, 0.12), albedo=p["pants"])
        cv.paint(cv.m_line(*knee, *foot, 0.1), albedo=p["pants"])
        cv.paint(cv.m_line(*hip, *sh, 0.28), albedo=p["shirt"], texture=0.15)
        cv.paint(cv.m_line(*sh, head[0], head[1] + 0.08, 0.08), albedo=p["shirt"])
        cv.paint(cv.m_ellipse(sh[0] + 0.06 * s, sh[1] + 0.17, 0.1, 0.12), albedo=p["skin"])
        cv.paint(cv.m_ellipse(sh[0] + 0.04 * s, sh[1] + 0.23, 0.12, 0.08), albedo=p["helmet"], shade=1.2)
        if lights:
            cv.paint(cv.m_ellipse(xf + 0.05 * s, head[1], 0.04, 0.03), albedo=(0.8, 0.8, 0.8), emit=(_n(2e4),) * 3)
    else:
        cx = W / 2
        cv.paint(cv.m_rect(cx - 0.025, 0.0, cx + 0.025, 0.68), albedo=(0.03, 0.03, 0.03))
        cv.paint(cv.m_rect(cx - 0.08, 0.62, cx + 0.08, 0.66), albedo=fr)
        cv.paint(cv.m_rect(cx - 0.06, 0.4, cx + 0.06, 0.46), albedo=(0.6, 0.05, 0.05), retro=1.0,
                 emit=(_n(3e3), _n(150), _n(90)) if lights else None)
        # rider from behind
        for sgn in (-1, 1):
            cv.paint(cv.m_line(cx + sgn * 0.08, 0.95, cx + sgn * 0.1, 0.35 + 0.12 * sgn * math.sin(2 * math.pi * 1.2 * t), 0.11), albedo=p["pants"])
        cv.paint(cv.m_rect(cx - 0.2, 0.92, cx + 0.2, 1.45), albedo=p["shirt"], texture=0.15)
        if p["vest"]:
            cv.paint(cv.m_rect(cx - 0.2, 1.1, cx + 0.2, 1.16), albedo=(0.9, 0.9, 0.3), retro=1.0)
        for sgn in (-1, 1):
            cv.paint(cv.m_line(cx + sgn * 0.2, 1.42, cx + sgn * 0.27, 1.1, 0.08), albedo=p["shirt"])
        cv.paint(cv.m_ellipse(cx, 1.55, 0.1, 0.12), albedo=p["skin"])
        cv.paint(cv.m_ellipse(cx, 1.6, 0.12, 0.09), albedo=p["helmet"], shade=1.2)


def _draw_traffic_light(cv, W, H, p, t):
    # back plate with a white retro-reflective border, housing, three lenses with visors
    cv.paint(cv.m_rect(0, 0, W, H), albedo=(0.75, 0.75, 0.72), retro=1.0)
    b = W * 0.12
    cv.paint(cv.m_rect(b, b, W - b, H - b), albedo=(0.03, 0.03, 0.03), texture=0.2)
    state = p["state"]
    cols = {"red": (1.0, 0.12, 0.05), "yellow": (1.0, 0.65, 0.05), "green": (0.15, 1.0, 0.55)}
    r = min(W * 0.28, (H - 2 * b) / 7)
    for i, name in enumerate(("red", "yellow", "green")):
        cy = H - b - (H - 2 * b) * (i + 0.5) / 3
        c = np.asarray(cols[name])
        on = name == state
        cv.paint(cv.m_ellipse(W / 2, cy, r * 1.15, r * 1.15), albedo=(0.01, 0.01, 0.01), shade=0.4)
        cv.paint(cv.m_ellipse(W / 2, cy, r, r), albedo=tuple(0.12 * c + 0.02),
                 emit=tuple(c * _n(p["signal_nits"])) if on else None, shade=1.3)
        if on:  # LED dot pattern: concentric rings brighter
            cv.paint(cv.m_ring(W / 2, cy, r * 0.45, r * 0.55), albedo=tuple(0.12 * c),
                     emit=tuple(c * _n(p["signal_nits"]) * 1.6))
        cv.paint(cv.m_rect(W / 2 - r * 1.25, cy + r * 1.05, W / 2 + r * 1.25, cy + r * 1.25), albedo=(0.02, 0.02, 0.02))


def _draw_sign(cv, W, H, p):
    shape = p["shape"]
    cx, cy = W / 2, H / 2
    red, white, blue, yel, blk = (0.55, 0.04, 0.04), (0.8, 0.8, 0.78), (0.03, 0.12, 0.5), (0.8, 0.6, 0.05), (0.03, 0.03, 0.03)
    if shape == "circle":
        cv.paint(cv.m_ellipse(cx, cy, W / 2, H / 2), albedo=red, retro=1.0)
        cv.paint(cv.m_ellipse(cx, cy, W * 0.38, H * 0.38), albedo=white, retro=1.0)
        _glyphs(cv, cx - W * 0.22, cy - H * 0.15, cx + W * 0.22, cy + H * 0.15, p["seed"], n=2, retro=0.0)
    elif shape == "triangle":
        cv.paint(cv.m_poly([(0, 0), (W, 0), (cx, H)]), albedo=red, retro=1.0)
        cv.paint(cv.m_poly([(W * 0.15, H * 0.09), (W * 0.85, H * 0.09), (cx, H * 0.8)]), albedo=white, retro=1.0)
        cv.paint(cv.m_rect(cx - W * 0.035, H * 0.32, cx + W * 0.035, H * 0.6), albedo=blk)
        cv.paint(cv.m_ellipse(cx, H * 0.23, W * 0.04, W * 0.04), albedo=blk)
    elif shape == "octagon":
        pts = [(cx + W / 2 * math.cos(a), cy + H / 2 * math.sin(a)) for a in np.arange(8) * math.pi / 4 + math.pi / 8]
        cv.paint(cv.m_poly(pts), albedo=red, retro=1.0)
        pts2 = [(cx + W * 0.43 * math.cos(a), cy + H * 0.43 * math.sin(a)) for a in np.arange(8) * math.pi / 4 + math.pi / 8]
        cv.paint(cv.m_poly(pts2), albedo=(0.65, 0.05, 0.05), retro=1.0)
        _glyphs(cv, cx - W * 0.32, cy - H * 0.1, cx + W * 0.32, cy + H * 0.1, p["seed"], col=white, n=4, retro=1.0)
    elif shape == "diamond":
        cv.paint(cv.m_poly([(cx, 0), (W, cy), (cx, H), (0, cy)]), albedo=white, retro=1.0)
        cv.paint(cv.m_poly([(cx, H * 0.15), (W * 0.85, cy), (cx, H * 0.85), (W * 0.15, cy)]), albedo=yel, retro=1.0)
    else:  # rect: blue info sign with a white arrow and a border
        cv.paint(cv.m_rect(0, 0, W, H), albedo=white, retro=1.0)
        cv.paint(cv.m_rect(W * 0.06, H * 0.06, W * 0.94, H * 0.94), albedo=blue, retro=1.0)
        cv.paint(cv.m_rect(cx - W * 0.06, H * 0.18, cx + W * 0.06, H * 0.6), albedo=white, retro=1.0)
        cv.paint(cv.m_poly([(cx - W * 0.25, H * 0.58), (cx + W * 0.25, H * 0.58), (cx, H * 0.85)]), albedo=white, retro=1.0)
    # back of the sign is on the far side; the pole is a separate prop


# ---------------------------------------------------------------------------- sampling
def _person_params(rng):
    return dict(skin=tuple(np.array(rng.choice([[0.55, 0.4, 0.3], [0.35, 0.22, 0.15], [0.2, 0.12, 0.08], [0.6, 0.45, 0.38]])) * rng.uniform(0.9, 1.1)),
                shirt=_paint_colour(rng), pants=tuple(np.array(_paint_colour(rng)) * 0.6),
                hair=tuple(np.array(rng.choice([[0.05, 0.04, 0.03], [0.3, 0.2, 0.1], [0.5, 0.45, 0.3], [0.15, 0.1, 0.08]]))),
                stripes=bool(rng.random() < 0.4), stripe_col=_paint_colour(rng), bag=bool(rng.random() < 0.3),
                phase=float(rng.random()), gait_hz=float(rng.uniform(0.8, 1.0)), walking=True, side=False, facing=True,
                helmet=_paint_colour(rng), frame=_paint_colour(rng), vest=bool(rng.random() < 0.3), face_right=True)


def make_object(rng, cls: str, x: float, z: float, *, view: str = "rear", speed: float = 0.0,
                lateral_speed: float = 0.0, base_y: Optional[float] = None) -> ObjectSpec:
    """One object of class ``cls`` with random appearance at ground position (x, z)."""
    seed = int(rng.integers(2 ** 31))
    if cls == "car_van":
        van = rng.random() < 0.25
        p = dict(colour=_paint_colour(rng), seed=seed, braking=bool(rng.random() < 0.25),
                 drl=bool(rng.random() < 0.7), dark_bumper=bool(rng.random() < 0.5),
                 head_nits=float(rng.uniform(2e4, 1.5e5)), face_right=lateral_speed >= 0)
        Wm, Hm = (2.0, float(rng.uniform(1.9, 2.3))) if van else (float(rng.uniform(1.7, 1.9)), float(rng.uniform(1.4, 1.6)))
        if view == "side":
            return ObjectSpec(cls, ("van" if van else "car") + "_side", x, z, float(rng.uniform(4.8, 5.4)) if van else float(rng.uniform(3.9, 4.8)),
                              Hm, depth_m=Wm, vx=lateral_speed, vz=speed, params=p)
        return ObjectSpec(cls, ("van_" if van else "car_") + view, x, z, Wm, Hm, depth_m=4.5, vz=speed, vx=lateral_speed, params=p)
    if cls == "bus_truck":
        truck = rng.random() < 0.5
        p = dict(colour=_paint_colour(rng), seed=seed, braking=bool(rng.random() < 0.25), drl=bool(rng.random() < 0.7),
                 head_nits=float(rng.uniform(2e4, 1.5e5)), stripe=_paint_colour(rng), cab_colour=_paint_colour(rng),
                 face_right=lateral_speed >= 0)
        Wm = 2.55
        Hm = float(rng.uniform(3.0, 3.4)) if not truck else float(rng.uniform(3.2, 3.9))
        name = "truck" if truck else "bus"
        if view == "side":
            return ObjectSpec(cls, name + "_side", x, z, float(rng.uniform(9, 12.5)), Hm, depth_m=Wm, vx=lateral_speed, vz=speed, params=p)
        return ObjectSpec(cls, f"{name}_{view}", x, z, Wm, Hm, depth_m=10.0, vz=speed, vx=lateral_speed, params=p)
    if cls == "person":
        p = _person_params(rng)
        p["side"] = view == "side"
        p["facing"] = view == "front"
        p["walking"] = abs(speed) + abs(lateral_speed) > 0.1
        Hm = float(rng.uniform(1.5, 1.95))
        return ObjectSpec(cls, "person", x, z, Hm * (0.3 if view == "side" else 0.32) + 0.1, Hm, depth_m=0.4, vz=speed, vx=lateral_speed, params=p)
    if cls == "bike":
        p = _person_params(rng)
        p["face_right"] = lateral_speed >= 0
        if view == "side":
            return ObjectSpec(cls, "bike_side", x, z, 1.75, 1.75, depth_m=0.6, vx=lateral_speed, vz=speed, params=p)
        return ObjectSpec(cls, "bike_rear", x, z, 0.6, 1.7, depth_m=1.7, vz=speed, vx=lateral_speed, params=p)
    if cls == "traffic_light":
        p = dict(state=str(rng.choice(["red", "yellow", "green"], p=[0.45, 0.1, 0.45])), signal_nits=float(rng.uniform(8e3, 2.5e4)))
        Hm = float(rng.uniform(0.9, 1.05))
        return ObjectSpec(cls, "traffic_light", x, z, Hm * 0.36, Hm, depth_m=0.3,
                          base_y=float(rng.uniform(2.4, 3.2)) if base_y is None else base_y, params=p)
    if cls == "traffic_sign":
        shape = str(rng.choice(["circle", "triangle", "octagon", "diamond", "rect"], p=[0.35, 0.25, 0.1, 0.1, 0.2]))
        s = float(rng.uniform(0.6, 0.9))
        Wm, Hm = (s, s * 0.87) if shape == "triangle" else ((s, s * 1.2) if shape == "rect" else (s, s))
        return ObjectSpec(cls, "traffic_sign", x, z, Wm, Hm, depth_m=0.1,
                          base_y=float(rng.uniform(1.8, 2.6)) if base_y is None else base_y, params=dict(shape=shape, seed=seed))
    raise ValueError(f"unknown class {cls!r}")


def _pole(x, z, top, width=0.12):
    return ObjectSpec("prop", "pole", x, z, width, top, depth_m=width, params=dict(col=(0.3, 0.31, 0.3)))


def sample_objects(rng: np.random.Generator, w: World, z_from: float, z_to: float, ego_speed: float,
                   density: float = 1.0, pedestrians: bool = True) -> list:
    """Objects along a stretch of road ``[z_from, z_to]`` (world z), with velocities.

    ``density`` scales the counts (per 100 m: ~2.5 vehicles ahead, ~2 oncoming, ~2 parked,
    ~3 persons, ~0.8 bikes, signs, and traffic lights at crossings).
    """
    objs: list = []
    span = max(z_to - z_from, 1.0)
    lane_w = w.lane_w
    right_lanes = [i * lane_w for i in range(int(round((w.road_right + lane_w / 2) / lane_w)))]
    left_lanes = [-(i + 1) * lane_w for i in range(int(round((-w.road_left - lane_w / 2) / lane_w)))]
    t = w.tunnel
    in_tunnel = (lambda z: t is not None and t.z0 - 5 < z < t.z1 + 5)

    def count(per100):
        return int(rng.poisson(per100 * density * span / 100.0))

    def veh_class():
        return "bus_truck" if rng.random() < 0.18 else "car_van"

    for _ in range(count(2.5)):  # same direction, rear view
        lane = right_lanes[int(rng.integers(len(right_lanes)))]
        z = z_from + 7 + min(rng.exponential(40.0), span)
        x = lane + rng.normal(0, 0.2)
        if abs(x) < 1.0 and z - z_from < 10:
            continue
        objs.append(make_object(rng, veh_class(), x, z, view="rear", speed=ego_speed + rng.normal(0, 2.0)))
    for _ in range(count(2.0)):  # oncoming, front view
        if not left_lanes:
            break
        lane = left_lanes[int(rng.integers(len(left_lanes)))]
        objs.append(make_object(rng, veh_class(), lane + rng.normal(0, 0.2), z_from + 10 + rng.exponential(60.0),
                                view="front", speed=-rng.uniform(8, 22)))
    curb_x = w.road_right + 1.2
    curb_l = w.road_left - 1.2
    for _ in range(count(2.0)):  # parked
        z = rng.uniform(z_from + 5, z_to)
        if in_tunnel(z):
            continue
        xx = curb_x if rng.random() < 0.7 else curb_l
        objs.append(make_object(rng, "car_van" if rng.random() < 0.9 else "bus_truck", xx, z, view="rear" if xx > 0 else "front"))
    if pedestrians:
        for _ in range(count(3.0)):
            z = z_from + 4 + min(rng.exponential(35.0), span)
            if in_tunnel(z):
                continue
            side = 1 if rng.random() < 0.6 else -1
            edge = w.road_right if side > 0 else w.road_left
            x = edge + side * rng.uniform(0.6, max(0.8, w.sidewalk_w - 0.5))
            r = rng.random()
            if r < 0.4:
                objs.append(make_object(rng, "person", x, z, view="back", speed=rng.uniform(0.9, 1.6)))
            elif r < 0.8:
                objs.append(make_object(rng, "person", x, z, view="front", speed=-rng.uniform(0.9, 1.6)))
            else:
                objs.append(make_object(rng, "person", x, z, view="front", speed=0.0))
        for _ in range(count(1.8)):
            z = z_from + 6 + min(rng.exponential(40.0), span)
            if in_tunnel(z):
                continue
            if rng.random() < 0.7:  # same direction, near the right edge
                objs.append(make_object(rng, "bike", w.road_right - 0.7, z, view="rear", speed=rng.uniform(3, 7)))
            else:  # oncoming on the far edge, or parked on the sidewalk
                objs.append(make_object(rng, "bike", w.road_left + 0.7, z, view="rear", speed=-rng.uniform(3, 7)))
    # crossings (zebra every crossing_spacing m, shifted by the texture offset), with crossing
    # traffic and signals
    sp = w.crossing_spacing
    z0 = -w.tex_off[0]
    k0 = math.ceil((z_from - z0) / sp)
    for k in range(k0, k0 + int(span / sp) + 2):
        zc = z0 + sp * k + 2.0
        if not (z_from + 5 < zc < z_to) or in_tunnel(zc):
            continue
        tl_x = w.road_right + 0.5
        objs.append(_pole(tl_x, zc - 0.5, 3.5))
        light = make_object(rng, "traffic_light", tl_x, zc - 0.5, base_y=2.5)
        objs.append(light)
        if rng.random() < 0.7:  # overhead signal
            objs.append(make_object(rng, "traffic_light", rng.uniform(-1, 1) * 0.5, zc + 1.0, base_y=float(rng.uniform(4.8, 5.6))))
            objs[-1].params["state"] = light.params["state"]
        if rng.random() < 0.5:  # far-side signal on the left
            lx = w.road_left - 0.5
            objs.append(_pole(lx, zc + 6.0, 3.5))
            objs.append(make_object(rng, "traffic_light", lx, zc + 6.0, base_y=2.5))
            objs[-1].params["state"] = light.params["state"]
        if pedestrians and rng.random() < 0.6:
            for _ in range(int(rng.integers(1, 4))):
                vx = rng.choice([-1, 1]) * rng.uniform(0.9, 1.5)
                objs.append(make_object(rng, "person", rng.uniform(w.road_left, w.road_right), zc + rng.uniform(-1.5, 1.5),
                                        view="side", lateral_speed=vx))
        if rng.random() < 0.3:
            vx = rng.choice([-1, 1]) * rng.uniform(3, 9)
            objs.append(make_object(rng, veh_class() if rng.random() < 0.8 else "bike", rng.uniform(-25, 25), zc + 8,
                                    view="side", lateral_speed=vx))
    for _ in range(count(2.0)):  # signs on poles
        z = rng.uniform(z_from + 5, z_to)
        side = 1 if rng.random() < 0.75 else -1
        edge = w.road_right if side > 0 else w.road_left
        if in_tunnel(z):
            x = side * (t.half_width - 0.3)
        else:
            x = edge + side * rng.uniform(0.4, 1.5)
        s = make_object(rng, "traffic_sign", x, z)
        objs.append(_pole(x, z + 0.05, s.base_y + 0.05, 0.07))
        objs.append(s)
    if w.lamps is not None:
        for lx, ly, lz in w.lamps:
            if z_from - 20 < lz < z_to + 100:
                side = 1 if lx > 0 else -1
                pole_x = lx + side * 1.5
                objs.append(_pole(pole_x, lz + 0.05, ly + 0.2, 0.16))
                objs.append(ObjectSpec("prop", "street_lamp", lx, lz, 0.7, 0.22, base_y=ly - 0.1,
                                       params=dict(lamp_nits=float(rng.uniform(5e4, 3e5)), lamp_rgb=tuple(w.lamp_rgb))))
    return objs


# --------------------------------------------------------------------------- compositing
@dataclass
class Composite:
    radiance: np.ndarray  # (3, H, W) float32 e-/s
    instance_map: np.ndarray  # (H, W) int16: 0 background/props, k = object index k-1 in `drawn`
    boxes: list  # labelled objects
    ignored: list  # heavily occluded / truncated / tiny objects (not labels)
    drawn: list  # ObjectSpec per instance id - 1


def _ground_shadows(bg: Background, cam: Camera, w: World, objs, t: float):
    """Sun shadows (swept box footprint) and contact occlusion on ground pixels, in place."""
    H, W = bg.shape
    sun = w.sun_dir is not None and w.sun_dir[1] > 0.02 and float(np.max(w.sun_rgb)) > 0
    for o in objs:
        if o.base_y > 0.5 or o.kind in ("pole",):
            continue
        ox, oz = o.position(t)
        side_view = o.kind.endswith("_side")
        a, b = o.width_m / 2, o.depth_m / 2  # half extents across / along the view
        cz = oz + (b if not side_view else 0.0)  # rear/front views: the body extends away from the camera
        if sun:
            s = w.sun_dir
            dx, dz = -s[0] / s[1] * o.height_m, -s[2] / s[1] * o.height_m
        else:
            dx = dz = 0.0
        xs = [ox - a - 0.3, ox + a + 0.3, ox - a + dx, ox + a + dx]
        zs = [cz - b - 0.3, cz + b + 0.3, cz - b + dz, cz + b + dz]
        corners = np.array([[x, 0.0, z] for x in (min(xs), max(xs)) for z in (min(zs), max(zs))]).T
        u, v, d = cam.project(corners)
        if np.all(d <= 0.5):
            continue
        if np.any(d <= 0.5):
            u0, u1, v0, v1 = 0, W, int(max(0, np.nanmin(v[d > 0.5]) - 2)), H
        else:
            u0, u1 = int(max(0, np.floor(u.min()))), int(min(W, np.ceil(u.max()) + 1))
            v0, v1 = int(max(0, np.floor(v.min()))), int(min(H, np.ceil(v.max()) + 1))
        if u1 <= u0 or v1 <= v0:
            continue
        idx = (np.arange(v0, v1)[:, None] * W + np.arange(u0, u1)[None, :]).reshape(-1)
        g = pr.GROUND_LUT[bg.material[idx]]
        idx = idx[g]
        if idx.size == 0:
            continue
        px, pz = bg.points[0, idx], bg.points[2, idx]
        # contact occlusion: soft ellipse around the footprint
        q = ((px - ox) / (a + 0.25)) ** 2 + ((pz - cz) / (b + 0.25)) ** 2
        ao = np.clip(1.0 - q, 0, 1) * 0.85
        bg.amb[:, idx] *= (1 - ao)[None]
        if sun:
            lo = np.full(idx.size, 0.0)
            hi = np.full(idx.size, 1.0)
            for p0, c0, half, dd in ((px, ox, a, dx), (pz, cz, b, dz)):
                if abs(dd) < 1e-9:
                    ok = np.abs(p0 - c0) <= half
                    hi = np.where(ok, hi, -1.0)
                else:
                    f1 = (p0 - c0 - half) / dd
                    f2 = (p0 - c0 + half) / dd
                    lo = np.maximum(lo, np.minimum(f1, f2))
                    hi = np.minimum(hi, np.maximum(f1, f2))
            sh = (hi >= lo).astype(np.float32)
            bg.sun[:, idx] *= (1 - sh)[None]


def composite(bg: Background, cam: Camera, w: World, objs: list, t: float = 0.0,
              min_visible: float = MIN_VISIBLE_FRACTION, min_box_h: int = MIN_BOX_HEIGHT_PX,
              lighting: Optional[callable] = None) -> Composite:
    """Draw objects over a background; exact boxes from the instance map.

    ``lighting(points (3,N), normal (3,)) -> (white_rgb (3,N), headlight_rgb (3,N))`` overrides
    the procedural-world lighting (panorama scenes); by default the world's lights are used.
    """
    H, W = bg.shape
    _ground_shadows(bg, cam, w, objs, t)
    rad = bg.radiance().copy()
    depth = bg.depth.copy()
    inst = np.zeros((H, W), np.int16)
    R = cam.rotation()
    right = R[:, 0].copy()
    right[1] = 0
    right /= max(np.linalg.norm(right), 1e-9)
    fwd_h = np.array([-right[2], 0.0, right[0]])  # horizontal forward
    lights_on = bool(w.night or w.kind in ("dusk", "tunnel") or w.tunnel is not None)
    ctx = dict(lights_on=lights_on)
    f = cam.f
    entries = []
    for o in objs:
        ox, oz = o.position(t)
        c = cam.to_camera(np.array([[ox], [o.base_y], [oz]]))
        d = float(c[2, 0])
        if d < 1.5 or d > 400:
            continue
        entries.append((d, o, ox, oz))
    entries.sort(key=lambda e: -e[0])
    drawn, full_px, depths = [], [], []
    for d, o, ox, oz in entries:
        # the billboard faces the camera: anchored at its bottom-centre world point
        anchor = np.array([ox, o.base_y, oz])
        uc, vb, dd = cam.project(anchor[:, None])
        ppm = f / d
        wpx, hpx = o.width_m * ppm, o.height_m * ppm
        u0 = float(uc[0]) - wpx / 2
        v_top = float(vb[0]) - hpx
        if wpx < 0.6 or hpx < 0.6:
            continue
        c0, c1 = int(math.floor(u0)), int(math.ceil(u0 + wpx))
        r0, r1 = int(math.floor(v_top)), int(math.ceil(v_top + hpx))
        if c1 <= 0 or r1 <= 0 or c0 >= W or r0 >= H:
            # entirely outside: count for bookkeeping only if labelled
            continue
        if (c1 - c0) * (r1 - r0) > 4 * W * H:
            continue
        cols = np.arange(c0, c1)
        rows = np.arange(r0, r1)
        cv = Canvas(o.width_m, o.height_m, u0, v_top, ppm, cols, rows)
        draw(o, cv, t, ctx)
        a, alb, emit, shade, retro = cv.finish()
        full = int((a >= 0.5).sum())
        if full == 0:
            continue
        # clip to the image
        cs, ce = max(c0, 0), min(c1, W)
        rs, re = max(r0, 0), min(r1, H)
        a = a[rs - r0:re - r0, cs - c0:ce - c0]
        alb = alb[:, rs - r0:re - r0, cs - c0:ce - c0]
        emit = emit[:, rs - r0:re - r0, cs - c0:ce - c0]
        shade = shade[rs - r0:re - r0, cs - c0:ce - c0]
        retro = retro[rs - r0:re - r0, cs - c0:ce - c0]
        hh, ww = a.shape
        if hh == 0 or ww == 0:
            continue
        # world points of the sprite pixels (billboard plane through the anchor)
        X = (cols[cs - c0:ce - c0] + 0.5 - u0) / ppm - o.width_m / 2
        Y = o.base_y + o.height_m - (rows[rs - r0:re - r0] + 0.5 - v_top) / ppm
        P = (anchor[:, None, None] + right[:, None, None] * X[None, None, :]
             + np.array([0, 1.0, 0])[:, None, None] * (Y[None, :, None] - o.base_y)).reshape(3, -1)
        # push points slightly toward the camera so they are not inside their own shadow casters
        P = P - fwd_h[:, None] * 0.05
        normal = -fwd_h
        if lighting is None:
            white, head = _world_light(w, cam, P, normal)
        else:
            white, head = lighting(P, normal)
        white = white.reshape(3, hh, ww)
        head = head.reshape(3, hh, ww)
        obj_rad = alb * shade[None] * (white + head * (1 + RETRO_GAIN * retro[None])) + emit
        # depth test against the background and nearer-drawn objects
        vis = d < depth[rs:re, cs:ce]
        av = a * vis
        region = rad[:, rs:re, cs:ce]
        region *= (1 - av)[None]
        region += obj_rad * av[None]
        cover = (a >= 0.5) & vis
        depth[rs:re, cs:ce][cover] = d
        if o.label:
            drawn.append(o)
            full_px.append(full)
            depths.append(d)
            inst[rs:re, cs:ce][cover] = len(drawn)
        else:
            inst[rs:re, cs:ce][cover] = 0
    boxes, ignored = [], []
    if drawn:
        ids = inst.reshape(-1)
        counts = np.bincount(ids, minlength=len(drawn) + 1)
        ys, xs = np.nonzero(inst)
        lab = inst[ys, xs]
        for k, o in enumerate(drawn, start=1):
            sel = lab == k
            n_vis = int(counts[k])
            frac = n_vis / full_px[k - 1]
            rec = dict(cls=o.cls, class_id=CLASS_ID[o.cls], id=k, visible_fraction=round(float(frac), 4),
                       depth_m=round(float(depths[k - 1]), 3), kind=o.kind)
            if n_vis == 0:
                rec.update(box=None, reason="hidden")
                ignored.append(rec)
                continue
            x0, x1 = int(xs[sel].min()), int(xs[sel].max()) + 1
            y0, y1 = int(ys[sel].min()), int(ys[sel].max()) + 1
            rec["box"] = [x0, y0, x1, y1]
            if frac < min_visible:
                rec["reason"] = "occluded_or_truncated"
                ignored.append(rec)
            elif (y1 - y0) < min_box_h:
                rec["reason"] = "small"
                ignored.append(rec)
            else:
                boxes.append(rec)
    return Composite(radiance=rad, instance_map=inst, boxes=boxes, ignored=ignored, drawn=drawn)


def _world_light(w: World, cam: Camera, P: np.ndarray, normal: np.ndarray):
    n = P.shape[1]
    nrm = np.broadcast_to(np.asarray(normal, np.float32)[:, None], (3, n))
    white = np.zeros((3, n), np.float32)
    if w.sun_dir is not None:
        vis = pr.sun_visibility(w, P)
        cos_s = max(float(np.dot(w.sun_dir, normal)), 0.0)
        # a little sun also reaches surfaces facing away (bounce from the sunlit ground)
        bounce = 0.12 * max(float(w.sun_dir[1]), 0.0)
        white += w.sun_rgb.astype(np.float32)[:, None] * (vis * (cos_s + bounce))[None]
    amb = pr.ambient_factor(w, P, np.zeros(n, np.float32))
    white += w.amb_rgb.astype(np.float32)[:, None] * amb[None]
    white += pr.artificial_light(w, P, nrm, cam, parts=("tunnel", "lamps"))
    head = pr.artificial_light(w, P, nrm, cam, parts=("head",))
    return white, head
