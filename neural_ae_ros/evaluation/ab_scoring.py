"""Score a recording of a perception pipeline offline: detections against the scene's labels
(AP at IoU 0.5 per class, paper 000 Section 6.1, :mod:`.detection_metrics`) and the exposure
loop after the scene's illumination events (:mod:`.loop_scores`). No ROS import.

Reads any rosbag2 bag with ``/scene/boxes`` (ground truth, frame i = i-th message by stamp) and,
per namespace ``<ns>``, ``<ns>/detections`` and ``<ns>/exposure`` (AppliedExposure: joins a
detection's stamp to its recording frame). Layout: :mod:`.ab_bags`. Every frame of the recording
is either scored or listed as missing with the reason; a side with no frame scored has
``map`` None and says why (never 0.0).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from neural_ae_ros.classes import CLASS_NAMES

from .ab_bags import TOPIC_AB_END, TOPIC_AB_INFO, side_topics, typestore
from .detection_metrics import evaluate_detections
from .loop_scores import TraceRow, oscillation, step_events


class RecordingError(ValueError):
    """A recording cannot be scored; the message names the bag and topic."""


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _boxes(msg, where: str, class_names, scale: float = 1.0, with_scores: bool = False):
    boxes, labels, scores = [], [], []
    for d in msg.detections:
        cx, cy, w, h = d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y
        cls = d.results[0].hypothesis.class_id if len(d.results) else ""
        if cls not in class_names:
            raise RecordingError(f"{where}: class {cls!r} is not one of {', '.join(class_names)}")
        boxes.append([(cx - w / 2) * scale, (cy - h / 2) * scale, (cx + w / 2) * scale, (cy + h / 2) * scale])
        labels.append(class_names.index(cls))
        scores.append(float(d.results[0].hypothesis.score) if len(d.results) else 0.0)
    out = {"boxes": np.asarray(boxes, np.float64).reshape(-1, 4), "labels": np.asarray(labels, np.int64)}
    if with_scores:
        out["scores"] = np.asarray(scores, np.float64)
    return out


@dataclass
class Recording:
    """What a bag holds, decoded: labels per recording frame and per-namespace outputs."""

    path: Path
    scene_info: dict
    labels: List[dict]                              # per frame: boxes, labels, ignore_boxes, ignore_labels
    ab_info: dict = field(default_factory=dict)
    run_end: dict = field(default_factory=dict)
    exposures: Dict[str, Dict[int, object]] = field(default_factory=dict)    # ns -> frame -> AppliedExposure
    detections: Dict[str, Dict[int, object]] = field(default_factory=dict)   # ns -> stamp -> Detection2DArray
    camera_info: Dict[str, object] = field(default_factory=dict)
    thumbnails: Dict[str, Dict[int, object]] = field(default_factory=dict)   # ns -> stamp -> Image

    @property
    def namespaces(self) -> List[str]:
        return sorted(self.detections)


def read_recording(path, with_thumbnails: bool = False) -> Recording:
    """Decode a recording (errors name the bag and topic)."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such bag")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds
        raise RecordingError(f"{path}: not a readable rosbag2 bag ({type(exc).__name__}: {exc})") from None
    try:
        topics = {c.topic for c in reader.connections}
        if "/scene/boxes" not in topics:
            raise RecordingError(f"{path}: no ground truth: topic /scene/boxes missing (topics: {', '.join(sorted(topics))})")
        det_topics = sorted(t for t in topics if t.endswith("/detections") and t != "/scene/boxes")
        if not det_topics:
            raise RecordingError(f"{path}: no detections: no topic ending in /detections")
        namespaces = [t[: -len("/detections")] for t in det_topics]
        scene_info, ab_info, run_end = {}, {}, {}
        gt: Dict[int, object] = {}
        ignored: Dict[int, object] = {}
        rec = Recording(path, {}, [])
        wanted = {"/scene/info", "/scene/boxes", "/scene/ignored", TOPIC_AB_INFO, TOPIC_AB_END}
        for ns in namespaces:
            t = side_topics(ns)
            wanted |= {t["exposure"], t["detections"], t["camera_info"]}
            if with_thumbnails:
                wanted.add(t["thumbnail"])
            rec.exposures[ns], rec.detections[ns], rec.thumbnails[ns] = {}, {}, {}
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, _log_ns, raw in reader.messages(connections=conns):
            topic = conn.topic
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:  # noqa: BLE001
                raise RecordingError(f"{path}: {topic}: undecodable message ({exc})") from None
            if topic == "/scene/info":
                scene_info = json.loads(msg.data)
            elif topic == TOPIC_AB_INFO:
                ab_info = json.loads(msg.data)
            elif topic == TOPIC_AB_END:
                run_end = json.loads(msg.data)
            elif topic == "/scene/boxes":
                gt[_stamp_ns(msg.header)] = msg
            elif topic == "/scene/ignored":
                ignored[_stamp_ns(msg.header)] = msg
            else:
                ns, kind = topic.rsplit("/", 1)
                if kind == "exposure":
                    rec.exposures[ns][int(msg.frame_index)] = msg
                elif kind == "detections":
                    rec.detections[ns][_stamp_ns(msg.header)] = msg
                elif kind == "camera_exposure_info":
                    rec.camera_info[ns] = msg
                elif kind == "image_thumbnail":
                    rec.thumbnails[ns][_stamp_ns(msg.header)] = msg
    finally:
        reader.close()
    class_names = list(scene_info.get("classes") or CLASS_NAMES)
    for i, stamp in enumerate(sorted(gt)):
        where = f"{path}: /scene/boxes frame {i}"
        g = _boxes(gt[stamp], where, class_names)
        ig = _boxes(ignored[stamp], f"{path}: /scene/ignored frame {i}", class_names) if stamp in ignored else None
        rec.labels.append({"boxes": g["boxes"], "labels": g["labels"],
                           "ignore_boxes": None if ig is None else ig["boxes"],
                           "ignore_labels": None if ig is None else ig["labels"]})
    rec.scene_info, rec.ab_info, rec.run_end = scene_info, ab_info, run_end
    rec.scene_info.setdefault("classes", class_names)
    return rec


def _ranges(frames: List[int]) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def frame_status(rec: Recording, ns: str, frames: int) -> Tuple[Dict[int, int], Dict[int, str]]:
    """Per recording frame: ``scored`` (frame -> detection stamp) or ``missing`` (frame -> reason)."""
    exposures, dets = rec.exposures.get(ns, {}), rec.detections.get(ns, {})
    scored, missing = {}, {}
    for i in range(frames):
        e = exposures.get(i)
        if e is None:
            missing[i] = "never captured (no exposure record from the camera)"
            continue
        stamp = _stamp_ns(e.header)
        if stamp in dets:
            scored[i] = stamp
        else:
            missing[i] = "captured, no detections recorded"
    return scored, missing


def missing_summary(missing: Dict[int, str]) -> List[dict]:
    """Missing frames as ranges with one reason each (``first``..``last`` inclusive)."""
    by_reason = defaultdict(list)
    for i, why in sorted(missing.items()):
        by_reason[why].append(i)
    out = [{"first": a, "last": b, "frames": b - a + 1, "reason": why}
           for why, idx in by_reason.items() for a, b in _ranges(idx)]
    return sorted(out, key=lambda r: r["first"])


def score_side(rec: Recording, ns: str) -> dict:
    """The summary of one namespace (see ``neural-ae ab-eval``: ``summary.json``)."""
    from neural_ae_ros.imaging.exposure import CameraLimits
    from neural_ae_ros.scenes.illumination_events import IlluminationEvent

    side_info = (rec.ab_info.get("sides") or {}).get(ns.strip("/"), {})
    frames = int(side_info.get("frames") or rec.ab_info.get("frames") or len(rec.labels))
    if frames > len(rec.labels):
        raise RecordingError(f"{rec.path}: {frames} frames asked for but only {len(rec.labels)} labelled in /scene/boxes")
    scored, missing = frame_status(rec, ns, frames)
    class_names = rec.scene_info["classes"]
    rgb_w = (rec.run_end.get("rgb_size") or {}).get(ns.strip("/"), [None])[0]
    scene_w = rec.scene_info.get("width")
    scale = float(scene_w) / float(rgb_w) if rgb_w and scene_w else 1.0
    dets, gts = [], []
    for i, stamp in sorted(scored.items()):
        dets.append(_boxes(rec.detections[ns][stamp], f"{rec.path}: {ns}/detections frame {i}", class_names,
                           scale, with_scores=True))
        gts.append(rec.labels[i])
    out = {"method": side_info.get("method", rec.ab_info.get("method")), "namespace": ns.strip("/"),
           "frames": frames, "frames_scored": len(scored), "frames_missing": len(missing),
           "missing": missing_summary(missing)}
    if dets:
        ap = evaluate_detections(dets, gts, class_names=class_names)
        d = ap.to_dict()
        out.update(map=d["map"], ap=d["ap"], num_gt=d["num_gt"], num_det=d["num_det"])
        if d["map"] is None:
            out["map_reason"] = "no labelled object in the frames scored"
    else:
        out.update(map=None, ap={n: None for n in class_names},
                   map_reason="no frame scored: no detections recorded for any frame")
    # the exposure loop
    exposures = rec.exposures.get(ns, {})
    trace = [TraceRow(i, m.exposure_time_s, m.analog_gain, float(m.mean_level_dn), bool(m.from_command),
                      int(m.command_source_frame_index)) for i, m in sorted(exposures.items()) if i < frames]
    events = [IlluminationEvent.from_dict(e, f"{rec.path}: /scene/info") for e in rec.scene_info.get("events", [])]
    events = [e for e in events if e.frame_index < frames]
    info = rec.camera_info.get(ns)
    if info is None or not trace:
        out["step_events"] = []
        out["oscillation"] = {"frames_scored": 0, "reason": "no exposure record or no camera_exposure_info recorded"}
    else:
        limits = CameraLimits(info.min_exposure_time_s, info.max_exposure_time_s, info.min_analog_gain,
                              info.max_analog_gain)
        target = side_info.get("target_level_dn")
        out["step_events"] = step_events(trace, events, target, float(info.black_level_dn), limits=limits)
        out["oscillation"] = oscillation(trace, [e.frame_index for e in events])
    out["exposure_trace"] = [{"index": r.frame_index, "effective_exposure_s": r.effective_exposure_s,
                              "mean_level_dn": r.mean_level_dn} for r in trace]
    if info is not None:
        out["camera"] = {"black_level_dn": float(info.black_level_dn), "white_level_dn": int(info.white_level_dn)}
    deaths = [d for d in rec.run_end.get("node_deaths", []) if d.get("namespace") == ns.strip("/")]
    if deaths:
        out["node_deaths"] = deaths
    if rec.run_end.get("end_reason", {}).get(ns.strip("/")):
        out["end_reason"] = rec.run_end["end_reason"][ns.strip("/")]
    return out


def evaluate_bag(path) -> Dict[str, dict]:
    """``{namespace: summary}`` for every namespace in the bag that has detections."""
    rec = read_recording(path)
    return {ns.strip("/"): score_side(rec, ns) for ns in rec.namespaces}
