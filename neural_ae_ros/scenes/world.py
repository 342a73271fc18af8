"""Road worlds and their random sampling (scene kinds, tunnels, bridges, buildings, lamps, sun).

x to the right, y up, z forward along the road, metres; the camera looks along +z (yaw 0).
Surfaces: the ground (road with lane markings, curbs, sidewalks or verges), building facades
on both sides (blocks with windows, cross-street gaps), tree lines for rural roads, an
optional tunnel (walls, ceiling with lamp strips, portal face), an optional overpass
(bridge deck and abutments), the sky (gradient, sun disc and circumsolar glow, or night sky).
Light: sun (with exact shadows of buildings, tunnel, portal hill and bridge deck), sky
ambient (reduced in street canyons, tunnels, under bridges), tunnel lighting (with a
reinforced threshold zone), street lamps (inverse square, cosine), ego headlights (low-beam
lobe with a cut-off). Emitters: sun, tunnel lamps, lit windows at night, street-lamp heads
(drawn as props by :mod:`.sprites`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .radiometry import E_PER_S_PER_NIT, SUN_DISC_NITS, SUN_WHITE, nits_to_e_per_s

SCENE_KINDS = ("day", "day_sun", "overcast", "dusk", "bridge", "tunnel", "night", "night_rural")


@dataclass
class Tunnel:
    """A straight road tunnel from its entry portal at z0 to its exit at z1 (world metres)."""

    z0: float
    z1: float
    half_width: float = 5.5  # m, wall to road centre
    height: float = 5.5  # m, ceiling
    portal_height: float = 14.0  # m, the hill face around the entry portal
    #: ceiling lamp strips: one ``lamp_length`` m strip every ``lamp_spacing`` m per row ``lamp_x`` (m)
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
    """An overpass across the road: its deck spans world z0..z1 and heights y0..y1 (m), resting on
    abutments at x = +-abut_x (m)."""

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



def sun_vector(elev_deg: float, azim_deg: float) -> np.ndarray:
    """Unit vector to the sun; azimuth 0 = straight ahead (+z), positive to the right (+x)."""
    e, a = math.radians(elev_deg), math.radians(azim_deg)
    return np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])


def sample_blocks(rng, z_start, z_end, x_side, hmin, hmax, ncol, exclude=()):
    """Building blocks along one side of the road: rows ``(z0, z1, height, colour index)`` (m),
    12-45 m long, cross streets between some; none within 4 m of an ``exclude`` (z0, z1) span."""
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
        w.build_left = sample_blocks(rng, z_span[0], z_span[1], -1, 6, 30, ncol, exclude)
        w.build_right = sample_blocks(rng, z_span[0], z_span[1], 1, 6, 30, ncol, exclude)

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
        w.amb_rgb = nits_to_e_per_s(float(rng.uniform(2500, 5500))) * np.array([0.85, 0.92, 1.1])
        w.sky_horizon = nits_to_e_per_s(float(rng.uniform(4000, 9000))) * np.array([0.9, 0.95, 1.05])
        w.sky_zenith = nits_to_e_per_s(float(rng.uniform(1500, 4000))) * np.array([0.6, 0.8, 1.2])
        w.sun_disc = nits_to_e_per_s(SUN_DISC_NITS * (0.3 + 0.7 * min(1, el / 15))) * sun_col
        w.aureole = float(rng.uniform(60, 160))
    elif kind == "overcast":
        w.amb_rgb = nits_to_e_per_s(float(rng.uniform(1500, 5000))) * np.array([0.95, 0.97, 1.0])
        w.sky_horizon = nits_to_e_per_s(float(rng.uniform(3000, 9000))) * np.array([0.97, 0.98, 1.0])
        w.sky_zenith = w.sky_horizon * 1.3
        w.lit_window_frac = 0.05
    elif kind == "dusk":
        el, az = sun if sun is not None else (rng.uniform(-1.0, 5.0), rng.uniform(-3, 3) if not rural else rng.uniform(-25, 25))
        w.sun_dir = sun_vector(el, az)
        sun_col = np.array([1.0, 0.62, 0.32])
        w.sun_rgb = SUN_WHITE * float(rng.uniform(0.05, 0.2)) * sun_col * (1.0 if el > 0 else 0.0)
        w.amb_rgb = nits_to_e_per_s(float(rng.uniform(150, 600))) * np.array([0.8, 0.8, 1.1])
        w.sky_horizon = nits_to_e_per_s(float(rng.uniform(400, 1500))) * np.array([1.1, 0.8, 0.6])
        w.sky_zenith = nits_to_e_per_s(float(rng.uniform(80, 300))) * np.array([0.55, 0.7, 1.3])
        w.sun_disc = nits_to_e_per_s(SUN_DISC_NITS * float(rng.uniform(0.01, 0.08))) * sun_col if el > -0.3 else np.zeros(3)
        w.aureole = float(rng.uniform(100, 300))
        w.lit_window_frac = 0.25
        w.headlights = True
        w.head_white_m2 = nits_to_e_per_s(6.0) * 900
    else:  # night / night_rural
        w.night = True
        w.amb_rgb = nits_to_e_per_s(float(rng.uniform(0.005, 0.05))) * np.array([0.8, 0.85, 1.1])
        glow = float(rng.uniform(0.01, 0.1)) if kind == "night" else float(rng.uniform(0.002, 0.02))
        w.sky_horizon = nits_to_e_per_s(glow) * np.array([1.2, 0.9, 0.7])
        w.sky_zenith = w.sky_horizon * 0.3
        w.lit_window_frac = float(rng.uniform(0.1, 0.4))
        w.headlights = True
        w.head_white_m2 = nits_to_e_per_s(float(rng.uniform(6, 12))) * 900  # ~6-12 cd/m^2 white (20-40 lux) at 30 m
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
        w.lamp_white_m2 = nits_to_e_per_s(float(rng.uniform(8, 20))) * 64.0  # ~8-20 cd/m^2 white under the lamp
        w.lamp_rgb = np.array(rng.choice([[1.0, 0.72, 0.4], [1.0, 0.95, 0.88], [0.95, 0.97, 1.0]]))
    return w



def block_height(blocks: np.ndarray, z: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(np.asarray(z, np.float64), nan=-1e9, posinf=1e9, neginf=-1e9)
    i = np.searchsorted(blocks[:, 0], z, side="right") - 1
    ic = np.clip(i, 0, len(blocks) - 1)
    inside = (i >= 0) & (z < blocks[ic, 1])
    return np.where(inside, blocks[ic, 2], -1.0)
