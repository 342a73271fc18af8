"""Procedural HDR road scenes: a small vectorised ray caster over an axis-aligned street world.

Radiance unit and absolute scale
--------------------------------
Every array this package returns is ``radiance_e_per_s``: linear RGB photo-electrons per
second at one photosite of the target sensor (IMX249-like, ``config/sensor_imx249.yaml``: full
well 32.5 ke-, 0.12 DN/e- at K = 1, 12 bit). Optics and quantum efficiency are folded into one
constant::

    1 cd/m^2  ==  E_PER_S_PER_NIT = 2300 e-/s      (per colour channel, for a white source)

so that scene levels can be set from photometric facts:

============================================  ==========  =====================
surface / source                              cd/m^2      e-/s
============================================  ==========  =====================
white Lambertian, full sun (100 klux)         3.2e4       7.3e7
sun-lit asphalt (albedo 0.1): "daylight road" 3.2e3       7.3e6  (mean day frame ~1e7)
clear sky near the horizon                    6e3         1.4e7
sun disc                                      1.6e9       3.7e12
circumsolar sky 1 deg from the sun            ~1e6        ~2e9
tunnel interior road (~150 lux)               ~5          ~1e4
street-lit road at night (~20 lux)            ~1-2        ~3e3
urban night sky (sky glow)                    0.02-0.1    50-250
headlamp seen by oncoming traffic             2e4-1.5e5   0.5-3.5e8
traffic-light signal / brake light            ~1-3e4      ~3-7e7
tail light (night)                            ~2e3        ~5e6
============================================  ==========  =====================

So about 1 ms at K = 1 puts a daylight road frame at mid grey (0.5 M_white); night scenes are
1e3-1e4x darker by median luminance (much less by mean, which their lamps and headlights
dominate), and emitters / the sun are 3-6 orders of magnitude above the diffuse surfaces around
them, as in real driving.

The world
---------
x to the right, y up, z forward along the road, metres; the camera looks along +z (yaw 0).
Surfaces: the ground (road with lane markings, curbs, sidewalks or verges), building facades
on both sides (blocks with windows, cross-street gaps), tree lines for rural roads, an
optional tunnel (walls, ceiling with lamp strips, portal face), an optional overpass
(bridge deck and abutments), the sky (gradient, sun disc and circumsolar glow, or night sky).
Light: sun (with exact shadows of buildings, tunnel, portal hill and bridge deck), sky
ambient (reduced in street canyons, tunnels, under bridges), tunnel lighting (with a
reinforced threshold zone), street lamps (inverse square, cosine), ego headlights (low-beam
lobe with a cut-off). Emitters: sun, tunnel lamps, lit windows at night, street-lamp heads
(drawn as props by :mod:`.objects`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np

E_PER_S_PER_NIT = 2300.0
LAMP_REACH = 50.0  # metres over which a street lamp's light is evaluated
#: white Lambertian radiance under direct sun at normal incidence (~90 klux), e-/s
SUN_WHITE = 2.9e4 * E_PER_S_PER_NIT
SUN_DISC_NITS = 1.6e9
SUN_RADIUS_DEG = 0.27

# material ids
SKY, ROAD, MARKING, SIDEWALK, VERGE, FACADE, WINDOW, T_WALL, T_CEIL, PORTAL, BRIDGE, TREES, CURB = range(13)
MATERIAL_NAMES = ["sky", "road", "marking", "sidewalk", "verge", "facade", "window", "tunnel_wall",
                  "tunnel_ceiling", "portal", "bridge", "trees", "curb"]

SCENE_KINDS = ("day", "day_sun", "overcast", "dusk", "bridge", "tunnel", "night", "night_rural")


_ALBEDO_LUT = np.zeros((16, 3), np.float32)
for _m, _rgb in {
    1: (0.085, 0.085, 0.09), 2: (0.55, 0.55, 0.52), 3: (0.28, 0.27, 0.25), 4: (0.07, 0.11, 0.04),
    12: (0.35, 0.35, 0.33), 6: (0.02, 0.024, 0.028), 7: (0.45, 0.45, 0.42), 8: (0.04, 0.04, 0.04),
    9: (0.3, 0.29, 0.27), 10: (0.32, 0.31, 0.3), 11: (0.05, 0.09, 0.035), 5: (0.4, 0.38, 0.35),
}.items():
    _ALBEDO_LUT[_m] = _rgb
GROUND_LUT = np.zeros(16, bool)
GROUND_LUT[[1, 2, 3, 4, 12]] = True


# ----------------------------------------------------------------------------------- camera
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

    width: int
    height: int
    hfov_deg: float = 60.0
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


# ------------------------------------------------------------------------------------ world
@dataclass
class Tunnel:
    z0: float
    z1: float
    half_width: float = 5.5
    height: float = 5.5
    portal_height: float = 14.0
    lamp_spacing: float = 8.0
    lamp_length: float = 3.0
    lamp_x: tuple = (-1.8, 1.8)
    lamp_nits: float = 3.0e4
    lamp_rgb: tuple = (1.0, 0.9, 0.75)
    interior_white: float = 50.0 * E_PER_S_PER_NIT  # white radiance from tunnel lighting (~160 lux)
    threshold_len: float = 60.0  # reinforced lighting at the entrance
    threshold_gain: float = 8.0


@dataclass
class Bridge:
    z0: float
    z1: float
    y0: float = 5.2
    y1: float = 6.6
    abut_x: float = 9.0


@dataclass
class World:
    kind: str
    seed: int
    sun_dir: Optional[np.ndarray]  # unit vector to the sun, or None (overcast / night)
    sun_rgb: np.ndarray  # white radiance under direct sun at normal incidence, e-/s
    amb_rgb: np.ndarray  # white radiance of an upward surface under the open sky, e-/s
    sky_horizon: np.ndarray
    sky_zenith: np.ndarray
    sun_disc: np.ndarray
    aureole: float = 100.0
    road_left: float = -7.0  # road edge x (left)
    road_right: float = 3.5
    lane_w: float = 3.5
    sidewalk_w: float = 3.0
    build_left: Optional[np.ndarray] = None  # blocks: rows (z0, z1, height, colour idx)
    build_right: Optional[np.ndarray] = None
    build_left_x: float = -11.0
    build_right_x: float = 7.5
    trees_left_x: Optional[float] = None
    trees_right_x: Optional[float] = None
    tunnel: Optional[Tunnel] = None
    bridge: Optional[Bridge] = None
    lamps: Optional[np.ndarray] = None  # (L, 3) street lamp head positions
    lamp_white_m2: float = 0.0  # white radiance * m^2 under a lamp (inverse-square numerator)
    lamp_rgb: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.78, 0.5]))
    headlights: bool = False
    head_white_m2: float = 0.0
    night: bool = False
    lit_window_frac: float = 0.0
    facade_colours: np.ndarray = field(default_factory=lambda: np.array([[0.4, 0.38, 0.35]]))
    tex_off: np.ndarray = field(default_factory=lambda: np.zeros(2))
    speed_m_s: float = 12.0
    crossing_spacing: float = 140.0  # zebra crossings / intersections with signals every ... m

    @property
    def street_canyon(self) -> bool:
        return self.build_left is not None or self.build_right is not None


def _nits(v):
    return np.asarray(v, np.float64) * E_PER_S_PER_NIT


def sun_vector(elev_deg: float, azim_deg: float) -> np.ndarray:
    """Unit vector to the sun; azimuth 0 = straight ahead (+z), positive to the right (+x)."""
    e, a = math.radians(elev_deg), math.radians(azim_deg)
    return np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])


def _blocks(rng, z_start, z_end, x_side, hmin, hmax, ncol, exclude=()):
    rows = []
    z = z_start
    while z < z_end:
        length = rng.uniform(12, 45)
        z1 = z + length
        ok = all(z1 < a - 4 or z > b + 4 for a, b in exclude)
        if ok:
            rows.append((z, z1, rng.uniform(hmin, hmax), rng.integers(ncol)))
        z = z1 + (rng.uniform(8, 16) if rng.random() < 0.3 else 0.0)  # cross street
    return np.array(rows, np.float64).reshape(-1, 4)


def sample_world(rng: np.random.Generator, kind: str, z_span=(-60.0, 700.0), seed: int = 0,
                 tunnel_at: Optional[tuple] = None, bridge_at: Optional[tuple] = None,
                 lamps_from: Optional[float] = None, sun: Optional[tuple] = None) -> World:
    """Draw a random world of a scene ``kind`` (see :data:`SCENE_KINDS`).

    ``tunnel_at=(z0, z1)``, ``bridge_at=(z0, z1)``, ``lamps_from=z`` and ``sun=(elev, azim)``
    pin the scripted parts of a drive; the rest is drawn from ``rng``.
    """
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {SCENE_KINDS}")
    lanes_right = int(rng.integers(1, 3))
    lanes_left = int(rng.integers(1, 3))
    lane_w = float(rng.uniform(3.2, 3.7))
    road_right = lane_w * (lanes_right - 0.5)
    road_left = -lane_w * (lanes_left + 0.5)
    sidewalk = float(rng.uniform(2.0, 4.5))
    ncol = 6
    facade_cols = np.stack([
        rng.uniform(0.15, 0.55) * np.array(c) for c in
        (rng.choice([[1.0, 0.95, 0.9], [0.95, 0.6, 0.45], [0.9, 0.85, 0.7], [0.7, 0.75, 0.8],
                     [1.0, 1.0, 1.0], [0.8, 0.7, 0.6]], size=ncol))
    ])
    w = World(kind=kind, seed=seed, sun_dir=None, sun_rgb=np.zeros(3), amb_rgb=np.zeros(3),
              sky_horizon=np.zeros(3), sky_zenith=np.zeros(3), sun_disc=np.zeros(3),
              road_left=road_left, road_right=road_right, lane_w=lane_w, sidewalk_w=sidewalk,
              facade_colours=facade_cols, tex_off=rng.uniform(0, 512, 2))
    w.speed_m_s = float(rng.uniform(8, 22))
    w.crossing_spacing = float(rng.uniform(60, 140))
    rural = kind in ("night_rural",) or rng.random() < 0.25
    if kind == "tunnel":
        rural = rng.random() < 0.5
    exclude = []
    if kind == "tunnel" or tunnel_at is not None:
        if tunnel_at is None:
            z0 = float(rng.uniform(-250, 60))
            tunnel_at = (z0, z0 + float(rng.uniform(200, 400)))
        w.tunnel = Tunnel(z0=tunnel_at[0], z1=tunnel_at[1], half_width=max(-road_left, road_right) + 1.5,
                          lamp_nits=float(rng.uniform(1e4, 6e4)),
                          lamp_rgb=tuple(rng.choice([[1.0, 0.9, 0.75], [1.0, 0.75, 0.4], [0.95, 0.97, 1.0]])),
                          interior_white=float(rng.uniform(15, 60)) * E_PER_S_PER_NIT,
                          threshold_gain=float(rng.uniform(2, 6)),
                          lamp_spacing=float(rng.uniform(6, 12)))
        exclude.append(tunnel_at)
    if kind == "bridge" or bridge_at is not None:
        if bridge_at is None:
            z0 = float(rng.uniform(8, 60))
            bridge_at = (z0, z0 + float(rng.uniform(12, 35)))
        w.bridge = Bridge(z0=bridge_at[0], z1=bridge_at[1], y0=float(rng.uniform(4.8, 6.0)),
                          abut_x=max(-road_left, road_right) + sidewalk)
        w.bridge.y1 = w.bridge.y0 + float(rng.uniform(1.0, 2.0))
        exclude.append(bridge_at)
    w.build_left_x = road_left - sidewalk
    w.build_right_x = road_right + sidewalk
    if rural:
        w.trees_left_x = road_left - float(rng.uniform(4, 25))
        w.trees_right_x = road_right + float(rng.uniform(4, 25))
    else:
        w.build_left = _blocks(rng, z_span[0], z_span[1], -1, 6, 30, ncol, exclude)
        w.build_right = _blocks(rng, z_span[0], z_span[1], 1, 6, 30, ncol, exclude)

    # ---- illumination
    if kind in ("day", "day_sun", "bridge", "tunnel"):
        if sun is not None:
            el, az = sun
        elif kind == "day_sun":
            # driving into a low sun: over the road's vanishing point in a street canyon
            # (the facades hide it elsewhere), anywhere ahead on an open road
            el = rng.uniform(4, 14)
            az = rng.uniform(-3, 3) if not rural else rng.uniform(-20, 20)
        elif kind == "bridge":
            el, az = rng.uniform(30, 65), rng.uniform(-40, 40)
        else:
            el, az = rng.uniform(25, 70), rng.uniform(-180, 180)
        w.sun_dir = sun_vector(el, az)
        warm = np.clip((20 - el) / 20, 0, 1)
        sun_col = np.array([1.0, 0.96 - 0.12 * warm, 0.9 - 0.3 * warm])
        w.sun_rgb = SUN_WHITE * float(rng.uniform(0.8, 1.1)) * (0.5 + 0.5 * min(1, el / 15)) * sun_col
        w.amb_rgb = _nits(float(rng.uniform(2500, 5500))) * np.array([0.85, 0.92, 1.1])
        w.sky_horizon = _nits(float(rng.uniform(4000, 9000))) * np.array([0.9, 0.95, 1.05])
        w.sky_zenith = _nits(float(rng.uniform(1500, 4000))) * np.array([0.6, 0.8, 1.2])
        w.sun_disc = _nits(SUN_DISC_NITS * (0.3 + 0.7 * min(1, el / 15))) * sun_col
        w.aureole = float(rng.uniform(60, 160))
    elif kind == "overcast":
        w.amb_rgb = _nits(float(rng.uniform(1500, 5000))) * np.array([0.95, 0.97, 1.0])
        w.sky_horizon = _nits(float(rng.uniform(3000, 9000))) * np.array([0.97, 0.98, 1.0])
        w.sky_zenith = w.sky_horizon * 1.3
        w.lit_window_frac = 0.05
    elif kind == "dusk":
        el, az = sun if sun is not None else (rng.uniform(-1.0, 5.0), rng.uniform(-3, 3) if not rural else rng.uniform(-25, 25))
        w.sun_dir = sun_vector(el, az)
        sun_col = np.array([1.0, 0.62, 0.32])
        w.sun_rgb = SUN_WHITE * float(rng.uniform(0.05, 0.2)) * sun_col * (1.0 if el > 0 else 0.0)
        w.amb_rgb = _nits(float(rng.uniform(150, 600))) * np.array([0.8, 0.8, 1.1])
        w.sky_horizon = _nits(float(rng.uniform(400, 1500))) * np.array([1.1, 0.8, 0.6])
        w.sky_zenith = _nits(float(rng.uniform(80, 300))) * np.array([0.55, 0.7, 1.3])
        w.sun_disc = _nits(SUN_DISC_NITS * float(rng.uniform(0.01, 0.08))) * sun_col if el > -0.3 else np.zeros(3)
        w.aureole = float(rng.uniform(100, 300))
        w.lit_window_frac = 0.25
        w.headlights = True
        w.head_white_m2 = _nits(6.0) * 900
    else:  # night / night_rural
        w.night = True
        w.amb_rgb = _nits(float(rng.uniform(0.005, 0.05))) * np.array([0.8, 0.85, 1.1])
        glow = float(rng.uniform(0.01, 0.1)) if kind == "night" else float(rng.uniform(0.002, 0.02))
        w.sky_horizon = _nits(glow) * np.array([1.2, 0.9, 0.7])
        w.sky_zenith = w.sky_horizon * 0.3
        w.lit_window_frac = float(rng.uniform(0.1, 0.4))
        w.headlights = True
        w.head_white_m2 = _nits(float(rng.uniform(6, 12))) * 900  # ~6-12 cd/m^2 white (20-40 lux) at 30 m
    if kind == "night" or lamps_from is not None:
        start = z_span[0] if lamps_from is None else lamps_from
        spacing = float(rng.uniform(22, 35))
        zs = np.arange(start, z_span[1], spacing)
        side = np.where(rng.random(zs.size) < 0.5, -1, 1) if rng.random() < 0.3 else np.ones(zs.size)
        both = rng.random() < 0.5
        xs = np.where(side > 0, road_right + 0.6 - 1.5, road_left - 0.6 + 1.5)
        lamps = [np.stack([xs, np.full(zs.size, 8.0), zs], 1)]
        if both:
            lamps.append(np.stack([np.full(zs.size, road_left + 0.9), np.full(zs.size, 8.0), zs + spacing / 2], 1))
        w.lamps = np.concatenate(lamps, 0)
        w.lamp_white_m2 = _nits(float(rng.uniform(8, 20))) * 64.0  # ~8-20 cd/m^2 white under the lamp
        w.lamp_rgb = np.array(rng.choice([[1.0, 0.72, 0.4], [1.0, 0.95, 0.88], [0.95, 0.97, 1.0]]))
    return w


# --------------------------------------------------------------------------------- textures
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


# -------------------------------------------------------------------------------- lighting
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
        hgt = _block_height(blocks, zh)
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


def _block_height(blocks: np.ndarray, z: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(np.asarray(z, np.float64), nan=-1e9, posinf=1e9, neginf=-1e9)
    i = np.searchsorted(blocks[:, 0], z, side="right") - 1
    ic = np.clip(i, 0, len(blocks) - 1)
    inside = (i >= 0) & (z < blocks[ic, 1])
    return np.where(inside, blocks[ic, 2], -1.0)


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
    hl = np.maximum(_block_height(w.build_left, z), 0) if w.build_left is not None else np.zeros_like(z)
    hr = np.maximum(_block_height(w.build_right, z), 0) if w.build_right is not None else np.zeros_like(z)
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


# ------------------------------------------------------------------------------- rendering
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
            ok[ok] = yh[ok] < _block_height(blocks, zh[ok])
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
    alb = _ALBEDO_LUT[mat].T.copy()
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
            lvl = _nits(30 + 150 * hsh[lit] / max(w.lit_window_frac, 1e-6)).astype(np.float32)
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
        emit[:, idx] = _nits(tn.lamp_nits).astype(np.float32) * np.asarray(tn.lamp_rgb, np.float32)[:, None]
    # floor: nothing is blacker than ~0.01 cd/m^2 (scattered light in the optics)
    emit += np.float32(0.002 * E_PER_S_PER_NIT)

    fwd = cam.rotation()[:, 2].astype(np.float32)
    depth = np.where(hit, tt * (fwd @ d), 1e5).astype(np.float32).reshape(cam.height, cam.width)
    return Background(sun=sunterm, amb=ambterm, emit=emit, points=P, material=mat, depth=depth,
                      shape=(cam.height, cam.width))


def dynamic_range_db(radiance: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.9) -> float:
    """Scene dynamic range: 20 log10(P_hi / P_lo) of the luminance, dB.

    Luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of a ``(3, H, W)`` radiance; percentiles by
    ``numpy.percentile`` (linear interpolation). ``P_lo`` is floored at 1e-12 of ``P_hi``.
    """
    r = np.asarray(radiance, np.float64)
    y = 0.2126 * r[0] + 0.7152 * r[1] + 0.0722 * r[2]
    lo, hi = np.percentile(y, [lo_pct, hi_pct])
    hi = max(float(hi), 1e-30)
    lo = max(float(lo), hi * 1e-12)
    return float(20.0 * math.log10(hi / lo))
