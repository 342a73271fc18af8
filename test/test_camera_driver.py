"""Exposure through a camera driver's parameters (imaging/camera_driver.py, no ROS): units, which
command a frame's metadata shows, resending a set the driver dropped, the driver's ranges."""

import pytest

from neural_ae_ros.imaging.camera_driver import DriverUnits, SentCommands, tighten_limits
from neural_ae_ros.imaging.exposure import CameraLimits, FrameExposure

SPINNAKER = DriverUnits("us", "dB")


def test_spinnaker_units_are_microseconds_and_decibels_of_the_linear_gain():
    assert SPINNAKER.exposure_to_driver(0.005) == pytest.approx(5000.0)
    assert SPINNAKER.exposure_from_driver(5000) == pytest.approx(0.005)
    assert SPINNAKER.gain_to_driver(10.0) == pytest.approx(20.0)  # 20 log10 K, not 10 log10
    assert SPINNAKER.gain_from_driver(24.0) == pytest.approx(15.85, rel=1e-3)
    assert DriverUnits("ms", "linear").gain_to_driver(2.0) == 2.0
    with pytest.raises(ValueError, match="'min' is not one of"):
        DriverUnits("min", "dB")


def _cmd(source, t, k=1.0):
    return FrameExposure(t, k, -1, source, "average")


def test_metadata_names_the_newest_command_it_shows_not_one_sent_after_the_frame():
    sent = SentCommands(SPINNAKER)
    sent.sent(_cmd(3, 0.002), frame_index=4)
    sent.sent(_cmd(4, 0.004), frame_index=5)
    # integer microseconds and float32 dB in the metadata still match
    shown = sent.match(SPINNAKER.exposure_from_driver(2000), SPINNAKER.gain_from_driver(0.0), frame_index=7)
    assert shown.source_frame_index == 3
    assert sent.match(0.004, 1.0, frame_index=4) is None, "sent while frame 5 was next: cannot show on frame 4"
    assert sent.match(0.004, 1.0, frame_index=8).source_frame_index == 4
    assert sent.match(0.003, 1.0, frame_index=8) is None  # 1 ms off: not any command
    assert sent.match(0.004, 1.2, frame_index=8) is None  # gain 1.6 dB off


def test_a_set_the_metadata_never_shows_is_resent_after_latency_plus_grace():
    sent = SentCommands(SPINNAKER)
    sent.sent(_cmd(10, 0.008), frame_index=11)
    latency, grace = 2, 3
    for f in range(11, 11 + latency + grace + 1):
        assert sent.due_for_resend(f, latency, grace) is None, f
    again = sent.due_for_resend(11 + latency + grace + 1, latency, grace)
    assert again is not None and again.source_frame_index == 10 and sent.resent == 1
    assert sent.due_for_resend(11 + latency + grace + 2, latency, grace) is None, "its clock restarted"
    sent.match(0.008, 1.0, frame_index=30)  # now the driver shows it
    assert sent.due_for_resend(60, latency, grace) is None
    assert SentCommands(SPINNAKER).due_for_resend(100, latency, grace) is None  # nothing sent yet


def test_driver_ranges_narrow_the_camera_limits_and_disjoint_ones_are_refused():
    limits = CameraLimits(1e-5, 0.015, 1.0, 15.85)
    narrow = tighten_limits(limits, SPINNAKER, (20.0, 8000.0), (0.0, 24.0))
    assert narrow.min_exposure_time_s == pytest.approx(2e-5) and narrow.max_exposure_time_s == pytest.approx(0.008)
    assert narrow.max_analog_gain == pytest.approx(10 ** (24 / 20)) and narrow.max_analog_gain < 15.85
    assert SPINNAKER.gain_to_driver(narrow.max_analog_gain) == pytest.approx(24.0)
    assert tighten_limits(limits, SPINNAKER) == limits
    with pytest.raises(ValueError, match="do not overlap"):
        tighten_limits(limits, SPINNAKER, (20000.0, 30000.0), None)
