"""The A/B run's recordings: rosbag2 (MCAP) bags of one pipeline's outputs beside the scene's labels.

Written by ``neural-ae ab-eval`` (one bag per side, :mod:`neural_ae_ros.ros.ab_run`), read by
``neural-ae evaluate`` (:mod:`.ab_scoring`). No ROS import: ``rosbags`` writes and reads them,
and every schema (ours included) is embedded, so any rosbag2 MCAP reader with ROS 2 ``ros2msg``
support opens them (``ros2 bag``, Foxglove, ``mcap`` + ``mcap-ros2-support``).

Topic layout (``<ns>``: the side's namespace, ``a`` or ``b``):

==============================  ==================================  ==========================================
topic                           type                                content
==============================  ==================================  ==========================================
``/scene/info``                 ``std_msgs/msg/String``             the scene recording's ``/scene/info`` (JSON)
``/scene/boxes``                ``vision_msgs/msg/Detection2DArray`` labels of recording frame i (i-th message by
                                                                    header stamp; the recording's stamps)
``/scene/ignored``              ``vision_msgs/msg/Detection2DArray`` don't-care objects of frame i
``/ab/info``                    ``std_msgs/msg/String``             JSON: side, method, namespace, frames, pace,
                                                                    AE parameters, level target (DN)
``/ab/run_end``                 ``std_msgs/msg/String``             JSON, last: end reason, node deaths, rgb size
``/<ns>/camera_exposure_info``  ``neural_ae_ros/msg/CameraExposureInfo``  the camera's limits and levels
``/<ns>/exposure``              ``neural_ae_ros/msg/AppliedExposure``  per captured frame: frame index (= the
                                                                    recording's frame), exposure, mean level
``/<ns>/detections``            ``vision_msgs/msg/Detection2DArray`` the detector's output, the frame's stamp
``/<ns>/image_thumbnail``       ``sensor_msgs/msg/Image``           rgb8, the ISP's image shrunk by block mean
==============================  ==================================  ==========================================

A frame of the run is joined to its recording frame by the AppliedExposure with the same
header stamp (``frame_index``); log times are the stamps of the run (labels: run start + i ns).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TOPIC_AB_INFO = "/ab/info"
TOPIC_AB_END = "/ab/run_end"
LABEL_TOPICS = ("/scene/info", "/scene/boxes", "/scene/ignored")
APPLIED_T = "neural_ae_ros/msg/AppliedExposure"
CAMERA_INFO_T = "neural_ae_ros/msg/CameraExposureInfo"
#: our messages recorded in the bags (names of msg/*.msg)
OWN_MESSAGES = ("AppliedExposure", "CameraExposureInfo")


def side_topics(namespace: str) -> dict:
    ns = "/" + namespace.strip("/")
    return {"camera_info": f"{ns}/camera_exposure_info", "exposure": f"{ns}/exposure",
            "detections": f"{ns}/detections", "thumbnail": f"{ns}/image_thumbnail",
            "image_rgb": f"{ns}/image_rgb"}


def _own_msg_text(name: str) -> str:
    """msg/<name>.msg from the source tree, else the copy the interface build installed."""
    here = Path(__file__).resolve().parent.parent.parent / "msg" / f"{name}.msg"
    for candidate in (here, Path(sys.prefix) / "share" / "neural_ae_ros" / "msg" / f"{name}.msg"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(f"definition of neural_ae_ros/msg/{name} not found (looked in {here.parent} and "
                            f"{Path(sys.prefix) / 'share' / 'neural_ae_ros' / 'msg'})")


_TYPESTORE = None


def typestore():
    """The scene bags' typestore (ROS 2 Kilted + vision_msgs) with our recorded messages added."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import get_types_from_msg

        from neural_ae_ros.scenes.scene_bag import typestore as scene_typestore

        ts = scene_typestore()
        types = {}
        for name in OWN_MESSAGES:
            if f"neural_ae_ros/msg/{name}" not in ts.types:
                types.update(get_types_from_msg(_own_msg_text(name), f"neural_ae_ros/msg/{name}"))
        if types:
            ts.register(types)
        _TYPESTORE = ts
    return _TYPESTORE


def thumbnail(rgb: np.ndarray, max_width: int) -> np.ndarray:
    """(H, W, 3) uint8 -> block-mean shrunk copy at most ``max_width`` wide (integer factor)."""
    h, w = rgb.shape[:2]
    k = max(1, -(-w // max_width))
    if k == 1:
        return np.ascontiguousarray(rgb)
    hh, ww = h // k * k, w // k * k
    blocks = rgb[:hh, :ww].reshape(hh // k, k, ww // k, k, 3).mean(axis=(1, 3))
    return np.round(blocks).astype(np.uint8)


class SideBagWriter:
    """One side's recording (a new rosbag2 MCAP directory ``path``): the labels first, then the
    run's messages as serialized CDR (``write``), ``/ab/run_end`` on ``close``."""

    def __init__(self, path, namespace: str, ab_info: dict, scene_info: dict, labels) -> None:
        import json

        from rosbags.rosbag2 import StoragePlugin, Writer

        from neural_ae_ros.scenes.scene_bag import DET_T, IMAGE_T, STRING_T, _detections

        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: already exists (rosbag2 writes a new directory)")
        self.ts = ts = typestore()
        self._w = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._w.open()
        t = side_topics(namespace)
        add = self._w.add_connection
        self._c = {"/scene/info": add("/scene/info", STRING_T, typestore=ts),
                   "/scene/boxes": add("/scene/boxes", DET_T, typestore=ts),
                   "/scene/ignored": add("/scene/ignored", DET_T, typestore=ts),
                   TOPIC_AB_INFO: add(TOPIC_AB_INFO, STRING_T, typestore=ts),
                   TOPIC_AB_END: add(TOPIC_AB_END, STRING_T, typestore=ts),
                   "camera_info": add(t["camera_info"], CAMERA_INFO_T, typestore=ts),
                   "exposure": add(t["exposure"], APPLIED_T, typestore=ts),
                   "detections": add(t["detections"], DET_T, typestore=ts),
                   "thumbnail": add(t["thumbnail"], IMAGE_T, typestore=ts)}
        self._string_t = STRING_T
        import time

        self.start_ns = time.time_ns()
        string = ts.types[STRING_T]
        self._write_msg("/scene/info", self.start_ns, string(data=json.dumps(scene_info)), STRING_T)
        self._write_msg(TOPIC_AB_INFO, self.start_ns, string(data=json.dumps(ab_info)), STRING_T)
        for i, (stamp_ns, boxes, ignored) in enumerate(labels):
            self._write_msg("/scene/boxes", self.start_ns + i, _detections(ts, stamp_ns, boxes, 1.0), DET_T)
            self._write_msg("/scene/ignored", self.start_ns + i, _detections(ts, stamp_ns, ignored, 0.0), DET_T)
        self.last_ns = self.start_ns + len(labels)

    def _write_msg(self, key, ns, msg, msgtype) -> None:
        self._w.write(self._c[key], ns, self.ts.serialize_cdr(msg, msgtype))

    def write(self, key: str, stamp_ns: int, cdr: bytes) -> None:
        """A serialized message (rclpy ``serialize_message``) on the side's topic ``key``
        (``camera_info``, ``exposure``, ``detections``, ``thumbnail``)."""
        self.last_ns = max(self.last_ns, int(stamp_ns))
        self._w.write(self._c[key], int(stamp_ns), cdr)

    def close(self, run_end: dict) -> None:
        import json

        if self._w is None:
            return
        self._write_msg(TOPIC_AB_END, self.last_ns + 1, self.ts.types[self._string_t](data=json.dumps(run_end)),
                        self._string_t)
        self._w.close()
        self._w = None
