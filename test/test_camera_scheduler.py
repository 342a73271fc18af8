"""The camera's command scheduler (no ROS): latency, late, stale, ahead, bounded, sessions."""
import pytest

from neural_ae_ros.imaging.camera import ExposureScheduler
from neural_ae_ros.imaging.exposure import CameraLimits, FrameExposure

LIM = CameraLimits(1e-5, 0.015, 1.0, 15.85)


def _sched(latency=2, session=7, max_pending=16):
    return ExposureScheduler(LIM, latency, 0.005, 1.0, session_id=session, max_pending=max_pending)


def _cmd(src, t=0.002, k=1.0, session=7):
    return FrameExposure(t, k, -1, src, "average", False, session)


def _run_to(s, frame):
    out = None
    for f in range(s.next_frame_index, frame + 1):
        out = s.settings_for(f)
    return out


@pytest.mark.parametrize("latency", [0, 1, 3, 5])
def test_command_of_frame_t_lands_on_t_plus_1_plus_latency(latency):
    s = _sched(latency)
    _run_to(s, 4)
    problems, refusal = s.submit(_cmd(4, t=0.003))
    assert refusal is None and not problems
    for f in range(5, 5 + latency):
        assert s.settings_for(f).exposure_time_s == 0.005  # still the initial settings
    landed = s.settings_for(5 + latency)
    assert landed.exposure_time_s == 0.003 and landed.source_frame_index == 4 and landed.frame_index == 5 + latency
    assert landed.command_age_frames == 1 + latency and s.late_commands == 0


def test_late_command_lands_on_the_next_frame_and_is_counted():
    s = _sched(1)
    _run_to(s, 6)  # the command from frame 2 was due on frame 4
    _, refusal = s.submit(_cmd(2, t=0.004))
    assert refusal is None
    assert s.settings_for(7).exposure_time_s == 0.004 and s.late_commands == 1


def test_stale_command_older_than_the_one_in_force_is_refused():
    s = _sched(0)
    _run_to(s, 5)
    s.submit(_cmd(5, t=0.004))
    assert s.settings_for(6).source_frame_index == 5
    _, refusal = s.submit(_cmd(3, t=0.001))
    assert refusal.cause == "stale" and "older than the one in force" in refusal.message
    assert s.settings_for(7).exposure_time_s == 0.004 and s.refused["stale"] == 1


def test_command_ahead_of_the_camera_is_refused_and_cannot_disable_lockstep():
    s = _sched(2)
    _run_to(s, 10)
    for src in (11, 41, 10**6):
        _, refusal = s.submit(_cmd(src))
        assert refusal.cause == "ahead" and f"frame {src}" in refusal.message
    assert s.refused["ahead"] == 3 and not s.pending
    # the lockstep wait still expects the command from frame 8 for frame 11
    assert s.command_expected(11)


def test_other_session_is_refused():
    s = _sched(session=7)
    _run_to(s, 3)
    _, refusal = s.submit(_cmd(1, session=8))
    assert refusal.cause == "session" and "session 8" in refusal.message


def test_pending_list_is_bounded():
    s = _sched(5, max_pending=4)
    _run_to(s, 20)
    for src in range(15, 21):
        s.submit(_cmd(src, t=0.001 + src * 1e-4))
    assert len(s.pending) == 4 and s.dropped_pending == 2
    assert [c.source_frame_index for c in s.pending] == [17, 18, 19, 20]


def test_bad_values_are_sanitised_not_dropped():
    s = _sched(0)
    _run_to(s, 2)
    problems, refusal = s.submit(_cmd(2, t=float("nan"), k=100.0))
    assert refusal is None and any("nan" in p for p in problems) and any("above the maximum" in p for p in problems)
    applied = s.settings_for(3)
    assert applied.exposure_time_s == 0.005 and applied.analog_gain == 15.85 and applied.clamped


def test_age_of_the_command_in_force_grows_without_commands():
    s = _sched(2)
    _run_to(s, 3)
    s.submit(_cmd(3))
    ages = [s.settings_for(f).command_age_frames for f in range(4, 12)]
    assert ages == list(range(1, 9))


def test_session_zero_is_unbound_and_fallback_commands_do_not_feed_the_watchdog():
    s = _sched(0)
    _run_to(s, 3)
    _, refusal = s.submit(_cmd(3, session=0))
    assert refusal is None and s.settings_for(4).session_id == 7
    s.submit(_cmd(4), from_controller=False)  # the camera's own fallback AE
    applied = s.settings_for(5)
    assert applied.source_frame_index == 4 and applied.command_age_frames == 2  # age from controller frame 3
