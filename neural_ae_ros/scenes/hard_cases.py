"""The ``hdr_driving`` scene mix: the HDR driving conditions in which exposure decides what is
detected (issue 7; paper 000 Sections 1, 5.1, 6.1).

Why this mix is the paper's data
--------------------------------
Paper 000's dataset (Sec. 5.1) is 1600 training and 400 test pairs of consecutive frames
from an HDR camera (Sony IMX490) on a test vehicle, "about 50 % of the images taken during
day time, 20 % at dusk and 30 % at night time", urban, suburban, countryside and highways;
its introduction names the situations the method exists for: "edge cases", e.g. "exiting a
tunnel can include scene regions with almost no ambient illumination, the sun, and scene
points with intermediate luminances, all in one image". Its data is *HDR* data: recorded
because single-exposure sensors cannot hold these scenes. The ``hdr_driving`` mix keeps the
paper's day / dusk / night shares and fills each with the HDR situations of issue 7:

==================  =====  ===============================================================
case                share  what is in the frame
==================  =====  ===============================================================
tunnel_exit         0.14   inside a tunnel, 10-80 m before the exit: vehicles in the lit
                           tunnel and road users in the sunlit road beyond the portal
tunnel_entry        0.10   in the sun, 10-80 m before a portal: vehicles entering the dark
                           tunnel mouth, road users outside
low_sun             0.14   sun 2-14 deg above the road ahead: backlit road users
underpass           0.06   sunlit road with a bridge deck's shadow band, objects in and
                           beyond the shadow
sunlit_street       0.06   ordinary sunny street (hard shadows of buildings)
dusk                0.20   sun at the horizon, headlights on
night_oncoming      0.18   street-lit urban night: oncoming vehicles with headlights, a
                           pedestrian or cyclist beside each, lit signs and signals
night_rural         0.12   unlit road: own low beams, oncoming headlights, road users at
                           the edge
==================  =====  ===============================================================

day 0.50 (first five), dusk 0.20, night 0.30: the paper's shares. Nothing in the mix looks
at an AE method: the shares are fixed before any measurement, the objects are the scene
generator's usual traffic (:func:`neural_ae_ros.scenes.placement.sample_objects`) plus, per
case, the road users the case is about (backlit pedestrians and cyclists, pedestrians beside
oncoming cars). The photometry (sun 1.6e9 cd/m^2, headlamps 2e4-1.5e5 cd/m^2, tunnel
interiors 15-60 cd/m^2 white, night roads ~1 cd/m^2) is the generator's
(:mod:`neural_ae_ros.scenes.world`).

Seeds: scene ``k`` of split ``s`` is drawn from ``SeedSequence([seed, split_id, k, MIX_SALT])``:
test, validation and training splits never share a stream, and none shares one with the
default mix.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import drives as dv
from .placement import ObjectSpec, make_object, sample_objects
from .world import World, sample_blocks, sample_world

MIX_NAME = "hdr_driving"
MIX_SALT = 7_000_001  # keeps this mix's random streams apart from the default mix's

#: (case, share, period). Shares sum to 1; period is day / dusk / night (paper 000 Sec. 5.1).
HDR_DRIVING_MIX = (
    ("tunnel_exit", 0.14, "day"),
    ("tunnel_entry", 0.10, "day"),
    ("low_sun", 0.14, "day"),
    ("underpass", 0.06, "day"),
    ("sunlit_street", 0.06, "day"),
    ("dusk", 0.20, "dusk"),
    ("night_oncoming", 0.18, "night"),
    ("night_rural", 0.12, "night"),
)
CASES = tuple(c for c, _, _ in HDR_DRIVING_MIX)


def period_shares() -> dict:
    out: dict = {}
    for _, p, period in HDR_DRIVING_MIX:
        out[period] = out.get(period, 0.0) + p
    return out


def draw_case(rng: np.random.Generator) -> str:
    p = np.array([s for _, s, _ in HDR_DRIVING_MIX], np.float64)
    return str(rng.choice(np.array(CASES), p=p / p.sum()))


def _road_user_beside(rng, w: World, z: float, left: bool) -> ObjectSpec:
    """A pedestrian (or a cyclist, 1 in 4) at the road edge near ground position ``z``."""
    edge = w.road_left if left else w.road_right
    side = -1 if left else 1
    if rng.random() < 0.25:
        return make_object(rng, "bike", edge - side * 0.7, z + rng.uniform(-3, 3), view="rear",
                              speed=float(rng.uniform(3, 6)) * (-1 if left else 1))
    x = edge + side * rng.uniform(0.5, max(0.7, w.sidewalk_w - 0.5))
    view = "front" if rng.random() < 0.5 else "back"
    return make_object(rng, "person", x, z + rng.uniform(-4, 4), view=view,
                          speed=float(rng.uniform(0.9, 1.5)) * (1 if view == "back" else -1))


def _oncoming_with_road_users(rng, w: World, z0: float, n: int) -> list:
    """``n`` oncoming vehicles 15-70 m ahead (headlights on at night), each with a road user
    beside it on the far or near edge: the glare-next-to-pedestrian situation."""
    objs = []
    lanes = [-(i + 1) * w.lane_w for i in range(max(1, int(round((-w.road_left - w.lane_w / 2) / w.lane_w))))]
    for _ in range(n):
        z = z0 + float(rng.uniform(15, 70))
        lane = lanes[int(rng.integers(len(lanes)))]
        cls = "bus_truck" if rng.random() < 0.15 else "car_van"
        objs.append(make_object(rng, cls, lane + rng.normal(0, 0.2), z, view="front", speed=-float(rng.uniform(8, 18))))
        objs.append(_road_user_beside(rng, w, z, left=bool(rng.random() < 0.6)))
    return objs


def _backlit_road_users(rng, w: World, z0: float, n: int) -> list:
    """Road users 10-50 m ahead on both edges (with the sun ahead: backlit)."""
    return [_road_user_beside(rng, w, z0 + float(rng.uniform(10, 50)), left=bool(rng.random() < 0.4))
            for _ in range(n)]


def hdr_case_stage(rng: np.random.Generator, case: str, width: int, height: int) -> dv.ProceduralStage:
    """A still-scene stage of one ``hdr_driving`` case (camera placed where the case happens)."""
    if case not in CASES:
        raise ValueError(f"unknown hdr_driving case {case!r}; expected one of {CASES}")
    kind = {"tunnel_exit": "tunnel", "tunnel_entry": "tunnel", "low_sun": "day_sun", "underpass": "bridge",
            "sunlit_street": "day", "dusk": "dusk", "night_oncoming": "night",
            "night_rural": "night_rural"}[case]
    w = sample_world(rng, kind, seed=int(rng.integers(2 ** 31)))
    if case == "sunlit_street" and w.build_left is None:  # a street with buildings and their shadows
        w.build_left = sample_blocks(rng, -60.0, 700.0, -1, 6, 30, len(w.facade_colours))
        w.build_right = sample_blocks(rng, -60.0, 700.0, 1, 6, 30, len(w.facade_colours))
        w.trees_left_x = w.trees_right_x = None
    z0 = 0.0
    place = case
    if case == "tunnel_exit":
        z0 = w.tunnel.z1 - float(rng.uniform(10, 80))
    elif case == "tunnel_entry":
        z0 = w.tunnel.z0 - float(rng.uniform(10, 80))
    elif case == "underpass":
        z0 = w.bridge.z0 - float(rng.uniform(-3, 40))
    speed = w.speed_m_s
    objs = sample_objects(rng, w, z0 - 5, z0 + 160, speed)
    if case in ("night_oncoming", "night_rural", "dusk"):
        objs += _oncoming_with_road_users(rng, w, z0, int(rng.integers(1, 3)))
    elif case == "low_sun":
        objs += _backlit_road_users(rng, w, z0, int(rng.integers(1, 4)))
    elif case == "tunnel_exit":  # a vehicle ahead in the tunnel, road users beyond the portal
        lane = float(rng.choice([0.0, w.lane_w])) if w.road_right > w.lane_w else 0.0
        zc = float(rng.uniform(z0 + 10, max(z0 + 11, w.tunnel.z1 - 3)))
        objs.append(make_object(rng, "car_van" if rng.random() < 0.8 else "bus_truck", lane, zc, view="rear",
                                   speed=speed + float(rng.normal(0, 1.5))))
        objs += _backlit_road_users(rng, w, w.tunnel.z1 + 5 - 10, int(rng.integers(1, 3)))
    elif case == "tunnel_entry":  # a vehicle entering the dark mouth ahead
        lane = float(rng.choice([0.0, w.lane_w])) if w.road_right > w.lane_w else 0.0
        zc = w.tunnel.z0 + float(rng.uniform(-5, 20))
        objs.append(make_object(rng, "car_van" if rng.random() < 0.8 else "bus_truck", lane, zc, view="rear",
                                   speed=speed + float(rng.normal(0, 1.5))))
    hfov = float(rng.uniform(52, 68))
    return dv.ProceduralStage(w, objs, width, height, hfov, z0=z0, speed=speed, pitch_deg=float(rng.uniform(-3.5, 0.5)),
                              cam_x=float(rng.normal(0, 0.25)), cam_y=float(rng.uniform(1.25, 1.6)),
                              meta=dict(source="procedural", kind=case, world_kind=kind, place=place, mix=MIX_NAME),
                              shake_seed=int(rng.integers(2 ** 31)))


def mix_rng(seed: int, split_id: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(split_id), int(index), MIX_SALT]))


def make_hdr_stage(seed: int, split_id: int, index: int, width: int, height: int,
                   case: Optional[str] = None) -> dv.ProceduralStage:
    rng = mix_rng(seed, split_id, index)
    drawn = draw_case(rng)
    return hdr_case_stage(rng, case or drawn, width, height)
