"""Scene radiance recordings: rosbag2 (MCAP) bags of HDR radiance frames with ground-truth boxes.

Written and read with ``rosbags`` (pure Python, no ROS install); the bags open in any tool that
reads rosbag2 MCAP with ROS 2 ``ros2msg`` schemas (``ros2 bag``, Foxglove, ``mcap`` +
``mcap-ros2-support``), since every schema, vision_msgs included, is embedded in the file.

Size: 12 bytes per pixel per frame uncompressed (640 x 384: 2.9 MB/frame, 88 MB/s at 30 fps);
``compress=True`` (CLI ``--compress``) writes zstd-compressed MCAP chunks.

Topic layout (one message of each per frame, all with the same ``header.stamp``; bag time =
stamp = ``START_NS + frame / fps``):

========================  =================================  =====================================
topic                     type                               content
========================  =================================  =====================================
``/scene/radiance``       ``sensor_msgs/msg/Image``          encoding ``32FC3``: float32, linear RGB,
                                                             row-major interleaved (H, W, 3), little
                                                             endian, ``step = 12 W``; unit e-/s at the
                                                             photosite (``docs/design.md``);
                                                             ``header.frame_id = "scene"``
``/scene/boxes``          ``vision_msgs/msg/Detection2DArray``  labelled objects: ``bbox.center`` =
                                                             box centre (pixels, pixel-edge coords),
                                                             ``size_x/size_y`` = width/height,
                                                             ``results[0].hypothesis.class_id`` =
                                                             class name (``car_van`` ...), score 1.0,
                                                             ``id`` = object id (instance number)
``/scene/ignored``        ``vision_msgs/msg/Detection2DArray``  heavily occluded / truncated / tiny
                                                             objects (don't-care), score 0.0
``/scene/events``         ``std_msgs/msg/String``            JSON ``{"frame": i, "events": [...]}``
                                                             each ``{"kind", "factor", "frame",
                                                             "time_s"}``; only on frames with events
``/scene/info``           ``std_msgs/msg/String``            JSON, once, first: format, drive, seed,
                                                             fps, width, height, unit, frames,
                                                             classes, all events
========================  =================================  =====================================

vision_msgs 4.x definitions come from ``msg/vision_msgs_compat/msg/*.msg`` in the source tree,
or from the copy embedded here when that directory is absent.

Bad input raises :class:`SceneBagError` naming the file and topic: a path that is not a bag,
a truncated bag (frames before the damage can still be read with ``allow_truncated=True``;
rosbags writes MCAP chunks of ~1 MiB, so what is recoverable ends at the last whole chunk),
missing topics, and radiance frames of the wrong encoding, size or dtype.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from neural_ae_ros.classes import CLASS_NAMES

from .illumination_events import IlluminationEvent

FORMAT = "neural_ae_ros.scene_bag/1"
START_NS = 1_700_000_000 * 1_000_000_000
TOPIC_RADIANCE = "/scene/radiance"
TOPIC_BOXES = "/scene/boxes"
TOPIC_IGNORED = "/scene/ignored"
TOPIC_EVENTS = "/scene/events"
TOPIC_INFO = "/scene/info"
REQUIRED_TOPICS = (TOPIC_RADIANCE, TOPIC_BOXES)
ENCODING = "32FC3"
IMAGE_T = "sensor_msgs/msg/Image"
DET_T = "vision_msgs/msg/Detection2DArray"
STRING_T = "std_msgs/msg/String"

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
    """Write scene frames to a rosbag2 MCAP bag (a directory ``path``, created; must not exist)."""

    def __init__(self, path, width: int, height: int, fps: float, info: Optional[dict] = None,
                 compress: bool = False):
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise SceneBagError(f"{self.path}: already exists (rosbag2 writes a new directory)")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        if self.fps <= 0:
            raise SceneBagError(f"{self.path}: fps must be > 0")
        self.ts = typestore()
        self._w = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if compress:  # zstd MCAP chunks (readers need zstd support; mcap-python has it)
            self._w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._w.open()
        ts = self.ts
        self._c = {
            TOPIC_INFO: self._w.add_connection(TOPIC_INFO, STRING_T, typestore=ts),
            TOPIC_RADIANCE: self._w.add_connection(TOPIC_RADIANCE, IMAGE_T, typestore=ts),
            TOPIC_BOXES: self._w.add_connection(TOPIC_BOXES, DET_T, typestore=ts),
            TOPIC_IGNORED: self._w.add_connection(TOPIC_IGNORED, DET_T, typestore=ts),
            TOPIC_EVENTS: self._w.add_connection(TOPIC_EVENTS, STRING_T, typestore=ts),
        }
        self.info = dict(format=FORMAT, width=self.width, height=self.height, fps=self.fps, encoding=ENCODING,
                         unit="e-/s (photo-electrons per second at the photosite), linear RGB", **(info or {}))
        self._write(TOPIC_INFO, START_NS, ts.types[STRING_T](data=json.dumps(self.info, default=_jd)), STRING_T)
        self.count = 0

    def _write(self, topic, ns, msg, msgtype):
        self._w.write(self._c[topic], ns, self.ts.serialize_cdr(msg, msgtype))

    def stamp_ns(self, index: int) -> int:
        return START_NS + int(round(index * 1e9 / self.fps))

    def write(self, index: int, radiance_e_per_s: np.ndarray, boxes: list, ignored: list = (), events: list = ()) -> None:
        rad = np.asarray(radiance_e_per_s)
        if rad.shape != (3, self.height, self.width):
            raise SceneBagError(f"{self.path}: {TOPIC_RADIANCE} frame {index}: shape {rad.shape}, expected "
                                f"(3, {self.height}, {self.width})")
        if rad.dtype.kind != "f" or not np.isfinite(rad).all():
            raise SceneBagError(f"{self.path}: {TOPIC_RADIANCE} frame {index}: need finite float radiance")
        ns = self.stamp_ns(index)
        data = np.ascontiguousarray(np.moveaxis(rad, 0, -1), dtype="<f4").reshape(-1).view(np.uint8)
        img = self.ts.types[IMAGE_T](header=_header(self.ts, ns), height=self.height, width=self.width,
                                     encoding=ENCODING, is_bigendian=0, step=12 * self.width, data=data)
        self._write(TOPIC_RADIANCE, ns, img, IMAGE_T)
        self._write(TOPIC_BOXES, ns, _detections(self.ts, ns, boxes, 1.0), DET_T)
        self._write(TOPIC_IGNORED, ns, _detections(self.ts, ns, ignored, 0.0), DET_T)
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


def _jd(o):
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(type(o))


def record_drive(drive: str, frames: int, seed: int, out, width: int = 640, height: int = 384, fps: float = 30.0,
                 progress: bool = True, panorama: Optional[str] = None, compress: bool = False) -> Path:
    """Render ``frames`` frames of a :class:`scenes.drives.DriveSource` into a scene bag at ``out``."""
    from neural_ae_ros.scenes.drives import DriveSource

    src = DriveSource(drive, width, height, seed=seed, fps=fps, num_frames=max(frames, 2), panorama=panorama)
    info = dict(drive=drive, seed=int(seed), frames=int(frames), classes=list(CLASS_NAMES),
                events=[e.to_dict() for e in src.events], meta=src.stage.meta)
    it = range(frames)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"record {drive}", unit="frame")
    with SceneBagWriter(out, width, height, fps, info, compress=compress) as w:
        for i in it:
            fr = src.render(i)
            w.write(i, fr.radiance, fr.boxes, fr.ignored, fr.events)
    return Path(out)


# --------------------------------------------------------------------------------- reading
@dataclass
class SceneBagFrame:
    index: int
    stamp_ns: int
    radiance: np.ndarray  # (3, H, W) float32 e-/s
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
            raise SceneBagError(f"{self.path}: missing topic(s) {missing} (has {sorted(self.topics)})")
        for t, ty in ((TOPIC_RADIANCE, IMAGE_T), (TOPIC_BOXES, DET_T)):
            if self.topics[t] != ty:
                raise SceneBagError(f"{self.path}: topic {t} has type {self.topics[t]}, expected {ty}")
        self.info = self._read_info()

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
                # touch the end of the file: truncated MCAP files fail here or while iterating
                _ = r.message_count
            self._mode = "rosbags"
            return topics
        except Exception as exc:  # noqa: BLE001 - rosbags raises several types
            mc = self._mcap_file()
            if mc is None:
                raise SceneBagError(f"{self.path}: not a readable rosbag2 bag ({exc})") from exc
            recs, err = self._read_stream(mc)
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
        return sum(1 for v in stamps.values() if all(t in v for t in REQUIRED_TOPICS))

    def _read_stream(self, mc: Path):
        """Sequential MCAP read (no summary needed): records up to the first damage."""
        recs = []
        err = None
        try:
            with open(mc, "rb") as fh:
                reader = _stream_reader(fh)
                for schema, channel, message in reader.iter_messages():
                    ty = schema.name if schema is not None else ""
                    recs.append((channel.topic, ty, message.log_time, bytes(message.data)))
        except Exception as exc:  # noqa: BLE001
            err = f"{type(exc).__name__}: {exc}"
        return recs, err

    def _messages(self) -> Iterator[tuple]:
        """(topic, msgtype, ns, raw) in log order."""
        if self._records is not None:
            yield from self._records
            return
        from rosbags.rosbag2 import Reader

        try:
            with Reader(self.path) as r:
                for conn, ns, raw in r.messages():
                    yield conn.topic, conn.msgtype, ns, raw
        except SceneBagError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SceneBagError(f"{self.path}: error while reading messages ({type(exc).__name__}: {exc})") from exc

    def _read_info(self) -> dict:
        for topic, ty, ns, raw in self._messages():
            if topic == TOPIC_INFO:
                try:
                    return json.loads(self.ts.deserialize_cdr(raw, STRING_T).data)
                except Exception as exc:  # noqa: BLE001
                    raise SceneBagError(f"{self.path}: topic {TOPIC_INFO}: bad JSON ({exc})") from exc
        return {}

    def _radiance(self, raw, index) -> np.ndarray:
        try:
            m = self.ts.deserialize_cdr(raw, IMAGE_T)
        except Exception as exc:  # noqa: BLE001
            raise SceneBagError(f"{self.path}: topic {TOPIC_RADIANCE} frame {index}: undecodable Image ({exc})") from exc
        where = f"{self.path}: topic {TOPIC_RADIANCE} frame {index}"
        if m.encoding != ENCODING:
            raise SceneBagError(f"{where}: encoding '{m.encoding}', expected '{ENCODING}' (float32 RGB e-/s)")
        if m.is_bigendian:
            raise SceneBagError(f"{where}: big-endian data not supported")
        h, w = int(m.height), int(m.width)
        if h <= 0 or w <= 0:
            raise SceneBagError(f"{where}: empty image {w}x{h}")
        if m.step != 12 * w:
            raise SceneBagError(f"{where}: step {m.step}, expected {12 * w} for {w} px of 32FC3")
        data = np.asarray(m.data, dtype=np.uint8)
        if data.size != 12 * w * h:
            raise SceneBagError(f"{where}: {data.size} bytes, expected {12 * w * h} for {w}x{h} 32FC3")
        exp_w, exp_h = self.info.get("width"), self.info.get("height")
        if exp_w is not None and (w, h) != (exp_w, exp_h):
            raise SceneBagError(f"{where}: size {w}x{h} differs from the bag's {exp_w}x{exp_h}")
        rad = np.ascontiguousarray(np.moveaxis(data.view("<f4").reshape(h, w, 3), -1, 0), dtype=np.float32)
        if not np.isfinite(rad).all():
            raise SceneBagError(f"{where}: non-finite radiance values")
        return rad

    def frames(self) -> Iterator[SceneBagFrame]:
        """Frames in stamp order, streamed: messages come in log order and all topics of a frame
        share its stamp, so a frame is complete when the next stamp starts (one frame in memory)."""
        fps = float(self.info.get("fps", 0) or 0)
        count = 0

        def index_of(ns):
            return int(round((ns - START_NS) * fps / 1e9)) if fps > 0 else count

        group: dict = {}
        group_ns = None
        for topic, ty, ns, raw in self._messages():
            if topic not in (TOPIC_RADIANCE, TOPIC_BOXES, TOPIC_IGNORED, TOPIC_EVENTS):
                continue
            if group_ns is not None and ns != group_ns:
                frame = self._frame(group_ns, group, index_of(group_ns), last=False)
                if frame is not None:
                    count += 1
                    yield frame
                group = {}
            group_ns = ns
            group[topic] = raw
        if group_ns is not None:
            frame = self._frame(group_ns, group, index_of(group_ns), last=True)
            if frame is not None:
                yield frame

    def _frame(self, ns: int, p: dict, i: int, last: bool) -> Optional[SceneBagFrame]:
        """Decode the messages of one stamp; None for the cut-off last frame of a truncated bag."""
        if TOPIC_RADIANCE not in p or TOPIC_BOXES not in p:
            miss = [t for t in REQUIRED_TOPICS if t not in p]
            if last and self._records is not None and self.allow_truncated:
                return None  # incomplete last frame of a truncated bag
            raise SceneBagError(f"{self.path}: frame {i} (stamp {ns}) lacks topic(s) {miss}")
        rad = self._radiance(p[TOPIC_RADIANCE], i)
        try:
            boxes = _boxes_from_msg(self.ts.deserialize_cdr(p[TOPIC_BOXES], DET_T))
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
