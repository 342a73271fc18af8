"""Soak scoring without ROS: seeded schedule, detection only of what is new and named,
recovery only by fresh commands after the part returned, frames lost per fault."""
import pytest

from neural_ae_ros.imaging.frame_requirements import camera_size_problems, histogram_size_problem
from neural_ae_ros.parameters import spec_by_name, validate
from neural_ae_ros.ros.diagnostics import SkipCounter, cause_of
from neural_ae_ros.ros.soak import (Fault, FrameRecord, camera_outage_frames, fault_schedule, first_detection,
                                    missing_frames, score_recovery)


def test_schedule_is_seeded_spaced_and_uses_every_kind():
    a = fault_schedule(["kill_ae", "garbage_images", "bad_commands"], 600, seed=1)
    assert a == fault_schedule(["kill_ae", "garbage_images", "bad_commands"], 600, seed=1)
    assert a != fault_schedule(["kill_ae", "garbage_images", "bad_commands"], 600, seed=2)
    times = [t for t, _ in a]
    assert all(b - t >= 15.0 - 3.0 for t, b in zip(times, times[1:])) and times[0] >= 10.0 and times[-1] < 600 - 12
    assert {k for _, k in a} == {"kill_ae", "garbage_images", "bad_commands"}
    with pytest.raises(ValueError, match="unknown fault"):
        fault_schedule(["kill_everything"], 600, seed=0)
    with pytest.raises(ValueError, match="no room"):
        fault_schedule(["kill_ae"], 12, seed=0)


def _frames(spec):
    """spec: (t, session, index, from_command, source_index)."""
    return [FrameRecord(*row) for row in spec]


def test_recovery_needs_a_command_newer_than_the_one_frozen_in_force():
    # command from frame 46 stays in force after the kill at t=5; the node is back at t=8
    rows = [(t / 10, 0, t, True, t - 3) for t in range(0, 50)]
    rows += [(t / 10, 0, t, True, 46) for t in range(50, 90)]
    rows += [(t / 10, 0, t, True, t - 3) for t in range(90, 100)]
    f = Fault("kill_histogram", 5.0, 5.0, restarted_t=6.0, returned_t=8.0)
    score_recovery(f, _frames(rows))
    assert f.recovered_t == pytest.approx(9.0)


def test_recovery_after_a_camera_restart_counts_the_new_session_and_not_future_commands():
    rows = [(t / 10, 0, t, True, t - 3) for t in range(0, 50)]
    # the new camera: first frames without command, then one with a command from the OLD session
    # (source 130 > frame index: not fresh), then fresh ones
    rows += [(6.0 + k / 10, 1, k, False, 0) for k in range(0, 3)]
    rows += [(6.3, 1, 3, True, 130)]
    rows += [(6.4 + k / 10, 1, 4 + k, True, 1 + k) for k in range(5)]
    frames = _frames(rows)
    f = Fault("restart_camera", 5.0, 5.0, restarted_t=5.0, returned_t=6.0)
    score_recovery(f, frames)
    assert f.recovered_t == pytest.approx(6.4)
    # 1.1 s from the last old frame to the first new one at 10 fps: 10 frames were never made
    assert camera_outage_frames(frames, f, fps=10.0) == 10


def test_missing_frames_are_found_per_session_with_their_time():
    rows = [(0.0, 0, 0, False, 0), (0.1, 0, 1, False, 0), (0.4, 0, 4, False, 0), (1.0, 1, 0, False, 0),
            (1.1, 1, 1, False, 0)]
    missing = missing_frames(_frames(rows))
    assert [(s, i) for _, s, i in missing] == [(0, 2), (0, 3)]
    assert missing[0][0] == pytest.approx(0.2)


def test_detection_ignores_what_was_said_before_and_what_does_not_name_the_fault():
    f = Fault("garbage_images", 10.0, 10.0, window_end_t=20.0)
    statuses = [(8.0, "/ae_controller", 1, "command clamped to camera limits"),
                (10.5, "/ae_controller", 1, "command clamped to camera limits"),  # background
                (10.6, "/camera_bridge", 1, "something unrelated"),
                (10.8, "/histogram_node", 1, "dropped frame: frame size 12x12 too small")]
    first_detection(f, statuses, [])
    assert f.detected_t == pytest.approx(10.8) and "/histogram_node" in f.detected_by
    g = Fault("garbage_images", 10.0, 10.0, window_end_t=20.0)
    first_detection(g, statuses[:3], [(10.2, "histogram_node", "WARN", "dropped frame: /image_raw odd size")])
    assert g.detected_t == pytest.approx(10.2) and g.detected_by.startswith("log histogram_node")
    h = Fault("kill_ae", 10.0, 10.0, window_end_t=20.0)
    first_detection(h, statuses[:3], [])
    assert h.detected_t is None  # nothing new named it: reported as not detected


def test_skip_counter_counts_frames_a_slow_consumer_never_saw():
    c = SkipCounter()
    for s in range(10):
        c.upstream(s)
    assert c.done(0) == 0
    assert c.done(3) == 2  # 1 and 2 skipped
    assert c.done(9) == 5
    assert (c.skipped, c.processed) == (7, 3)


def test_skip_counter_does_not_count_a_frame_processed_before_its_record_arrived():
    # the image callback of frame 0 ran before the exposure callback of frame 0 (same executor)
    c = SkipCounter()
    assert c.done(0) == 0
    c.upstream(0)
    c.upstream(1)
    assert c.done(1) == 0 and c.skipped == 0
    c.upstream(2)
    c.upstream(3)
    assert c.done(3) == 1  # frame 2 really skipped


def test_start_up_sizes_are_checked_against_what_the_algorithms_need():
    assert camera_size_problems(320, 200) == []
    assert any("even" in p for p in camera_size_problems(320, 201))
    assert "7x7" in histogram_size_problem(12, 12)
    assert histogram_size_problem(14, 14) is None
    height = spec_by_name("camera_bridge")["height"]
    assert "multiple of 2" in validate(height, 201) and validate(height, 200) is None


def test_cause_of_groups_the_same_problem_on_every_frame():
    a = cause_of("/image_raw (stamp 17.000000012): size 64x63, expected even")
    b = cause_of("/image_raw (stamp 18.000000300): size 64x61, expected even")
    assert a == b and a != cause_of("/image_raw (stamp 18.1): encoding 'mono16'")


def test_loop_says_when_the_camera_delivered_fewer_frames_than_asked():
    from neural_ae_ros.cli.loop import rate_shortfall_line

    assert "3.5 of the 10.0 fps" in rate_shortfall_line({"fps": 3.5, "target_fps": 10.0})
    assert rate_shortfall_line({"fps": 9.5, "target_fps": 10.0}) is None


def test_the_cameras_fallback_and_injected_bad_commands_are_not_a_recovery():
    rows = [FrameRecord(t / 10, 0, t, True, t - 3) for t in range(0, 50)]
    rows += [FrameRecord(t / 10, 0, t, True, t - 1, "camera_fallback", True) for t in range(50, 80)]
    rows += [FrameRecord(8.0, 0, 80, True, 79, "soak_bad")]
    rows += [FrameRecord(t / 10, 0, t, True, t - 3, "average") for t in range(81, 90)]
    f = Fault("kill_ae", 5.0, 5.0, restarted_t=6.0, returned_t=7.0)
    score_recovery(f, rows)
    assert f.recovered_t == pytest.approx(8.1)
