"""Scene stages (a world + objects + a camera path) and scripted drives with illumination events.

A *stage* renders the scene at time ``t`` (seconds): background, objects (moving), boxes.
:class:`DriveSource` is a scripted drive, the camera bridge's built-in scene source::

    src = DriveSource("tunnel", width=640, height=384, seed=3, fps=30.0, num_frames=300)
    radiance_e_per_s, boxes, events = src.frame(i)   # float32 (3, H, W), list[dict], list[IlluminationEvent]
    src.events                                        # all events of the drive (frame, kind, factor)

Drives (``DRIVES``), each 15 s at 30 fps by default (``num_frames`` frames; ``frame(i)`` loops
with period ``num_frames``):

- ``tunnel``: a day road into a lit tunnel (entry at 25-35 % of the drive, reinforced
  threshold lighting) and out again (exit at 60-75 %). Events ``tunnel_entry``, ``tunnel_exit``.
- ``low_sun``: a late-afternoon road turning toward a low sun (3-8 deg elevation); the sun's
  azimuth relative to the road sweeps from 60 deg to ~0 (the road bends toward it). Event
  ``sun_in_view`` (the frame the sun disc enters the image unoccluded).
- ``bridge``: a sunny road passing under a 15-35 m wide overpass at about mid-drive.
  Events ``bridge_entry``, ``bridge_exit``.
- ``night_streetlight``: a dark road lit only by the headlights, then a street-lit section
  starting at 35-50 % of the drive. Event ``streetlights``.
- ``panorama_pan``: a real HDR panorama (seed picks one of the outdoor ones unless
  ``panorama=`` is given) panned at 4-8 deg/s with moving objects, and a scripted tunnel:
  radiance x 1e-3 (exactly, the whole frame) from 30 % to 60 % of the drive.
  Events ``tunnel_entry`` (factor 1e-3) and ``tunnel_exit`` (factor 1e3).

Event ``factor`` = mean luminance of the frames 0.6 s and 1.0 s after the event over those
0.6 s and 1.0 s before (rendered at low resolution, same seed), or the exact scripted factor.
The seed varies the world, objects and event timing within a drive type; the same seed gives
the same frames.

:class:`FileSource` serves real HDR files (EXR / .hdr, e.g. merged with :mod:`neural_ae_ros.imaging.hdr_merge`)
through the same ``frame(i)`` interface.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import panorama as pn
from .background import Background, render_background
from .camera_geometry import Camera
from .compositing import composite
from .illumination_events import IlluminationEvent
from .lighting import artificial_light, sun_visibility
from .materials import ROAD, SKY
from .placement import sample_objects
from .world import World, sample_world, sun_vector

DRIVES = ("tunnel", "low_sun", "bridge", "night_streetlight", "panorama_pan")


@dataclass
class SceneFrame:
    radiance: np.ndarray  # (3, H, W) float32 e-/s
    boxes: list
    ignored: list
    instance_map: np.ndarray  # (H, W) int16
    time_s: float
    meta: dict = field(default_factory=dict)
    events: list = field(default_factory=list)


# -------------------------------------------------------------------------------- stages
class ProceduralStage:
    """A procedural world, its objects and a camera moving along the road."""

    def __init__(self, world: World, objs: list, width: int, height: int, hfov_deg: float = 60.0,
                 z0: float = 0.0, speed: float = 15.0, pitch_deg: float = -1.5, cam_x: float = 0.0,
                 cam_y: float = 1.4, sun_path=None, meta: Optional[dict] = None, shake_seed: int = 0):
        self.world, self.objs = world, objs
        self.width, self.height, self.hfov = width, height, hfov_deg
        self.z0, self.speed, self.pitch, self.cam_x, self.cam_y = z0, speed, pitch_deg, cam_x, cam_y
        self.sun_path = sun_path
        self.meta = dict(meta or {})
        self._shake = np.random.default_rng(shake_seed).uniform(0, 2 * np.pi, 4)

    def camera(self, t: float, width=None, height=None) -> Camera:
        s = self._shake
        pitch = self.pitch + 0.15 * math.sin(7.1 * t + s[0]) + 0.08 * math.sin(13.3 * t + s[1])
        return Camera(width or self.width, height or self.height, self.hfov, x=self.cam_x,
                      y=self.cam_y + 0.01 * math.sin(9.0 * t + s[2]), z=self.z0 + self.speed * t,
                      yaw_deg=0.2 * math.sin(0.7 * t + s[3]), pitch_deg=pitch)

    def world_at(self, t: float) -> World:
        if self.sun_path is None:
            return self.world
        el, az = self.sun_path(t)
        w = World.__new__(World)
        w.__dict__.update(self.world.__dict__)
        w.sun_dir = sun_vector(el, az)
        return w

    def render(self, t: float, width=None, height=None, with_objects=True) -> SceneFrame:
        cam = self.camera(t, width, height)
        w = self.world_at(t)
        bg = render_background(w, cam)
        c = composite(bg, cam, w, self.objs if with_objects else [], t)
        return SceneFrame(c.radiance, c.boxes, c.ignored, c.instance_map, t, dict(self.meta))


class PanoramaStage:
    """A real HDR panorama seen by a (panning) camera, with objects on a virtual ground plane."""

    CAM_HEIGHT = 1.6

    def __init__(self, name: str, objs: list, world: World, width: int, height: int,
                 hfov_deg: float, pitch_deg: float, heading_deg: float, pan_deg_s: float = 0.0,
                 shadowed: bool = False, gain_path=None, meta: Optional[dict] = None):
        self.name, self.objs, self.world = name, objs, world
        self.width, self.height, self.hfov, self.pitch = width, height, hfov_deg, pitch_deg
        self.heading, self.pan = heading_deg, pan_deg_s
        self.shadowed = shadowed
        self.gain_path = gain_path
        self.meta = dict(meta or {})
        pano = pn.load_panorama(name)
        y = pano.max(0)
        self._sun_thr = float(np.median(y)) * 300.0
        self._white_cache = {}

    def camera(self, t: float, width=None, height=None) -> Camera:
        return Camera(width or self.width, height or self.height, self.hfov, x=0.0, y=self.CAM_HEIGHT, z=0.0,
                      yaw_deg=self.heading + self.pan * t, pitch_deg=self.pitch)

    def _lighting(self, cam: Camera):
        w = self.world

        def light(P, normal):
            key = tuple(np.round(normal, 2))
            if key not in self._white_cache:
                self._white_cache[key] = pn.white_radiance(self.name, normal, self._sun_thr if self.shadowed else None)
            white = np.broadcast_to(self._white_cache[key][:, None], (3, P.shape[1])).copy()
            nrm = np.broadcast_to(np.asarray(normal, np.float32)[:, None], P.shape)
            head = artificial_light(w, P, nrm, cam, parts=("head",))
            return white, head

        return light

    def background(self, cam: Camera) -> Background:
        pano = pn.load_panorama(self.name)
        d = cam.rays()
        rad = pn._sample_equirect(pano, d)
        N = d.shape[1]
        ground = d[1] < -1e-4
        tt = np.where(ground, cam.y / np.maximum(-d[1], 1e-4), 1e5).astype(np.float32)
        P = cam.center.astype(np.float32)[:, None] + d * tt[None]
        mat = np.where(ground, ROAD, SKY).astype(np.uint8)
        fwd = cam.rotation()[:, 2].astype(np.float32)
        depth = np.where(ground, tt * (fwd @ d), 1e5).astype(np.float32).reshape(cam.height, cam.width)
        zeros = np.zeros((3, N), np.float32)
        return Background(sun=zeros, amb=np.where(ground[None], rad, 0), emit=np.where(ground[None], 0, rad),
                          points=P, material=mat, depth=depth, shape=(cam.height, cam.width))

    def render(self, t: float, width=None, height=None, with_objects=True) -> SceneFrame:
        cam = self.camera(t, width, height)
        bg = self.background(cam)
        c = composite(bg, cam, self.world, self.objs if with_objects else [], t, lighting=self._lighting(cam))
        rad = c.radiance
        if self.gain_path is not None:
            g = float(self.gain_path(t))
            if g != 1.0:
                rad = rad * np.float32(g)
        meta = dict(self.meta, heading_deg=float((self.heading + self.pan * t) % 360.0))
        return SceneFrame(rad, c.boxes, c.ignored, c.instance_map, t, meta)


def panorama_world(name: str, rng: np.random.Generator) -> World:
    """A stand-in road layout (lanes, sidewalks) and light state for objects on a panorama."""
    info = pn.PANORAMA_INFO[name]
    kind = {"day": "overcast", "dusk": "overcast", "night": "night_rural", "indoor": "overcast"}[info["lighting"]]
    w = sample_world(rng, kind)
    w.build_left = w.build_right = None
    w.trees_left_x = w.trees_right_x = None
    w.lamps = None
    w.kind = "dusk" if info["lighting"] == "dusk" else w.kind
    return w


def panorama_stage(rng: np.random.Generator, width: int, height: int, split: Optional[str] = None,
                   name: Optional[str] = None, pan_deg_s: float = 0.0, gain_path=None,
                   density: float = 1.0) -> PanoramaStage:
    if split is not None:
        view = pn.sample_view(rng, split, width, height)
    else:
        view = dict(panorama=name or str(rng.choice(pn.OUTDOOR_PANORAMAS)), heading_deg=float(rng.uniform(0, 360)),
                    pitch_deg=float(rng.uniform(-4, 1)), hfov_deg=float(rng.uniform(50, 65)))
    if name is not None:
        view["panorama"] = name
    w = panorama_world(view["panorama"], rng)
    yaw = view["heading_deg"]
    # objects are placed in a frame aligned with the initial heading, then rotated into the world
    local = sample_objects(rng, w, 0.0, 90.0, ego_speed=0.0, density=density, pedestrians=True)
    local = [o for o in local if o.kind != "pole" or True]
    c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    objs = []
    for o in local:
        x, z = o.x, o.z
        o.x, o.z = c * x + s * z, -s * x + c * z
        vx, vz = o.vx, o.vz
        o.vx, o.vz = c * vx + s * vz, -s * vx + c * vz
        objs.append(o)
    meta = dict(source="panorama", **view)
    return PanoramaStage(view["panorama"], objs, w, width, height, view["hfov_deg"], view["pitch_deg"],
                         view["heading_deg"], pan_deg_s=pan_deg_s, shadowed=bool(rng.random() < 0.3),
                         gain_path=gain_path, meta=meta)


def procedural_stage(rng: np.random.Generator, kind: str, width: int, height: int,
                     hfov_deg: Optional[float] = None) -> ProceduralStage:
    """A random still-scene stage of a procedural ``kind`` (camera placed where the kind is interesting)."""
    w = sample_world(rng, kind, seed=int(rng.integers(2 ** 31)))
    z0 = 0.0
    place = "road"
    if w.tunnel is not None:
        t = w.tunnel
        r = rng.random()
        if r < 0.25:
            z0, place = t.z0 - rng.uniform(10, 120), "tunnel_approach"
        elif r < 0.8:
            z0, place = rng.uniform(t.z0 + 15, max(t.z0 + 16, t.z1 - 25)), "tunnel_inside"
        else:
            z0, place = t.z1 - rng.uniform(-5, 25), "tunnel_exit"
    elif w.bridge is not None:
        z0, place = w.bridge.z0 - rng.uniform(-5, 60), "bridge"
    speed = w.speed_m_s
    objs = sample_objects(rng, w, z0 - 5, z0 + 160, speed)
    hfov = float(hfov_deg if hfov_deg is not None else rng.uniform(52, 68))
    return ProceduralStage(w, objs, width, height, hfov, z0=z0, speed=speed, pitch_deg=float(rng.uniform(-3.5, 0.5)),
                           cam_x=float(rng.normal(0, 0.25)), cam_y=float(rng.uniform(1.25, 1.6)),
                           meta=dict(source="procedural", kind=kind, place=place), shake_seed=int(rng.integers(2 ** 31)))


# --------------------------------------------------------------------------------- drives
class DriveSource:
    """A scripted drive; ``frame(i) -> (radiance_e_per_s (3,H,W) float32, boxes, events)``.

    ``events`` returned by ``frame(i)`` are those whose frame is ``i``; :attr:`events` lists
    all (computed lazily: the factors need a few low-resolution renders).
    """

    def __init__(self, name: str, width: int = 640, height: int = 384, seed: int = 0, fps: float = 30.0,
                 num_frames: int = 450, hfov_deg: float = 60.0, panorama: Optional[str] = None):
        if name not in DRIVES:
            raise ValueError(f"unknown drive {name!r}; expected one of {DRIVES}")
        if num_frames < 2:
            raise ValueError("num_frames must be >= 2")
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self.name, self.width, self.height, self.seed = name, int(width), int(height), int(seed)
        self.fps, self.num_frames, self.hfov = float(fps), int(num_frames), float(hfov_deg)
        self.duration_s = self.num_frames / self.fps
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1000 + DRIVES.index(name)]))
        self._scripted = {}  # kind -> (frame, factor) for exact scripted events
        self._event_frames = []  # (frame, kind)
        self.stage = self._build(rng, panorama)
        self._events: Optional[list] = None

    # -------------------------------------------------------------- construction
    def _frac_frame(self, frac: float) -> int:
        return int(round(frac * self.num_frames))

    def _build(self, rng, panorama):
        T = self.duration_s
        name = self.name
        if name == "panorama_pan":
            f_in = self._frac_frame(0.3)
            f_out = self._frac_frame(0.6)
            t_in, t_out = f_in / self.fps, f_out / self.fps

            def gain(t):
                return 1e-3 if t_in - 1e-9 <= t < t_out - 1e-9 else 1.0

            pano = panorama or str(rng.choice(["city", "courtyard", "forest", "sunrise", "sunset"]))
            st = panorama_stage(rng, self.width, self.height, name=pano, pan_deg_s=float(rng.uniform(4, 8)) * rng.choice([-1, 1]),
                                gain_path=gain)
            st.hfov = self.hfov
            self._scripted = {"tunnel_entry": (f_in, 1e-3), "tunnel_exit": (f_out, 1e3)}
            self._event_frames = [(f_in, "tunnel_entry"), (f_out, "tunnel_exit")]
            st.meta.update(drive=name)
            return st
        speed = float(rng.uniform(15, 20)) if name == "tunnel" else float(rng.uniform(13, 20))
        z0 = 0.0
        z_end = z0 + speed * T
        kw = {}
        if name == "tunnel":
            te = float(rng.uniform(0.25, 0.35)) * T
            tx = float(rng.uniform(0.6, 0.75)) * T
            tz = (z0 + speed * te, z0 + speed * tx)
            w = sample_world(rng, "tunnel", z_span=(z0 - 60, z_end + 400), tunnel_at=tz, seed=self.seed)
            self._event_frames = [(self._z_frame(tz[0], z0, speed), "tunnel_entry"),
                                  (self._z_frame(tz[1], z0, speed), "tunnel_exit")]
        elif name == "bridge":
            tb = float(rng.uniform(0.4, 0.55)) * T
            width_m = float(rng.uniform(15, 35))
            bz = (z0 + speed * tb, z0 + speed * tb + width_m)
            w = sample_world(rng, "bridge", z_span=(z0 - 60, z_end + 400), bridge_at=bz, seed=self.seed,
                                sun=(float(rng.uniform(35, 60)), float(rng.uniform(-25, 25))))
            self._event_frames = [(self._z_frame(bz[0], z0, speed), "bridge_entry"),
                                  (self._z_frame(bz[1], z0, speed), "bridge_exit")]
        elif name == "night_streetlight":
            tl = float(rng.uniform(0.35, 0.5)) * T
            zl = z0 + speed * tl
            w = sample_world(rng, "night_rural", z_span=(z0 - 60, z_end + 400), lamps_from=zl, seed=self.seed)
            self._event_frames = [(self._z_frame(zl, z0, speed), "streetlights")]
        elif name == "low_sun":
            el = float(rng.uniform(3, 8))
            ts0, ts1 = float(rng.uniform(0.2, 0.3)) * T, float(rng.uniform(0.5, 0.6)) * T
            az_end = float(rng.uniform(-4, 4))

            def sun_path(t, el=el, ts0=ts0, ts1=ts1, az_end=az_end):
                a = np.clip((t - ts0) / (ts1 - ts0), 0, 1)
                a = a * a * (3 - 2 * a)
                return el, 60.0 + (az_end - 60.0) * a

            w = sample_world(rng, "day_sun", z_span=(z0 - 60, z_end + 400), sun=(el, 60.0), seed=self.seed)
            w.build_left = w.build_right = None  # open road so the sun can be seen
            w.trees_left_x = w.road_left - float(rng.uniform(15, 40))
            w.trees_right_x = w.road_right + float(rng.uniform(15, 40))
            kw["sun_path"] = sun_path
        else:  # pragma: no cover
            raise ValueError(name)
        objs = sample_objects(rng, w, z0 - 5, z_end + 150, speed, density=1.0)
        st = ProceduralStage(w, objs, self.width, self.height, self.hfov, z0=z0, speed=speed, pitch_deg=-1.5,
                             meta=dict(source="procedural", drive=name, kind=w.kind), shake_seed=int(rng.integers(2 ** 31)), **kw)
        if name == "low_sun":
            self._event_frames = [(self._sun_frame(st), "sun_in_view")]
        return st

    def _z_frame(self, z: float, z0: float, speed: float) -> int:
        return int(math.ceil((z - z0) / speed * self.fps - 1e-9))

    def _sun_frame(self, st: ProceduralStage) -> int:
        for i in range(self.num_frames):
            t = i / self.fps
            cam = st.camera(t)
            w = st.world_at(t)
            u, v, d = cam.project(cam.center[:, None] + w.sun_dir[:, None] * 1e4)
            inside = d[0] > 0 and 0 <= u[0] < cam.width and 0 <= v[0] < cam.height
            if inside and sun_visibility(w, cam.center[:, None].astype(np.float32))[0] > 0:
                return i
        return self.num_frames - 1

    # -------------------------------------------------------------- frames
    def __len__(self):
        return self.num_frames

    def time_of(self, i: int) -> float:
        return (int(i) % self.num_frames) / self.fps

    def render(self, i: int, width=None, height=None, with_objects=True) -> SceneFrame:
        t = self.time_of(i)
        fr = self.stage.render(t, width, height, with_objects)
        fr.meta.update(drive=self.name, seed=self.seed, frame=int(i))
        fr.events = [e for e in self.events if e.frame_index == int(i) % self.num_frames] if width is None else []
        return fr

    def frame(self, i: int):
        """``(radiance_e_per_s float32 (3,H,W), boxes list[dict], events list[IlluminationEvent])``."""
        fr = self.render(i)
        return fr.radiance, fr.boxes, fr.events

    def __iter__(self):
        for i in range(self.num_frames):
            yield self.frame(i)

    @property
    def events(self) -> list:
        if self._events is None:
            self._events = self._compute_events()
        return self._events

    def _mean_lum(self, i: int) -> float:
        i = int(np.clip(i, 0, self.num_frames - 1))
        fr = self.stage.render(self.time_of(i), 96, max(8, int(round(96 * self.height / self.width))), True)
        r = fr.radiance
        return float((0.2126 * r[0] + 0.7152 * r[1] + 0.0722 * r[2]).mean())

    def _compute_events(self) -> list:
        out = []
        self._event_frames = [(f, k) for f, k in self._event_frames if 0 <= f < self.num_frames]
        k0, k1 = max(1, int(round(0.6 * self.fps))), max(2, int(round(1.0 * self.fps)))
        for f, kind in self._event_frames:
            if kind in self._scripted:
                factor = self._scripted[kind][1]
            else:
                before = np.mean([self._mean_lum(f - k) for k in (k0, k1)])
                after = np.mean([self._mean_lum(f + k) for k in (k0, k1)])
                factor = float(after / max(before, 1e-12))
            out.append(IlluminationEvent(frame_index=int(f), factor=float(factor), kind=kind, time_s=f / self.fps))
        return out


class FileSource:
    """Real HDR frames from files (OpenEXR / Radiance .hdr), same interface as :class:`DriveSource`.

    ``FileSource(path_or_dir, scale_e_per_s=1.0, fps=30.0)``: a directory is read in sorted
    file-name order (``*.exr``, ``*.hdr``); ``scale_e_per_s`` converts file units to e-/s.
    Optional boxes per frame from a sidecar ``<stem>.json`` holding a list of
    ``{"cls": ..., "box": [x0, y0, x1, y1]}``. Files are validated on load (clear errors naming
    the file, see :mod:`neural_ae_ros.imaging.hdr_io`); all frames must have the same size.
    """

    def __init__(self, path, scale_e_per_s: float = 1.0, fps: float = 30.0):
        from pathlib import Path

        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".exr", ".hdr", ".pic"))
        else:
            files = [p]
        if not files:
            raise ValueError(f"{p}: no .exr or .hdr files")
        self.files, self.scale, self.fps = files, float(scale_e_per_s), float(fps)
        self.num_frames = len(files)
        self.events: list = []
        first = self._load(0)
        self.height, self.width = first.shape[1:]

    def _load(self, i: int) -> np.ndarray:
        from neural_ae_ros.imaging import hdr_io

        return hdr_io.load_radiance(self.files[i], self.scale)

    def __len__(self):
        return self.num_frames

    def frame(self, i: int):
        import json

        f = self.files[int(i) % self.num_frames]
        rad = self._load(int(i) % self.num_frames)
        if rad.shape[1:] != (self.height, self.width):
            raise ValueError(f"{f}: size {rad.shape[2]}x{rad.shape[1]} differs from the first frame's "
                             f"{self.width}x{self.height}")
        side = f.with_suffix(".json")
        boxes = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else []
        return rad, boxes, []
