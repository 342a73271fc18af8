"""Exposure records <-> messages and the stamp join (ros/convert.py), without processes."""
import math

import pytest
from std_msgs.msg import Header

from neural_ae_ros.imaging.exposure import CameraExposureInfo, FrameExposure
from neural_ae_ros.ros.convert import (StampJoin, applied_from_msg, applied_to_msg, camera_info_from_msg,
                                       camera_info_to_msg, command_from_msg, command_to_msg)


def _header(sec=12, nsec=345):
    h = Header()
    h.stamp.sec, h.stamp.nanosec = sec, nsec
    return h


def test_applied_exposure_round_trip_keeps_every_field():
    rec = FrameExposure(0.004, 2.5, 17, 14, "gradient", True, 99, 3)
    msg = applied_to_msg(rec, _header(), 1234.5, fallback_active=True)
    assert msg.effective_exposure_s == pytest.approx(0.01) and msg.fallback_active and msg.from_command
    assert applied_from_msg(msg) == rec
    initial = FrameExposure(0.005, 1.0, 0, -1, "initial", False, 99, 1)
    msg = applied_to_msg(initial, _header(), 300.0)
    assert not msg.from_command and msg.command_source_frame_index == 0  # uint64 on the wire
    assert applied_from_msg(msg).source_frame_index == -1  # and back to "no command"


def test_command_round_trip_and_delta_ev():
    cmd = FrameExposure(0.015, 4.0, -1, 41, "average", False, 7)
    msg = command_to_msg(cmd, _header(), observed_effective_exposure_s=0.015)
    assert msg.target_frame_index == 42 and msg.session_id == 7
    assert msg.delta_ev == pytest.approx(2.0)
    assert command_from_msg(msg) == cmd


def test_camera_info_round_trip_and_bad_limits_name_the_topic():
    info = CameraExposureInfo.from_yaml(session_id=5)
    assert camera_info_from_msg(camera_info_to_msg(info, _header())) == info
    msg = camera_info_to_msg(info, _header())
    msg.min_analog_gain = 20.0  # above the maximum
    with pytest.raises(ValueError, match="cam/info.*session 5"):
        camera_info_from_msg(msg, "cam/info")


def test_stamp_join_completes_a_frame_once_every_part_arrived_in_any_order():
    join = StampJoin({"exposure", "histograms"}, capacity=4)
    assert join.add(100, "histograms", "h100") is None
    assert join.add(200, "exposure", "e200") is None
    assert join.add(100, "exposure", "e100") == {"exposure": "e100", "histograms": "h100"}
    assert len(join) == 1  # frame 200 still waits
    join.set_required({"exposure", "histograms", "raw"})
    assert join.add(200, "histograms", "h200") is None
    assert join.add(200, "raw", "r200") == {"exposure": "e200", "histograms": "h200", "raw": "r200"}


def test_stamp_join_is_bounded_and_says_what_it_evicted():
    join = StampJoin({"exposure", "histograms"}, capacity=3)
    for stamp in (10, 20, 30, 40, 50):
        join.add(stamp, "exposure", stamp)
    assert len(join) == 3 and join.evicted == 2
    assert join.last_evicted == (20, ["exposure"])
    assert join.add(10, "histograms", "late") is None  # its partner is gone: no stale completion
    join.reset()
    assert len(join) == 0
