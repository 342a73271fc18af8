"""Parametric sprites of the six object classes and the props (poles, street lamps).

Sprites are drawn in metres on an upright billboard standing on the ground (or on a pole),
facing the camera, at the object's world position; the pixel raster of the sprite *is* the
image raster (2 x 2 supersampled), so there is no resampling. Each sprite carries albedo,
coverage (alpha), a shading factor (facets, wheel arches, underbody occlusion), emission
(head/tail/brake lights, traffic-light signals, bus destination signs, plate lights, bike
lights) and retro-reflection (signs, plates: they glow in the ego headlights). Fine detail a
detector can learn and that clipping or noise destroys: licence-plate glyphs, grilles,
window frames, wheel spokes, clothing stripes, sign symbols and digits.
"""
from __future__ import annotations

import math

import numpy as np

from .canvas import Canvas
from .placement import ObjectSpec
from .radiometry import nits_to_e_per_s as _n


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
