"""Objects composited over a background with lighting, shadows, depth test and exact boxes.

Lighting is evaluated per sprite pixel at its world point with the same functions as the
background (:mod:`.lighting`): sun with exact shadows of buildings / tunnel / bridge, sky
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
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..classes import CLASS_ID
from .background import Background
from .camera_geometry import Camera
from .lighting import ambient_factor, artificial_light, sun_visibility
from .materials import GROUND_LUT
from .sprites import draw
from .canvas import Canvas
from .world import World

MIN_VISIBLE_FRACTION = 0.4
MIN_BOX_HEIGHT_PX = 6
RETRO_GAIN = 40.0  # retro-reflective sheeting: headlight return vs a white diffuse surface


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
        g = GROUND_LUT[bg.material[idx]]
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
        vis = sun_visibility(w, P)
        cos_s = max(float(np.dot(w.sun_dir, normal)), 0.0)
        # a little sun also reaches surfaces facing away (bounce from the sunlit ground)
        bounce = 0.12 * max(float(w.sun_dir[1]), 0.0)
        white += w.sun_rgb.astype(np.float32)[:, None] * (vis * (cos_s + bounce))[None]
    amb = ambient_factor(w, P, np.zeros(n, np.float32))
    white += w.amb_rgb.astype(np.float32)[:, None] * amb[None]
    white += artificial_light(w, P, nrm, cam, parts=("tunnel", "lamps"))
    head = artificial_light(w, P, nrm, cam, parts=("head",))
    return white, head
