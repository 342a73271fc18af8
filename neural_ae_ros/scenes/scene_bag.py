"""Scene radiance recordings: rosbag2 (MCAP) bags of HDR radiance frames with ground-truth boxes.

Written and read with ``rosbags`` (pure Python, no ROS install); the bags open in any tool that
reads rosbag2 MCAP with ROS 2 ``ros2msg`` schemas (``ros2 bag``, Foxglove, ``mcap`` +
``mcap-ros2-support``), since every schema, vision_msgs included, is embedded in the file.

Format versions (``/scene/info`` ``format``; both are read, anything else is refused by name):

* ``neural_ae_ros.scene_bag/2`` (written by default): the radiance is stored as the camera's
  RGGB mosaic of it (the Eq. 1-3 sensor model sees nothing else) in IEEE half floats, scaled by
  a per-frame power of two (``/scene/radiance_meta``). 2 bytes per pixel: 1920 x 1200 is
  4.6 MB per frame (``compress=True`` / ``--compress``: zstd MCAP chunks, smaller still).
  Precision: relative error at most 2^-11 = 4.9e-4 (rms 2.8e-4) for values within 2^-14 ..
  2^15 of the scale (a 174 dB span per frame); the smallest relative temporal noise the sensor
  model has, shot noise at the full well (1 / sqrt(32500) = 5.5e-3), is 11x the worst-case and
  19x the rms error, so the encoding adds at most 0.3 % to the noise variance at any level.
  Each frame carries a CRC-32 of its data; a mismatch is reported with the frame and topic.
* ``neural_ae_ros.scene_bag/1`` (``encoding="32FC3"``): full linear RGB float32, 12 bytes per
  pixel (1920 x 1200: 27.6 MB per frame). Still read (radiance (3, H, W)) and still writable
  for tools that want the RGB scene.

Radiance read back must be finite and non-negative; a frame that is not is refused with the
file, topic and frame named (e.g. bytes overwritten on disk).

Topic layout and ``/scene/info`` keys: one definition, :data:`SCHEMA_TOPICS` and
:data:`INFO_KEYS` below, which the writer, the reader and the README's tables
(:func:`schema_markdown`, appended to this docstring) all use. All messages of a frame share
its ``header.stamp``; bag time = stamp = ``START_NS + frame / fps``. Labels are optional
(``labelled: false``: no ``/scene/boxes`` / ``/scene/ignored`` topics).

vision_msgs 4.x definitions come from ``msg/vision_msgs_compat/msg/*.msg`` in the source tree,
or from the copy embedded here when that directory is absent.

Bad input raises :class:`SceneBagError` naming the file and topic: a path that is not a bag,
a truncated bag (frames before the damage can still be read with ``allow_truncated=True``;
rosbags writes MCAP chunks of ~1 MiB, so what is recoverable ends at the last whole chunk),
missing topics, and radiance frames of the wrong encoding, size or dtype.
"""
from __future__ import annotations

import json
import math
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from neural_ae_ros.classes import CLASS_NAMES

from .illumination_events import IlluminationEvent

FORMAT_V1 = "neural_ae_ros.scene_bag/1"
FORMAT_V2 = "neural_ae_ros.scene_bag/2"
FORMAT = FORMAT_V2
FORMATS = (FORMAT_V1, FORMAT_V2)
START_NS = 1_700_000_000 * 1_000_000_000
TOPIC_RADIANCE = "/scene/radiance"
TOPIC_BOXES = "/scene/boxes"
TOPIC_IGNORED = "/scene/ignored"
TOPIC_EVENTS = "/scene/events"
TOPIC_INFO = "/scene/info"
TOPIC_RADIANCE_META = "/scene/radiance_meta"
ENCODING_V1 = "32FC3"  # float32 linear RGB, (H, W, 3)
ENCODING_V2 = "16FC1"  # half float RGGB mosaic, scaled by 2^scale_exp
ENCODING = ENCODING_V2
#: v2: the frame maximum is scaled to at most this (half floats reach 65504).
F16_SCALED_MAX = 32768.0
IMAGE_T = "sensor_msgs/msg/Image"
DET_T = "vision_msgs/msg/Detection2DArray"
STRING_T = "std_msgs/msg/String"


# ------------------------------------------------------------------------------ the schema
@dataclass(frozen=True)
class TopicSpec:
    """One topic of a scene bag: the writer creates it, the reader checks it, the README lists it."""

    topic: str
    msgtype: str
    when: str  # which bags / frames carry it
    required: bool  # a bag without it is refused
    content: str


@dataclass(frozen=True)
class InfoKey:
    """One key of the ``/scene/info`` JSON record."""

    name: str
    types: tuple  # accepted JSON types (Python)
    required: bool
    reader_use: str  # what the reader does with it ("" = recorded for people, not read)
    meaning: str


SCHEMA_TOPICS = (
    TopicSpec(TOPIC_INFO, STRING_T, "once, first", True,
              "JSON record of the keys below"),
    TopicSpec(TOPIC_RADIANCE, IMAGE_T, "every frame", True,
              "v2: `16FC1` half-float RGGB mosaic (R at (0, 0)) of radiance in e-/s times 2^scale_exp, "
              "step 2 W; v1: `32FC3` linear RGB e-/s, step 12 W; `frame_id` scene"),
    TopicSpec(TOPIC_RADIANCE_META, STRING_T, "every frame (v2)", False,
              "JSON `{\"frame\", \"scale_exp\", \"crc32\"}`: radiance = data * 2^-scale_exp; CRC-32 of data "
              "(a v2 frame without it is refused)"),
    TopicSpec(TOPIC_BOXES, DET_T, "every frame (labelled bags)", False,
              "labelled objects: `bbox` centre and size in pixels (pixel-edge coordinates), "
              "`results[0].hypothesis.class_id` = class name, score 1, `id` = instance"),
    TopicSpec(TOPIC_IGNORED, DET_T, "every frame (labelled bags)", False,
              "don't-care objects (occluded, truncated, tiny), score 0"),
    TopicSpec(TOPIC_EVENTS, STRING_T, "frames with an event", False,
              "JSON `{\"frame\", \"events\": [{\"kind\", \"factor\", \"frame\", \"time_s\"}]}`"),
)
REQUIRED_TOPICS = tuple(t.topic for t in SCHEMA_TOPICS if t.required)
_TOPIC_TYPES = {t.topic: t.msgtype for t in SCHEMA_TOPICS}

INFO_KEYS = (
    InfoKey("format", (str,), False, "refuses unknown formats; absent: v1",
            "`neural_ae_ros.scene_bag/2` (or `/1`)"),
    InfoKey("width", (int,), True, "checks every frame's size", "pixels"),
    InfoKey("height", (int,), True, "checks every frame's size", "pixels"),
    InfoKey("fps", (int, float), True, "frame index of a stamp", "frames per second of the stamps"),
    InfoKey("encoding", (str,), False, "", "`16FC1` (v2) or `32FC3` (v1)"),
    InfoKey("unit", (str,), False, "", "radiance unit and layout (e-/s at the photosite)"),
    InfoKey("frames", (int,), False, "checked against the frames in the bag (warning if they differ)",
            "number of frames written"),
    InfoKey("labelled", (bool,), False, "whether /scene/boxes must be there; absent: whether it is",
            "the bag carries ground-truth boxes"),
    InfoKey("classes", (list,), False, "", "class names the labels use"),
    InfoKey("events", (list,), False, "illumination events the loop scores",
            "all illumination events: `{kind, factor, frame, time_s}`"),
    InfoKey("source", (dict,), False, "",
            "user data: `kind` (`hdr_files` / `brackets`), files, response, levels, `radiance_scale`, "
            "assumptions made"),
    InfoKey("drive", (str,), False, "", "built-in drive name (recorded drives)"),
    InfoKey("seed", (int,), False, "", "drive seed (recorded drives)"),
    InfoKey("meta", (dict,), False, "", "drive stage parameters (recorded drives)"),
)
_INFO = {k.name: k for k in INFO_KEYS}


def check_info(info: dict, where: str, unknown_keys: str = "refuse", warnings_out: Optional[list] = None) -> dict:
    """Validate a ``/scene/info`` record against :data:`INFO_KEYS`; :class:`SceneBagError` naming ``where``.

    ``unknown_keys``: ``"refuse"`` (the writer: only documented keys are written) or ``"warn"``
    (the reader: a newer writer's extra key is noted in ``warnings_out`` and not used).
    """
    if not isinstance(info, dict):
        raise SceneBagError(f"{where}: topic {TOPIC_INFO}: expected a JSON object, got {type(info).__name__}")
    unknown = sorted(set(info) - set(_INFO))
    if unknown:
        text = (f"{where}: topic {TOPIC_INFO}: undocumented key(s) {unknown} (the schema has "
                f"{[k.name for k in INFO_KEYS]})")
        if unknown_keys == "refuse":
            raise SceneBagError(text + ": add it to scene_bag.INFO_KEYS")
        if warnings_out is not None:
            warnings_out.append(text + ": not used")
    for k in INFO_KEYS:
        if k.name not in info:
            if k.required:
                raise SceneBagError(f"{where}: topic {TOPIC_INFO}: missing key {k.name!r}")
            continue
        v = info[k.name]
        if not isinstance(v, k.types) or (isinstance(v, bool) and bool not in k.types):
            raise SceneBagError(f"{where}: topic {TOPIC_INFO}: key {k.name!r} = {v!r}, expected "
                                f"{' or '.join(t.__name__ for t in k.types)}")
    return info


def schema_markdown() -> str:
    """The README's two tables (topics, ``/scene/info`` keys), generated from the schema."""
    lines = ["| topic | type | when | required | content |", "|---|---|---|---|---|"]
    for t in SCHEMA_TOPICS:
        lines.append(f"| `{t.topic}` | {t.msgtype} | {t.when} | {'yes' if t.required else 'no'} | {t.content} |")
    lines += ["", "| `/scene/info` key | type | required | the reader | meaning |", "|---|---|---|---|---|"]
    for k in INFO_KEYS:
        ty = " or ".join({"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                          "list": "list", "dict": "object"}[t.__name__] for t in k.types)
        lines.append(f"| `{k.name}` | {ty} | {'yes' if k.required else 'no'} | {k.reader_use or '-'} | {k.meaning} |")
    return "\n".join(lines) + "\n"


__doc__ = (__doc__ or "") + "\n" + schema_markdown()

_EMBEDDED_VISION_MSGS = {
    "Point2D": "float64 x\nfloat64 y\n",
    "Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "ObjectHypothesis": "string class_id\nfloat64 score\n",
    "ObjectHypothesisWithPose": "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n",
    "Detection2D": "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
                   "vision_msgs/BoundingBox2D bbox\nstring id\n",
    "Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
}
_MSG_DIR = Path(__file__).resolve().parent.parent.parent / "msg" / "vision_msgs_compat" / "msg"


class SceneBagError(ValueError):
    """A scene bag could not be written or read; the message names the file (and topic)."""


_TYPESTORE = None


def typestore():
    """A rosbags typestore (ROS 2 Kilted) with the vision_msgs 4.x types registered."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore

        ts = get_typestore(Stores.ROS2_KILTED)
        types = {}
        for name, text in _EMBEDDED_VISION_MSGS.items():
            f = _MSG_DIR / f"{name}.msg"
            if f.is_file():
                text = f.read_text(encoding="utf-8")
            types.update(get_types_from_msg(text, f"vision_msgs/msg/{name}"))
        ts.register(types)
        _TYPESTORE = ts
    return _TYPESTORE


# --------------------------------------------------------------------------------- writing
def _stamp(ts, ns: int):
    T = ts.types["builtin_interfaces/msg/Time"]
    return T(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def _header(ts, ns: int, frame_id: str = "scene"):
    return ts.types["std_msgs/msg/Header"](stamp=_stamp(ts, ns), frame_id=frame_id)


def _detections(ts, ns: int, boxes: Iterable[dict], score: float):
    t = ts.types
    Pose = t["geometry_msgs/msg/Pose"]
    pwc = t["geometry_msgs/msg/PoseWithCovariance"]
    dets = []
    for b in boxes:
        if not b.get("box"):
            continue
        x0, y0, x1, y1 = (float(v) for v in b["box"])
        pose = pwc(pose=Pose(position=t["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
                             orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
                   covariance=np.zeros(36, np.float64))
        hyp = t["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=t["vision_msgs/msg/ObjectHypothesis"](class_id=str(b["cls"]), score=float(score)), pose=pose)
        bbox = t["vision_msgs/msg/BoundingBox2D"](
            center=t["vision_msgs/msg/Pose2D"](position=t["vision_msgs/msg/Point2D"](x=(x0 + x1) / 2, y=(y0 + y1) / 2), theta=0.0),
            size_x=x1 - x0, size_y=y1 - y0)
        dets.append(t["vision_msgs/msg/Detection2D"](header=_header(ts, ns), results=[hyp], bbox=bbox,
                                                     id=str(b.get("id", ""))))
    return t[DET_T](header=_header(ts, ns), detections=dets)


class SceneBagWriter:
    """Write scene frames to a rosbag2 MCAP bag (a directory ``path``, created; must not exist).

    ``encoding``: ``"16FC1"`` (format v2, default: half-float RGGB mosaic) or ``"32FC3"``
    (format v1: float32 RGB).
    """

    def __init__(self, path, width: int, height: int, fps: float, info: Optional[dict] = None,
                 compress: bool = False, encoding: str = ENCODING, labelled: bool = True):
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise SceneBagError(f"{self.path}: already exists (rosbag2 writes a new directory)")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        if self.fps <= 0:
            raise SceneBagError(f"{self.path}: fps must be > 0")
        if encoding not in (ENCODING_V1, ENCODING_V2):
            raise SceneBagError(f"{self.path}: encoding {encoding!r}, expected {ENCODING_V2!r} or {ENCODING_V1!r}")
        if encoding == ENCODING_V2 and (self.width % 2 or self.height % 2):
            raise SceneBagError(f"{self.path}: an RGGB mosaic needs even width and height, got "
                                f"{self.width}x{self.height}")
        self.encoding = encoding
        self.labelled = bool(labelled)
        version = FORMAT_V2 if encoding == ENCODING_V2 else FORMAT_V1
        layout = "RGGB mosaic" if encoding == ENCODING_V2 else "linear RGB"
        self.info = dict(format=version, width=self.width, height=self.height, fps=self.fps, encoding=encoding,
                         unit=f"e-/s (photo-electrons per second at the photosite), {layout}", labelled=self.labelled)
        self.info.update(info or {})
        self.info = json.loads(json.dumps(self.info, default=_jd))
        check_info(self.info, str(self.path))  # only documented keys, of the documented types
        if self.info["labelled"] != self.labelled:
            raise SceneBagError(f"{self.path}: info 'labelled' contradicts labelled={self.labelled}")
        self.ts = typestore()
        self._w = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if compress:  # zstd MCAP chunks (readers need zstd support; mcap-python has it)
            self._w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._w.open()
        skip = set() if encoding == ENCODING_V2 else {TOPIC_RADIANCE_META}
        if not self.labelled:
            skip |= {TOPIC_BOXES, TOPIC_IGNORED}
        self._c = {t.topic: self._w.add_connection(t.topic, t.msgtype, typestore=self.ts)
                   for t in SCHEMA_TOPICS if t.topic not in skip}
        self._write(TOPIC_INFO, START_NS, self.ts.types[STRING_T](data=json.dumps(self.info)), STRING_T)
        self.count = 0

    def _write(self, topic, ns, msg, msgtype):
        self._w.write(self._c[topic], ns, self.ts.serialize_cdr(msg, msgtype))

    def stamp_ns(self, index: int) -> int:
        return START_NS + int(round(index * 1e9 / self.fps))

    def write(self, index: int, radiance_e_per_s: np.ndarray, boxes: list, ignored: list = (), events: list = ()) -> None:
        rad = np.asarray(radiance_e_per_s)
        where = f"{self.path}: {TOPIC_RADIANCE} frame {index}"
        if rad.shape != (3, self.height, self.width):
            raise SceneBagError(f"{where}: shape {rad.shape}, expected (3, {self.height}, {self.width})")
        if rad.dtype.kind != "f" or not np.isfinite(rad).all():
            raise SceneBagError(f"{where}: need finite float radiance")
        if rad.min() < 0:
            raise SceneBagError(f"{where}: negative radiance (min {float(rad.min()):.4g} e-/s)")
        ns = self.stamp_ns(index)
        if self.encoding == ENCODING_V1:
            data = np.ascontiguousarray(np.moveaxis(rad, 0, -1), dtype="<f4").reshape(-1).view(np.uint8)
            step = 12 * self.width
        else:
            data, scale_exp = encode_mosaic_f16(rad)
            step = 2 * self.width
            meta = dict(frame=int(index), scale_exp=int(scale_exp), crc32=zlib.crc32(data))
            self._write(TOPIC_RADIANCE_META, ns, self.ts.types[STRING_T](data=json.dumps(meta)), STRING_T)
        img = self.ts.types[IMAGE_T](header=_header(self.ts, ns), height=self.height, width=self.width,
                                     encoding=self.encoding, is_bigendian=0, step=step, data=data)
        self._write(TOPIC_RADIANCE, ns, img, IMAGE_T)
        if self.labelled:
            self._write(TOPIC_BOXES, ns, _detections(self.ts, ns, boxes, 1.0), DET_T)
            self._write(TOPIC_IGNORED, ns, _detections(self.ts, ns, ignored, 0.0), DET_T)
        elif boxes or ignored:
            raise SceneBagError(f"{where}: boxes given for a bag written without labels")
        if events:
            evs = [e.to_dict() for e in events]
            self._write(TOPIC_EVENTS, ns, self.ts.types[STRING_T](data=json.dumps(dict(frame=int(index), events=evs), default=_jd)),
                        STRING_T)
        self.count += 1

    def close(self):
        if self._w is not None:
            self._w.close()
            self._w = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """RGGB sampling of (3, H, W) radiance, as the camera does (``sensor.bayer_sample_rggb``)."""
    out = np.array(rgb[1], dtype=np.float32, copy=True)
    out[0::2, 0::2] = rgb[0, 0::2, 0::2]
    out[1::2, 1::2] = rgb[2, 1::2, 1::2]
    return out


def encode_mosaic_f16(rgb: np.ndarray):
    """(3, H, W) radiance -> (little-endian half-float bytes of its RGGB mosaic times
    ``2^scale_exp`` as uint8, ``scale_exp``), the frame maximum scaled to <= ``F16_SCALED_MAX``."""
    import torch

    mosaic = mosaic_rggb(rgb)
    peak = float(mosaic.max())
    scale_exp = int(math.floor(math.log2(F16_SCALED_MAX / peak))) if peak > 0 else 0
    scale_exp = max(-126, min(126, scale_exp))
    half = torch.from_numpy(mosaic).mul_(2.0 ** scale_exp).to(torch.float16)  # numpy's f16 cast is ~100x slower
    return half.numpy().view(np.uint8).reshape(-1), scale_exp


def _jd(o):
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(type(o))


def record_drive(drive: str, frames: int, seed: int, out, width: int = 640, height: int = 384, fps: float = 30.0,
                 progress: bool = True, panorama: Optional[str] = None, compress: bool = False,
                 encoding: str = ENCODING) -> Path:
    """Render ``frames`` frames of a :class:`scenes.drives.DriveSource` into a scene bag at ``out``."""
    from neural_ae_ros.scenes.drives import DriveSource

    src = DriveSource(drive, width, height, seed=seed, fps=fps, num_frames=max(frames, 2), panorama=panorama)
    info = dict(drive=drive, seed=int(seed), frames=int(frames), classes=list(CLASS_NAMES),
                events=[e.to_dict() for e in src.events], meta=src.stage.meta)
    it = range(frames)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"record {drive}", unit="frame")
    with SceneBagWriter(out, width, height, fps, info, compress=compress, encoding=encoding) as w:
        for i in it:
            fr = src.render(i)
            w.write(i, fr.radiance, fr.boxes, fr.ignored, fr.events)
    return Path(out)


# --------------------------------------------------------------------------------- reading
@dataclass
class SceneBagFrame:
    index: int
    stamp_ns: int
    radiance: np.ndarray  # float32 e-/s: (H, W) RGGB mosaic (format v2) or (3, H, W) RGB (v1)
    boxes: list
    ignored: list = field(default_factory=list)
    events: list = field(default_factory=list)  # IlluminationEvent starting at this frame


def _boxes_from_msg(msg) -> list:
    out = []
    for d in msg.detections:
        cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
        w, h = d.bbox.size_x, d.bbox.size_y
        cls = d.results[0].hypothesis.class_id if len(d.results) else ""
        rec = dict(cls=cls, box=[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        try:
            rec["id"] = int(d.id)
        except ValueError:
            rec["id"] = d.id
        out.append(rec)
    return out


class SceneBag:
    """Read a scene bag. ``frames()`` yields :class:`SceneBagFrame` in stamp order.

    Raises :class:`SceneBagError` (file and topic named) for unreadable / truncated bags, missing
    topics and malformed radiance frames. With ``allow_truncated=True`` a truncated MCAP file is
    read sequentially up to the damage (complete frames only) and ``warnings`` says so.
    """

    def __init__(self, path, allow_truncated: bool = False):
        self.path = Path(path)
        self.allow_truncated = allow_truncated
        self.warnings: list = []
        if not self.path.exists():
            raise SceneBagError(f"{self.path}: no such bag")
        self.ts = typestore()
        self._records = None  # list of (topic, ns, raw) when read through the fallback
        self.topics = self._probe()
        missing = [t for t in REQUIRED_TOPICS if t not in self.topics]
        if missing:
            raise SceneBagError(f"{self.path}: missing topic(s) {missing} (has {sorted(self.topics)}): not a scene "
                                "bag, or not written by this project")
        for t, ty in self.topics.items():
            if t in _TOPIC_TYPES and ty != _TOPIC_TYPES[t]:
                raise SceneBagError(f"{self.path}: topic {t} has type {ty}, expected {_TOPIC_TYPES[t]}")
        self.info = check_info(self._read_info(), str(self.path), "warn", self.warnings)
        fmt = self.info.get("format", FORMAT_V1)
        if fmt not in FORMATS:
            raise SceneBagError(f"{self.path}: scene bag format {fmt!r} is not supported by this version "
                                f"(it reads {', '.join(FORMATS)})")
        self.format = fmt
        # what the reader uses from /scene/info (the INFO_KEYS rows with a reader use)
        self.width, self.height = int(self.info["width"]), int(self.info["height"])
        self.fps = float(self.info["fps"])
        if self.width <= 0 or self.height <= 0 or not self.fps > 0:
            raise SceneBagError(f"{self.path}: topic {TOPIC_INFO}: width {self.width}, height {self.height}, fps "
                                f"{self.fps} must be > 0")
        has_boxes = TOPIC_BOXES in self.topics
        self.labelled = bool(self.info.get("labelled", has_boxes))
        if self.labelled and not has_boxes:
            raise SceneBagError(f"{self.path}: {TOPIC_INFO} says labelled but topic {TOPIC_BOXES} is missing")
        try:
            self.events = [IlluminationEvent.from_dict(e, f"{self.path}: topic {TOPIC_INFO}") if isinstance(e, dict)
                           else _bad_event(self.path, e) for e in self.info.get("events", [])]
        except SceneBagError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise SceneBagError(f"{self.path}: topic {TOPIC_INFO}: bad event ({exc})") from exc
        #: frames in the bag (radiance messages), which can differ from info 'frames' (a cut-short recording)
        self.frame_count = self._counts.get(TOPIC_RADIANCE, 0)
        announced = self.info.get("frames")
        if announced is not None and announced != self.frame_count:
            self.warnings.append(f"{self.path}: {TOPIC_INFO} announces {announced} frames, the bag holds "
                                 f"{self.frame_count} (recording cut short?)")

    def _mcap_file(self) -> Optional[Path]:
        if self.path.is_file() and self.path.suffix == ".mcap":
            return self.path
        files = sorted(self.path.glob("*.mcap")) if self.path.is_dir() else []
        return files[0] if files else None

    def _probe(self) -> dict:
        from rosbags.rosbag2 import Reader

        try:
            if self.path.is_file():
                raise SceneBagError("not a rosbag2 directory")
            with Reader(self.path) as r:
                topics = {c.topic: c.msgtype for c in r.connections}
                self._counts = {}
                for c in r.connections:
                    self._counts[c.topic] = self._counts.get(c.topic, 0) + int(c.msgcount)
                # touch the end of the file: truncated MCAP files fail here or while iterating
                _ = r.message_count
            self._mode = "rosbags"
            return topics
        except Exception as exc:  # noqa: BLE001 - rosbags raises several types
            mc = self._mcap_file()
            if mc is None:
                raise SceneBagError(f"{self.path}: not a readable rosbag2 bag ({exc})") from exc
            recs, err = self._read_stream(mc)
            self._counts = {}
            for t, _, _, _ in recs:
                self._counts[t] = self._counts.get(t, 0) + 1
            if err is None and self.path.is_file():
                self._mode = "stream"
                self._records = recs
                return {t: ty for t, ty, _, _ in recs}
            if not self.allow_truncated:
                raise SceneBagError(f"{mc}: truncated or damaged bag ({err or exc}); "
                                    f"{self._complete_frames(recs)} complete frames before the damage can be "
                                    f"read with allow_truncated=True") from exc
            self.warnings.append(f"{mc}: truncated or damaged ({err or exc}); reading the frames before the damage")
            self._mode = "stream"
            self._records = recs
            return {t: ty for t, ty, _, _ in recs}

    @staticmethod
    def _complete_frames(recs) -> int:
        stamps = {}
        for t, _, ns, _ in recs:
            stamps.setdefault(ns, set()).add(t)
        return sum(1 for v in stamps.values() if TOPIC_RADIANCE in v)

    def _read_stream(self, mc: Path):
        """Sequential MCAP read (no summary needed): records up to the first damage."""
        recs = []
        err = None
        try:
            recs.extend(self._iter_stream(mc))
        except Exception as exc:  # noqa: BLE001
            err = f"{type(exc).__name__}: {exc}"
        return recs, err

    @staticmethod
    def _iter_stream(mc: Path):
        with open(mc, "rb") as fh:
            reader = _stream_reader(fh)
            for schema, channel, message in reader.iter_messages():
                ty = schema.name if schema is not None else ""
                yield channel.topic, ty, message.log_time, bytes(message.data)

    def _messages(self) -> Iterator[tuple]:
        """(topic, msgtype, ns, raw) in log order; a read error names the last message read."""
        if self._records is not None:
            yield from self._records
            return
        from rosbags.rosbag2 import Reader

        last = None
        mcap_files = sorted(self.path.glob("*.mcap")) if self.path.is_dir() else []
        try:
            if len(mcap_files) == 1:  # what SceneBagWriter writes: read it zero-copy
                for topic, ty, ns, raw in _iter_mcap_mmap(mcap_files[0]):
                    last = (topic, ns)
                    yield topic, ty, ns, raw
                return
            with Reader(self.path) as r:
                for conn, ns, raw in r.messages():
                    last = (conn.topic, ns)
                    yield conn.topic, conn.msgtype, ns, raw
        except SceneBagError:
            raise
        except Exception as exc:  # noqa: BLE001
            mc = self._mcap_file()
            if last is None and mc is not None:
                # the indexed reader failed up front (damaged index records): read sequentially
                # up to the damage, so the frames before it replay and the damage gets a place
                try:
                    for topic, ty, ns, raw in self._iter_stream(mc):
                        last = (topic, ns)
                        yield topic, ty, ns, raw
                except Exception as stream_exc:  # noqa: BLE001
                    exc = stream_exc
            where = "before the first message" if last is None else \
                f"after topic {last[0]} of frame {self._frame_of(last[1])} (stamp {last[1]})"
            raise SceneBagError(f"{self.path}: damaged bag: error reading messages {where} "
                                f"({type(exc).__name__}: {exc})") from exc

    def _frame_of(self, ns: int):
        fps = float((getattr(self, "info", None) or {}).get("fps", 0) or 0)
        return int(round((ns - START_NS) * fps / 1e9)) if fps > 0 else "?"

    def _read_info(self) -> dict:
        for topic, ty, ns, raw in self._messages():
            if topic == TOPIC_INFO:
                try:
                    return json.loads(self.ts.deserialize_cdr(raw, STRING_T).data)
                except Exception as exc:  # noqa: BLE001
                    raise SceneBagError(f"{self.path}: topic {TOPIC_INFO}: bad JSON ({exc})") from exc
        return {}

    def _radiance(self, raw, index, meta_raw=None, out_pool=None) -> np.ndarray:
        m = _image_view(raw)  # zero-copy view of the data; None: let rosbags decode (and complain)
        if m is None:
            try:
                m = self.ts.deserialize_cdr(raw, IMAGE_T)
            except Exception as exc:  # noqa: BLE001
                raise SceneBagError(f"{self.path}: topic {TOPIC_RADIANCE} frame {index}: undecodable Image "
                                    f"({exc})") from exc
        where = f"{self.path}: topic {TOPIC_RADIANCE} frame {index}"
        if m.encoding not in (ENCODING_V1, ENCODING_V2):
            raise SceneBagError(f"{where}: encoding '{m.encoding}', expected '{ENCODING_V2}' (half-float RGGB "
                                f"e-/s, format v2) or '{ENCODING_V1}' (float32 RGB e-/s, format v1)")
        if m.is_bigendian:
            raise SceneBagError(f"{where}: big-endian data not supported")
        h, w = int(m.height), int(m.width)
        if h <= 0 or w <= 0:
            raise SceneBagError(f"{where}: empty image {w}x{h}")
        bpp = 12 if m.encoding == ENCODING_V1 else 2
        if m.step != bpp * w:
            raise SceneBagError(f"{where}: step {m.step}, expected {bpp * w} for {w} px of {m.encoding}")
        data = np.asarray(m.data, dtype=np.uint8)
        if data.size != bpp * w * h:
            raise SceneBagError(f"{where}: {data.size} bytes, expected {bpp * w * h} for {w}x{h} {m.encoding}")
        exp_w, exp_h = self.info.get("width"), self.info.get("height")
        if exp_w is not None and (w, h) != (exp_w, exp_h):
            raise SceneBagError(f"{where}: size {w}x{h} differs from the bag's {exp_w}x{exp_h}")
        if m.encoding == ENCODING_V1:
            rad = np.ascontiguousarray(np.moveaxis(data.view("<f4").reshape(h, w, 3), -1, 0), dtype=np.float32)
            if not np.isfinite(rad).all():
                raise SceneBagError(f"{where}: non-finite radiance values ({int((~np.isfinite(rad)).sum())} "
                                    "values; data damaged?)")
            if rad.min() < 0:
                raise SceneBagError(f"{where}: negative radiance ({int((rad < 0).sum())} values, min "
                                    f"{float(rad.min()):.4g} e-/s; data damaged?)")
            return rad
        return self._decode_v2(data, h, w, meta_raw, where, out_pool)

    def _decode_v2(self, data: np.ndarray, h: int, w: int, meta_raw, where: str, out_pool=None) -> np.ndarray:
        import torch

        if meta_raw is None:
            raise SceneBagError(f"{where}: no {TOPIC_RADIANCE_META} record for this frame (scale, checksum)")
        try:
            meta = json.loads(self.ts.deserialize_cdr(meta_raw, STRING_T).data)
            scale_exp, crc = int(meta["scale_exp"]), int(meta["crc32"])
        except Exception as exc:  # noqa: BLE001
            raise SceneBagError(f"{where}: unreadable {TOPIC_RADIANCE_META} record ({exc})") from exc
        if zlib.crc32(data) != crc:
            raise SceneBagError(f"{where}: checksum mismatch (CRC-32 {zlib.crc32(data):08x}, recorded {crc:08x}): "
                                "the radiance data is damaged")
        bits = data.view("<u2")
        # half floats: finite and >= 0 <=> bits below 0x7C00 (+inf); sign bit set: negative
        if int(bits.max()) >= 0x7C00:
            bad = bits >= 0x7C00
            neg = int((bad & (bits >= 0x8000) & ((bits & 0x7FFF) < 0x7C00)).sum())
            raise SceneBagError(f"{where}: {int(bad.sum())} non-finite or negative radiance values ({neg} negative)")
        with warnings.catch_warnings():  # read-only message buffer: only read
            warnings.simplefilter("ignore", UserWarning)
            half = torch.from_numpy(data.view(np.float16).reshape(h, w))
        out = out_pool.next((h, w)) if out_pool is not None else np.empty((h, w), np.float32)
        rad = torch.from_numpy(out)
        rad.copy_(half).mul_(2.0 ** -scale_exp)
        return out

    def frames(self, reuse_buffers: int = 0) -> Iterator[SceneBagFrame]:
        """Frames in stamp order, streamed: messages come in log order and all topics of a frame
        share its stamp, so a frame is complete when the next stamp starts (one frame in memory).

        ``reuse_buffers=n`` (format v2): decode into a ring of ``n`` preallocated arrays, so a
        frame's ``radiance`` is overwritten ``n`` frames later (a consumer that holds at most
        ``n - 1`` frames at a time saves a page-faulting 9 MB allocation per 1920 x 1200 frame).
        """
        pool = _BufferRing(reuse_buffers) if reuse_buffers > 0 else None
        fps = float(self.info.get("fps", 0) or 0)
        count = 0

        def index_of(ns):
            return int(round((ns - START_NS) * fps / 1e9)) if fps > 0 else count

        group: dict = {}
        group_ns = None
        for topic, ty, ns, raw in self._messages():
            if topic not in (TOPIC_RADIANCE, TOPIC_RADIANCE_META, TOPIC_BOXES, TOPIC_IGNORED, TOPIC_EVENTS):
                continue
            if group_ns is not None and ns != group_ns:
                frame = self._frame(group_ns, group, index_of(group_ns), last=False, pool=pool)
                if frame is not None:
                    count += 1
                    yield frame
                group = {}
            group_ns = ns
            group[topic] = raw
        if group_ns is not None:
            frame = self._frame(group_ns, group, index_of(group_ns), last=True, pool=pool)
            if frame is not None:
                yield frame

    def _frame(self, ns: int, p: dict, i: int, last: bool, pool=None) -> Optional[SceneBagFrame]:
        """Decode the messages of one stamp; None for the cut-off last frame of a truncated bag."""
        per_frame = (TOPIC_RADIANCE, TOPIC_BOXES) if self.labelled else (TOPIC_RADIANCE,)
        if any(t not in p for t in per_frame):
            miss = [t for t in per_frame if t not in p]
            if last and self._records is not None and self.allow_truncated:
                return None  # incomplete last frame of a truncated bag
            raise SceneBagError(f"{self.path}: frame {i} (stamp {ns}) lacks topic(s) {miss} (has "
                                f"{sorted(p)}): bag damaged or not written by SceneBagWriter")
        rad = self._radiance(p[TOPIC_RADIANCE], i, p.get(TOPIC_RADIANCE_META), pool)
        try:
            boxes = _boxes_from_msg(self.ts.deserialize_cdr(p[TOPIC_BOXES], DET_T)) if TOPIC_BOXES in p else []
            ign = _boxes_from_msg(self.ts.deserialize_cdr(p[TOPIC_IGNORED], DET_T)) if TOPIC_IGNORED in p else []
        except Exception as exc:  # noqa: BLE001
            raise SceneBagError(f"{self.path}: topic {TOPIC_BOXES} frame {i}: undecodable ({exc})") from exc
        events = []
        if TOPIC_EVENTS in p:
            try:
                events = json.loads(self.ts.deserialize_cdr(p[TOPIC_EVENTS], STRING_T).data).get("events", [])
            except Exception as exc:  # noqa: BLE001
                raise SceneBagError(f"{self.path}: topic {TOPIC_EVENTS} frame {i}: bad JSON ({exc})") from exc
            try:
                events = [IlluminationEvent.from_dict(e, f"{self.path}: topic {TOPIC_EVENTS} frame {i}") for e in events]
            except ValueError as exc:
                raise SceneBagError(str(exc)) from exc
        return SceneBagFrame(i, ns, rad, boxes, ign, events)

    def __iter__(self):
        return self.frames()


_MCAP_MAGIC = b"\x89MCAP0\r\n"
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
_MSG_HEAD = struct.Struct("<HIQQ")  # channel_id, sequence, log_time, publish_time


def _iter_mcap_mmap(path: Path):
    """(topic, schema name, log_time ns, data memoryview) of every message, in file order,
    from a memory-mapped MCAP file: uncompressed chunks are read without copying (rosbags
    copies each message twice: ~10 ms per 4.6 MB frame), compressed ones are decompressed
    (zstd, lz4). Malformed records raise ``ValueError``."""
    import mmap

    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    buf = memoryview(mm)
    if bytes(buf[:8]) != _MCAP_MAGIC:
        raise ValueError(f"{path}: not an MCAP file")
    schemas: dict = {}
    channels: dict = {}

    def string(b, o):
        (n,) = _U32.unpack_from(b, o)
        if o + 4 + n > len(b):
            raise ValueError("string past the end of its record")
        return bytes(b[o + 4:o + 4 + n]).decode("utf-8"), o + 4 + n

    def records(b, o, end):
        while o < end:
            if o + 9 > end:
                raise ValueError(f"record header cut at byte {o}")
            op = b[o]
            (n,) = _U64.unpack_from(b, o + 1)
            if o + 9 + n > end:
                raise ValueError(f"record (opcode {op:#x}) of {n} bytes at byte {o} runs past the end")
            yield op, b[o + 9:o + 9 + n]
            o += 9 + n

    def handle(op, body):
        if op == 0x03:  # Schema
            (sid,) = _U16.unpack_from(body, 0)
            name, _ = string(body, 2)
            schemas[sid] = name
        elif op == 0x04:  # Channel
            cid, sid = struct.unpack_from("<HH", body, 0)
            topic, _ = string(body, 4)
            channels[cid] = (topic, schemas.get(sid, ""))
        elif op == 0x05:  # Message
            cid, _seq, log_time, _pub = _MSG_HEAD.unpack_from(body, 0)
            if cid not in channels:
                raise ValueError(f"message on unknown channel {cid}")
            topic, ty = channels[cid]
            return topic, ty, log_time, body[_MSG_HEAD.size:]
        return None

    for op, body in records(buf, 8, len(buf) - 8):
        if op == 0x0F or op == 0x02:  # DataEnd / Footer: the summary section follows
            return
        if op == 0x06:  # Chunk
            compression, o = string(body, 28)
            (n,) = _U64.unpack_from(body, o)
            inner = body[o + 8:o + 8 + n]
            if compression == "zstd":
                import zstandard

                inner = memoryview(zstandard.ZstdDecompressor().decompress(
                    bytes(inner), max_output_size=_U64.unpack_from(body, 16)[0]))
            elif compression == "lz4":
                import lz4.frame

                inner = memoryview(lz4.frame.decompress(bytes(inner)))
            elif compression:
                raise ValueError(f"unsupported chunk compression {compression!r}")
            for iop, ibody in records(inner, 0, len(inner)):
                msg = handle(iop, ibody)
                if msg is not None:
                    yield msg
        else:
            msg = handle(op, body)
            if msg is not None:
                yield msg


@dataclass
class _ImageView:
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray  # uint8 view into the serialized message


def _image_view(raw) -> Optional[_ImageView]:
    """sensor_msgs/Image from little-endian CDR without copying ``data`` (rosbags copies it:
    ~5 ms per 4.6 MB frame); ``None`` for anything unexpected (then rosbags decodes it)."""
    try:
        b = memoryview(raw).cast("B")
        if bytes(b[0:2]) != b"\x00\x01":  # CDR, little endian
            return None

        def align(o, n):
            return o + (-(o - 4)) % n  # alignment counts from the end of the 4-byte header

        o = 4 + 8  # header.stamp
        (n,) = _U32.unpack_from(b, o)
        o = align(o + 4 + n, 4)  # header.frame_id
        h, w = _U32x2.unpack_from(b, o)
        (n,) = _U32.unpack_from(b, o + 8)
        encoding = bytes(b[o + 12:o + 12 + n - 1]).decode("ascii")
        o += 12 + n
        big = b[o]
        o = align(o + 1, 4)
        step, n = _U32x2.unpack_from(b, o)
        o += 8
        if o + n != len(b):
            return None
        return _ImageView(int(h), int(w), encoding, int(big), int(step), np.frombuffer(b, np.uint8, n, o))
    except Exception:  # noqa: BLE001 - any surprise: the full decoder reports it
        return None


_U32 = struct.Struct("<I")
_U32x2 = struct.Struct("<II")


class _BufferRing:
    """``n`` float32 arrays handed out in turn (reallocated when the shape changes)."""

    def __init__(self, n: int) -> None:
        self._bufs: list = [None] * int(n)
        self._i = 0

    def next(self, shape) -> np.ndarray:
        buf = self._bufs[self._i]
        if buf is None or buf.shape != tuple(shape):
            buf = self._bufs[self._i] = np.empty(shape, np.float32)
        self._i = (self._i + 1) % len(self._bufs)
        return buf


def _bad_event(path, e):
    raise SceneBagError(f"{path}: topic {TOPIC_INFO}: event {e!r} is not an object")


def read_scene_bag(path, allow_truncated: bool = False) -> SceneBag:
    return SceneBag(path, allow_truncated=allow_truncated)


class _stream_reader:
    """Minimal sequential MCAP reader (records in file order) that stops at damage."""

    def __init__(self, fh):
        from mcap.stream_reader import StreamReader

        self._sr = StreamReader(fh, skip_magic=False, emit_chunks=False)

    def iter_messages(self):
        from mcap.records import Channel, Message, Schema

        schemas, channels = {}, {}
        for rec in self._sr.records:
            if isinstance(rec, Schema):
                schemas[rec.id] = rec
            elif isinstance(rec, Channel):
                channels[rec.id] = rec
            elif isinstance(rec, Message):
                ch = channels.get(rec.channel_id)
                if ch is None:
                    continue
                yield schemas.get(ch.schema_id), ch, rec
