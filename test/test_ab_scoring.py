"""Offline scoring of A/B recordings (no ROS): hand-made bags in the ab-eval layout, written with
rosbags, scored by ``neural-ae evaluate``'s code."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_ae_ros.evaluation.ab_bags import SideBagWriter, thumbnail, typestore
from neural_ae_ros.evaluation.ab_scoring import RecordingError, evaluate_bag
from neural_ae_ros.scenes.scene_bag import DET_T, IMAGE_T, START_NS, _detections

from ab_helpers import BOXES

FRAMES = 10
RUN_NS = 1_800_000_000 * 10**9


def _header(ts, ns):
    return ts.types["std_msgs/msg/Header"](stamp=ts.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                                           frame_id="camera_optical_frame")


def _applied(ts, i, ns, exposure_time_s=0.005, level=1500.0):
    return ts.types["neural_ae_ros/msg/AppliedExposure"](
        header=_header(ts, ns), frame_index=i, exposure_time_s=exposure_time_s, analog_gain=1.0,
        effective_exposure_s=exposure_time_s, from_command=i > 2, command_source_frame_index=max(0, i - 3),
        command_method="average", clamped=False, session_id=7, command_age_frames=3, fallback_active=False,
        mean_level_dn=level)


def _camera_info(ts, ns):
    return ts.types["neural_ae_ros/msg/CameraExposureInfo"](
        header=_header(ts, ns), session_id=7, min_exposure_time_s=1e-5, max_exposure_time_s=0.015, min_analog_gain=1.0,
        max_analog_gain=15.85, t_max_s=0.015, black_level_dn=64.0, white_level_dn=4095, saturation_level_dn=4095.0,
        actuation_latency_frames=2, frame_rate_hz=30.0)


def make_side_bag(path, detected, captured=None, det_boxes=BOXES, ns="a"):
    """A side bag of FRAMES labelled frames; ``captured``: frames with an exposure record (all by
    default), ``detected``: frames with detections (``det_boxes``, score 0.9)."""
    ts = typestore()
    captured = range(FRAMES) if captured is None else captured
    labels = [(START_NS + i * 33_333_333, BOXES, []) for i in range(FRAMES)]
    scene_info = dict(frames=FRAMES, fps=30.0, width=128, height=96, classes=["bike", "bus_truck", "car_van", "person",
                                                                              "traffic_light", "traffic_sign"],
                      events=[dict(frame=5, kind="tunnel_entry", factor=0.05, time_s=None)])
    ab_info = {"frames": FRAMES, "sides": {ns: {"method": "average", "frames": FRAMES, "target_level_dn": 2079.5}}}
    w = SideBagWriter(path, ns, ab_info, scene_info, labels)
    w.write("camera_info", RUN_NS, ts.serialize_cdr(_camera_info(ts, RUN_NS), "neural_ae_ros/msg/CameraExposureInfo"))
    for i in captured:
        ns_i = RUN_NS + (i + 1) * 50_000_000
        w.write("exposure", ns_i, ts.serialize_cdr(_applied(ts, i, ns_i), "neural_ae_ros/msg/AppliedExposure"))
        img = ts.types[IMAGE_T](header=_header(ts, ns_i), height=2, width=2, encoding="rgb8", is_bigendian=0, step=6,
                                data=np.zeros(12, np.uint8))
        w.write("thumbnail", ns_i, ts.serialize_cdr(img, IMAGE_T))
        if i in detected:
            det = _detections(ts, ns_i, det_boxes, 0.9)
            w.write("detections", ns_i, ts.serialize_cdr(det, DET_T))
    w.close({"node_deaths": [], "end_reason": {ns: "complete"}, "rgb_size": {ns: [128, 96]}})
    return path


def test_perfect_detections_score_ap_one_and_every_frame_is_scored(tmp_path):
    s = evaluate_bag(make_side_bag(tmp_path / "a", detected=range(FRAMES)))["a"]
    assert s["frames_scored"] == FRAMES and s["frames_missing"] == 0 and s["missing"] == []
    assert s["map"] == pytest.approx(1.0)
    assert s["ap"]["car_van"] == pytest.approx(1.0) and s["ap"]["bike"] is None  # no bike labelled: n/a, not 0
    assert [e["name"] for e in s["step_events"]] == ["tunnel_entry"]


def test_missing_frames_are_reported_with_their_reason_never_skipped(tmp_path):
    # frames 0-5 detected; 6-7 captured without detections (a dead detector); 8-9 never captured
    s = evaluate_bag(make_side_bag(tmp_path / "a", detected=range(6), captured=range(8)))["a"]
    assert s["frames_scored"] == 6 and s["frames_missing"] == 4
    assert [(g["first"], g["last"]) for g in s["missing"]] == [(6, 7), (8, 9)]
    assert "no detections" in s["missing"][0]["reason"] and "never captured" in s["missing"][1]["reason"]
    assert s["frames_scored"] + s["frames_missing"] == FRAMES


def test_shifted_boxes_lower_ap(tmp_path):
    # the car box moved by half its width: IoU 1/3 < 0.5, a miss; the sign stays exact
    shifted = [dict(BOXES[0], box=[40.0, 40.0, 80.0, 70.0]), BOXES[1]]
    s = evaluate_bag(make_side_bag(tmp_path / "a", detected=range(FRAMES), det_boxes=shifted))["a"]
    assert s["ap"]["car_van"] == pytest.approx(0.0) and s["ap"]["traffic_sign"] == pytest.approx(1.0)
    assert s["map"] == pytest.approx(0.5)


def test_no_frame_scored_gives_no_map_and_says_why(tmp_path):
    s = evaluate_bag(make_side_bag(tmp_path / "a", detected=()))["a"]
    assert s["map"] is None and "no frame scored" in s["map_reason"] and s["frames_missing"] == FRAMES


def test_bag_without_ground_truth_is_refused_by_name(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    with Writer(tmp_path / "x", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c = w.add_connection("/a/detections", DET_T, typestore=typestore())
        w.write(c, RUN_NS, typestore().serialize_cdr(_detections(typestore(), RUN_NS, BOXES, 0.9), DET_T))
    with pytest.raises(RecordingError, match=r"x: no ground truth: topic /scene/boxes missing"):
        evaluate_bag(tmp_path / "x")


def test_evaluate_command_prints_each_side_and_writes_json(tmp_path):
    bag = make_side_bag(tmp_path / "a", detected=range(7))
    out = tmp_path / "scores.json"
    p = subprocess.run([str(Path(sys.executable).parent / "neural-ae"), "evaluate", "--bag", str(bag), "--json", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "a:      average: mAP@0.5 100.0, 7 frames scored MISSING 3" in p.stdout
    assert json.loads(out.read_text())["a"]["frames_missing"] == 3


def test_thumbnail_is_a_block_mean():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    th = thumbnail(img, 3)
    assert th.shape == (2, 3, 3)
    assert th[0, 0, 0] == round(img[:2, :2, 0].mean())
