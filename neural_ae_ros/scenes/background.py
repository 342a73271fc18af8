"""Ray-cast background of a road world (before objects), radiance terms kept apart for object shadows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera_geometry import Camera
from .lighting import ambient_factor, artificial_light, sky_radiance, sun_visibility
from .materials import (ALBEDO_LUT, BRIDGE, CURB, FACADE, MARKING, PORTAL, ROAD, SIDEWALK, T_CEIL, T_WALL, TREES,
                        VERGE, WINDOW)
from .radiometry import E_PER_S_PER_NIT, nits_to_e_per_s
from .textures import tex
from .world import World, block_height


@dataclass
class Background:
    """A rendered background, before objects. Radiance terms kept apart so objects can cast shadows."""

    sun: np.ndarray  # (3, N) albedo * direct sun term
    amb: np.ndarray  # (3, N) albedo * (sky ambient + artificial light)
    emit: np.ndarray  # (3, N) emission (sky, lamps, windows)
    points: np.ndarray  # (3, N) hit points (sky: far away along the ray)
    material: np.ndarray  # (N,) uint8
    depth: np.ndarray  # (H, W) camera z depth, metres (sky: 1e5)
    shape: tuple

    def radiance(self) -> np.ndarray:
        h, w = self.shape
        return (self.sun + self.amb + self.emit).reshape(3, h, w)


def render_background(w: World, cam: Camera) -> Background:
    d = cam.rays().astype(np.float32)
    N = d.shape[1]
    C = cam.center.astype(np.float32)
    INF = np.float32(1e9)
    best_t = np.full(N, INF, np.float32)
    mat = np.zeros(N, np.uint8)

    def consider(t, valid, m):
        nonlocal best_t
        better = valid & (t > 1e-3) & (t < best_t)
        best_t = np.where(better, t, best_t)
        mat[better] = m

    dx, dy, dz = d[0], d[1], d[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        # ground
        tg = np.where(dy < -1e-6, -C[1] / dy, INF)
        consider(tg, dy < -1e-6, ROAD)
        # facades
        for blocks, bx in ((w.build_right, w.build_right_x), (w.build_left, w.build_left_x)):
            if blocks is None or blocks.size == 0:
                continue
            sel = np.flatnonzero(dx > 1e-6 if bx > C[0] else dx < -1e-6)
            t = (bx - C[0]) / dx[sel]
            zh = C[2] + t * dz[sel]
            yh = C[1] + t * dy[sel]
            ok = (yh > 0) & (t < best_t[sel])
            ok[ok] = yh[ok] < block_height(blocks, zh[ok])
            idx = sel[ok]
            best_t[idx] = t[ok]
            mat[idx] = FACADE
        for tx in (w.trees_left_x, w.trees_right_x):
            if tx is None:
                continue
            t = (tx - C[0]) / dx
            zh = C[2] + t * dz
            yh = C[1] + t * dy
            top = 9.0 + 3 * tex(zh, 0 * zh + 3, 0.15) + 1.5 * tex(zh, 0 * zh + 40, 1.2)
            consider(t, (t > 0) & (yh < top) & (yh > 0), TREES)
        tn = w.tunnel
        if tn is not None:
            for sx in (-1, 1):
                xw = sx * tn.half_width
                t = (xw - C[0]) / dx
                zh, yh = C[2] + t * dz, C[1] + t * dy
                consider(t, (zh > tn.z0) & (zh < tn.z1) & (yh < tn.height) & (yh > 0), T_WALL)
            t = (tn.height - C[1]) / dy
            zh, xh = C[2] + t * dz, C[0] + t * dx
            consider(t, (zh > tn.z0) & (zh < tn.z1) & (np.abs(xh) < tn.half_width), T_CEIL)
            if C[2] < tn.z0:
                t = (tn.z0 - C[2]) / dz
                xh, yh = C[0] + t * dx, C[1] + t * dy
                hole = (np.abs(xh) < tn.half_width) & (yh < tn.height)
                consider(t, (dz > 0) & (yh > 0) & (yh < tn.portal_height) & ~hole, PORTAL)
        br = w.bridge
        if br is not None:
            t = (br.y0 - C[1]) / dy
            zh = C[2] + t * dz
            consider(t, (zh > br.z0) & (zh < br.z1), BRIDGE)
            for zf in (br.z0, br.z1):
                t = (zf - C[2]) / dz
                yh = C[1] + t * dy
                consider(t, (yh > br.y0) & (yh < br.y1), BRIDGE)
            for sx in (-1, 1):
                t = (sx * br.abut_x - C[0]) / dx
                zh, yh = C[2] + t * dz, C[1] + t * dy
                consider(t, (zh > br.z0) & (zh < br.z1) & (yh < br.y0) & (yh > 0), BRIDGE)
    hit = best_t < INF
    tt = np.where(hit, best_t, 1e5).astype(np.float32)
    P = C[:, None] + d * tt[None]
    x, y, z = P[0], P[1], P[2]
    # refine ground materials
    g = mat == ROAD
    if g.any():
        gx, gz = x[g], z[g]
        m = np.full(gx.shape, ROAD, np.uint8)
        side = (gx > w.road_right + 0.25) | (gx < w.road_left - 0.25)
        curb = ((gx > w.road_right) & (gx <= w.road_right + 0.25)) | ((gx < w.road_left) & (gx >= w.road_left - 0.25))
        m[side] = VERGE if w.build_left is None and w.build_right is None else SIDEWALK
        m[curb] = CURB
        # lane markings: edge lines solid, lane dividers dashed (3 m on, 6 m off), centre double
        lanes_x = np.arange(w.road_left + w.lane_w, w.road_right - 0.1, w.lane_w)
        mk = (np.abs(gx - (w.road_right - 0.25)) < 0.08) | (np.abs(gx - (w.road_left + 0.25)) < 0.08)
        for lx in lanes_x:
            if abs(lx - (-w.lane_w / 2)) < 0.1:  # centre line between directions
                mk |= (np.abs(np.abs(gx - lx) - 0.12) < 0.06)
            else:
                mk |= (np.abs(gx - lx) < 0.07) & (np.mod(gz, 9.0) < 3.0)
        # stop line / zebra near some cross streets
        zb = np.mod(gz + w.tex_off[0], w.crossing_spacing)
        zebra = (zb < 4.0) & (np.mod(gx, 1.0) < 0.5) & ~side & ~curb
        mk |= zebra
        m[mk & ~side & ~curb] = MARKING
        mat[g] = m
    fac = mat == FACADE
    if fac.any():
        fy, fz = y[fac], z[fac]
        floor_y = np.mod(fy, 3.2)
        col_z = np.mod(fz + w.tex_off[1], 2.6)
        win = (floor_y > 1.0) & (floor_y < 2.5) & (col_z > 0.6) & (col_z < 2.0) & (fy > 3.0)
        shop = (fy > 0.4) & (fy < 2.8) & (np.mod(fz, 8.0) < 5.0)
        m = np.where(win | shop, WINDOW, FACADE).astype(np.uint8)
        mat[fac] = m

    # normals (up component and full vector)
    nrm = np.zeros((3, N), np.float32)
    nrm[1] = 1.0
    vert_x = np.isin(mat, (FACADE, WINDOW, TREES, T_WALL)) | ((mat == BRIDGE) & (np.abs(np.abs(x) - (w.bridge.abut_x if w.bridge else 0)) < 0.05))
    nrm[:, vert_x] = 0
    nrm[0, vert_x] = -np.sign(x[vert_x])
    ceil = (mat == T_CEIL) | ((mat == BRIDGE) & (np.abs(y - (w.bridge.y0 if w.bridge else 0)) < 0.05))
    nrm[1, ceil] = -1
    front = (mat == PORTAL) | ((mat == BRIDGE) & ~ceil & ~vert_x)
    nrm[:, front] = 0
    nrm[2, front] = -np.sign(dz[front] + 1e-9)

    # albedo
    alb = np.zeros((3, N), np.float32)
    n1 = tex(x * 7.0 + w.tex_off[0], z * 7.0, 1.0)  # fine (~15 cm) grain
    n2 = tex(x * 0.6, z * 0.6 + w.tex_off[1], 1.0)  # patches
    alb = ALBEDO_LUT[mat].T.copy()
    fac = mat == FACADE
    if fac.any() and (w.build_left is not None or w.build_right is not None):
        blocks = np.where(x[fac] > 0, 1, 0)
        zf = z[fac]
        ci = np.zeros(zf.shape, np.int64)
        for bsel, bl in ((blocks == 1, w.build_right), (blocks == 0, w.build_left)):
            if bl is None or bl.size == 0:
                continue
            i = np.clip(np.searchsorted(bl[:, 0], zf[bsel], side="right") - 1, 0, len(bl) - 1)
            ci[bsel] = bl[i, 3].astype(np.int64)
        alb[:, fac] = w.facade_colours[ci].T.astype(np.float32)
        # brick/panel lines
        lines = (np.mod(y[fac], 0.8) < 0.04) | (np.mod(zf, 1.3) < 0.04)
        alb[:, fac] *= np.where(lines, 0.75, 1.0)[None]
    tw = mat == T_WALL
    if tw.any():
        upper = y[tw] > 3.0
        tiles = (np.mod(y[tw], 0.3) < 0.02) | (np.mod(z[tw], 0.3) < 0.02)
        alb[:, tw] = np.where(upper, 0.08, np.where(tiles, 0.3, 0.55))[None]
    grain = 1.0 + 0.18 * n1 + 0.22 * n2
    alb *= grain[None]
    np.maximum(alb, 0.005, out=alb)

    # lighting (surfaces only; the sky is emission)
    sunterm = np.zeros((3, N), np.float32)
    ambterm = np.zeros((3, N), np.float32)
    hi = np.flatnonzero(hit)
    if hi.size:
        Ph, nh, ah = P[:, hi], nrm[:, hi], alb[:, hi]
        if w.sun_dir is not None and float(np.max(w.sun_rgb)) > 0:
            vis = sun_visibility(w, Ph)
            cos_s = np.maximum(w.sun_dir.astype(np.float32) @ nh, 0)
            sunterm[:, hi] = ah * (w.sun_rgb.astype(np.float32)[:, None] * (vis * cos_s)[None])
        amb = ambient_factor(w, Ph, nh[1])
        ambterm[:, hi] = ah * (w.amb_rgb.astype(np.float32)[:, None] * amb[None] + artificial_light(w, Ph, nh, cam))
    emit = np.zeros((3, N), np.float32)
    sky = ~hit
    if sky.any():
        emit[:, sky] = sky_radiance(w, d[:, sky])
    # windows reflect the sky; some are lit at night / dusk
    wnd = mat == WINDOW
    if wnd.any():
        # glass: ~5 % reflection of what faces it (sky above, the opposite facade below) and
        # the room behind it (a few cd/m^2 by day, not lit by the outdoor light)
        vf = ambient_factor(w, P[:, wnd], nrm[1, wnd]) * 2.0
        refl = 0.05 * (0.5 * w.sky_horizon + 0.5 * w.sky_zenith).astype(np.float32)[:, None] * vf[None]
        emit[:, wnd] += refl
        if w.lit_window_frac > 0:
            cell = (np.floor(y[wnd] / 3.2) * 131 + np.floor((z[wnd] + w.tex_off[1]) / 2.6) * 17 + np.sign(x[wnd]) * 7)
            hsh = np.mod(np.sin(cell * 12.9898) * 43758.5453, 1.0)
            lit = hsh < w.lit_window_frac
            lvl = nits_to_e_per_s(30 + 150 * hsh[lit] / max(w.lit_window_frac, 1e-6)).astype(np.float32)
            idx = np.flatnonzero(wnd)[lit]
            emit[:, idx] += lvl[None] * np.array([1.0, 0.85, 0.6], np.float32)[:, None]
    ce = mat == T_CEIL
    if ce.any() and w.tunnel is not None:
        tn = w.tunnel
        zz = np.mod(z[ce] - tn.z0, tn.lamp_spacing)
        on = zz < tn.lamp_length
        near = np.zeros(on.shape, bool)
        for lx in tn.lamp_x:
            near |= np.abs(x[ce] - lx) < 0.18
        lamp = on & near
        idx = np.flatnonzero(ce)[lamp]
        emit[:, idx] = nits_to_e_per_s(tn.lamp_nits).astype(np.float32) * np.asarray(tn.lamp_rgb, np.float32)[:, None]
    # floor: nothing is blacker than ~0.01 cd/m^2 (scattered light in the optics)
    emit += np.float32(0.002 * E_PER_S_PER_NIT)

    fwd = cam.rotation()[:, 2].astype(np.float32)
    depth = np.where(hit, tt * (fwd @ d), 1e5).astype(np.float32).reshape(cam.height, cam.width)
    return Background(sun=sunterm, amb=ambterm, emit=emit, points=P, material=mat, depth=depth,
                      shape=(cam.height, cam.width))
