"""What objects stand where in a road world, with their appearance parameters and velocities.

Objects are of the six classes of :mod:`neural_ae_ros.classes` (``cls``) or props (``'prop'``:
poles, street lamps), drawn as ``kind`` by :func:`.sprites.draw`. Densities per 100 m of road
are in :func:`sample_objects`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..classes import CLASS_ID
from .world import World


@dataclass
class ObjectSpec:
    cls: str  # one of classes.CLASS_NAMES, or 'prop'
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
