"""Light at world points: sun with exact shadows, sky ambient, tunnel lamps, street lamps, ego headlights,
and the sky's own radiance (all in e-/s, :mod:`.radiometry`).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .camera_geometry import Camera
from .radiometry import SUN_RADIUS_DEG
from .textures import tex
from .world import World, block_height

LAMP_REACH = 50.0  # metres over which a street lamp's light is evaluated


def sun_visibility(w: World, P: np.ndarray) -> np.ndarray:
    """1 where the sun is visible from world points ``P (3, N)``, else 0 (hard shadows)."""
    n = P.shape[1]
    if w.sun_dir is None or w.sun_dir[1] <= 0:
        return np.zeros(n, np.float32)
    s = w.sun_dir
    vis = np.ones(n, bool)
    x, y, z = P[0], P[1], P[2]
    # buildings: infinite-depth blocks beyond the facade planes
    for blocks, bx, sign in ((w.build_right, w.build_right_x, 1), (w.build_left, w.build_left_x, -1)):
        if blocks is None or blocks.size == 0 or s[0] * sign <= 1e-6:
            continue
        k = (bx - x) / s[0]
        valid = (k > 0.05) & ((x - bx) * sign < 0.01)
        zh = z + k * s[2]
        yh = y + k * s[1]
        hgt = block_height(blocks, zh)
        vis &= ~(valid & (yh < hgt))
    for tx in (w.trees_left_x, w.trees_right_x):
        if tx is None or abs(s[0]) < 1e-6:
            continue
        k = (tx - x) / s[0]
        yh = y + k * s[1]
        vis &= ~((k > 0.05) & (yh < 9.0 + 3 * tex(z + k * s[2], 0 * z + 3, 0.15)))
    t = w.tunnel
    if t is not None:
        inside = (z > t.z0) & (z < t.z1) & (np.abs(x) < t.half_width + 0.01) & (y < t.height + 0.01)
        # inside: visible only through the portals
        ok = np.zeros(n, bool)
        if s[2] < -1e-6:
            k = (t.z0 - z) / s[2]
            ok |= (y + k * s[1] < t.height) & (np.abs(x + k * s[0]) < t.half_width)
        if s[2] > 1e-6:
            k = (t.z1 - z) / s[2]
            ok |= (y + k * s[1] < t.height) & (np.abs(x + k * s[0]) < t.half_width)
        # walls on the other side of a point shadow it too (side light from the portal is fine)
        vis &= ~inside | ok
        # outside, in front of the entry portal: the hill over the tunnel
        if s[2] > 1e-6:
            k = (t.z0 - z) / s[2]
            hit = (~inside) & (z < t.z0) & (k > 0) & (y + k * s[1] < t.portal_height)
            vis &= ~hit
        if s[2] < -1e-6:
            k = (t.z1 - z) / s[2]
            hit = (~inside) & (z > t.z1) & (k > 0) & (y + k * s[1] < t.portal_height)
            vis &= ~hit
    b = w.bridge
    if b is not None:
        for yy in (b.y0, b.y1):
            k = (yy - y) / s[1]
            zz = z + k * s[2]
            vis &= ~((k > 0) & (zz > b.z0) & (zz < b.z1))
    return vis.astype(np.float32)


def ambient_factor(w: World, P: np.ndarray, n_up: np.ndarray) -> np.ndarray:
    """Fraction of the open-sky ambient reaching points (canyons, tunnels, bridges, walls)."""
    x, y, z = P[0], P[1], P[2]
    a = np.where(n_up > 0.5, 1.0, 0.5).astype(np.float32)  # vertical surfaces see half the sky
    if w.street_canyon:
        a *= canyon_view_factor(w, P, n_up)
    t = w.tunnel
    if t is not None:
        inside = (z > t.z0) & (z < t.z1) & (np.abs(x) < t.half_width + 0.01)
        d = np.minimum(np.abs(z - t.z0), np.abs(t.z1 - z))
        a = np.where(inside, a * 0.4 * np.exp(-np.clip(d, 0, None) / 12.0), a)
    b = w.bridge
    if b is not None:
        under = (z > b.z0) & (z < b.z1) & (y < b.y0)
        d = np.minimum(z - b.z0, b.z1 - z)
        a = np.where(under, a * (0.15 + 0.5 * np.exp(-np.clip(d, 0, None) / 4.0)), a)
    return a


def canyon_view_factor(w: World, P: np.ndarray, n_up: np.ndarray) -> np.ndarray:
    """Sky view of points in a street canyon relative to open ground (2-D canyon formula).

    Ground: ``0.5 (d_L / sqrt(d_L^2 + h_L^2) + d_R / sqrt(d_R^2 + h_R^2))`` with ``d`` the
    distance to and ``h`` the height of the facade on each side (0 in cross-street gaps).
    Facades: ``1 - h' / sqrt(h'^2 + W^2)`` with ``h'`` the opposite facade's height above
    the point and ``W`` the street width. Everything else in the street: the ground value.
    """
    x, y, z = P[0], P[1], P[2]
    hl = np.maximum(block_height(w.build_left, z), 0) if w.build_left is not None else np.zeros_like(z)
    hr = np.maximum(block_height(w.build_right, z), 0) if w.build_right is not None else np.zeros_like(z)
    dl = np.maximum(x - w.build_left_x, 0.3)
    dr = np.maximum(w.build_right_x - x, 0.3)
    hl_rel = np.maximum(hl - y, 0)
    hr_rel = np.maximum(hr - y, 0)
    vf = 0.5 * (dl / np.sqrt(dl * dl + hl_rel * hl_rel) + dr / np.sqrt(dr * dr + hr_rel * hr_rel))
    width = w.build_right_x - w.build_left_x
    on_facade = (n_up < 0.5) & ((np.abs(x - w.build_left_x) < 0.05) | (np.abs(x - w.build_right_x) < 0.05))
    h_opp = np.where(x > 0, hl_rel, hr_rel)
    vf_fac = 1.0 - h_opp / np.sqrt(h_opp * h_opp + width * width)
    return np.where(on_facade, vf_fac, vf).astype(np.float32)


def artificial_light(w: World, P: np.ndarray, normal: np.ndarray, cam: Optional[Camera],
                     parts=("tunnel", "lamps", "head")) -> np.ndarray:
    """White radiance from tunnel lighting, street lamps and ego headlights: ``(3, N)`` e-/s.

    ``parts`` selects the sources (objects use the headlight part apart, for retro-reflection).
    """
    n = P.shape[1]
    out = np.zeros((3, n), np.float32)
    x, y, z = P[0], P[1], P[2]
    t = w.tunnel
    if t is not None and "tunnel" in parts:
        inside = (z > t.z0 - 2) & (z < t.z1 + 2) & (np.abs(x) < t.half_width + 0.01)
        if inside.any():
            mod = 0.75 + 0.25 * np.cos(np.pi * (z - t.z0) / t.lamp_spacing) ** 2
            thr = 1.0 + (t.threshold_gain - 1.0) * np.clip(1 - (z - t.z0) / t.threshold_len, 0, 1)
            # exit zone is lit a little more too
            thr = thr + 1.0 * np.clip(1 - (t.z1 - z) / 40.0, 0, 1)
            lvl = np.where(inside, t.interior_white * mod * thr, 0.0).astype(np.float32)
            out += lvl[None] * np.asarray(t.lamp_rgb, np.float32)[:, None]
    if w.lamps is not None and len(w.lamps) and "lamps" in parts:
        zmin = (cam.z - 40) if cam is not None else -1e9
        zmax = (cam.z + 250) if cam is not None else 1e9
        L = w.lamps[(w.lamps[:, 2] > zmin) & (w.lamps[:, 2] < zmax)]
        if len(L):
            acc = np.zeros(n, np.float32)
            # a lamp lights points within LAMP_REACH metres (beyond: < 2 % of its peak): bin by z
            zb = np.floor(z / LAMP_REACH).astype(np.int64)
            order = np.argsort(zb, kind="stable")
            zs = zb[order]
            for lx, ly, lz in L:
                b = int(math.floor(lz / LAMP_REACH))
                i0, i1 = np.searchsorted(zs, [b - 1, b + 2])
                if i1 <= i0:
                    continue
                idx = order[i0:i1]
                dx, dy, dz = lx - x[idx], ly - y[idx], lz - z[idx]
                d2 = dx * dx + dy * dy + dz * dz + 1.0
                inv = 1.0 / np.sqrt(d2)
                cos_s = np.maximum((normal[0, idx] * dx + normal[1, idx] * dy + normal[2, idx] * dz) * inv, 0)
                cos_l = np.maximum(dy * inv, 0)  # lamp emits downward, cosine lobe
                acc[idx] += (cos_s * cos_l ** 1.5 / d2).astype(np.float32)
            out += (w.lamp_white_m2 * acc)[None] * w.lamp_rgb.astype(np.float32)[:, None]
    if w.headlights and cam is not None and "head" in parts:
        hx, hy, hz = cam.x, 0.65, cam.z + 1.5
        yaw = math.radians(cam.yaw_deg)
        fx, fz = math.sin(yaw), math.cos(yaw)
        dx, dy, dz = x - hx, y - hy, z - hz
        d2 = dx * dx + dy * dy + dz * dz + 0.5
        inv = 1.0 / np.sqrt(d2)
        fwd = (dx * fx + dz * fz) * inv
        lat = (dx * fz - dz * fx) * inv
        up = dy * inv
        # low beam: hot spot just below the horizon (~1 %), sharp cut-off above, weaker on the
        # road right in front of the car (steeply below the beam axis)
        beam = np.exp(-(lat / 0.30) ** 2) * np.where(up < -0.012, np.exp(-((up + 0.012) / 0.07) ** 2),
                                                      np.exp(-((up + 0.012) / 0.012) ** 2))
        beam *= (fwd > 0)
        # brighter toward the curb (right), as low beams are asymmetric
        beam *= 1.0 + 0.3 * np.clip(lat / 0.3, -1, 1)
        cos_s = np.maximum(-(normal[0] * dx + normal[1] * dy + normal[2] * dz) * inv, 0)
        lvl = (w.head_white_m2 * beam * cos_s / d2).astype(np.float32)
        out += lvl[None] * np.array([1.0, 0.97, 0.92], np.float32)[:, None]
    return out


def sky_radiance(w: World, d: np.ndarray) -> np.ndarray:
    """Sky radiance ``(3, N)`` e-/s along unit directions ``d (3, N)``."""
    el = np.clip(d[1], 0, 1)
    wgt = np.sqrt(el)[None]
    hz = w.sky_horizon.astype(np.float32)[:, None]
    zn = w.sky_zenith.astype(np.float32)[:, None]
    out = hz * (1 - wgt) + zn * wgt
    below = d[1] < 0
    if below.any():  # only through gaps; the far ground haze
        out[:, below] = hz * 0.5
    if w.sun_dir is not None and w.sun_disc.max() > 0:
        cosang = np.clip(w.sun_dir.astype(np.float32) @ d, -1, 1)
        ang = np.degrees(np.arccos(cosang))
        near = ang < 25
        if near.any():
            a = np.maximum(ang[near], SUN_RADIUS_DEG)
            glow = w.aureole * (1.0 / a) ** 2 - w.aureole / 625.0
            out[:, near] += hz * np.maximum(glow, 0)[None] * np.array([1.0, 0.97, 0.9], np.float32)[:, None]
            disc = ang < SUN_RADIUS_DEG
            if disc.any():
                out[:, disc] = w.sun_disc.astype(np.float32)[:, None]
    if w.night:
        out = out * (1 + 0.15 * np.abs(tex(d[0] * 80, d[1] * 80 + 5, 1.0)))[None]
    return out.astype(np.float32)
