"""Loop scores on hand-made traces."""
import math

import pytest

from neural_ae_ros.imaging.exposure import CameraLimits
from neural_ae_ros.evaluation.loop_scores import (TraceRow, convergence_frames, frames_to_camera_limit, level_ev_error,
                                                   oscillation, overshoot_ev, step_events)
from neural_ae_ros.scenes.illumination_events import IlluminationEvent

BLACK = 64.0
TARGET = 2079.5


def _row(i, level, e=0.005):
    return TraceRow(i, e, 1.0, level, True, i - 1)


def test_level_error_in_ev():
    assert level_ev_error(TARGET, TARGET, BLACK) == 0.0
    assert abs(level_ev_error(BLACK + (TARGET - BLACK) / 2, TARGET, BLACK) + 1.0) < 1e-12


def test_convergence_counts_frames_until_held_within_half_ev():
    levels = [TARGET] * 10 + [100.0] * 5 + [700.0, 1200.0, 1600.0, 1700.0, 1500.0, 2000.0]
    trace = [_row(i, v) for i, v in enumerate(levels)]
    # 1200 is 0.83 EV below the target, 1600 is 0.39 EV below: in band from frame 17 on
    assert convergence_frames(trace, 10, TARGET, BLACK, hold=3) == 7
    assert convergence_frames(trace, 10, TARGET, BLACK, hold=10) is None


def test_step_events_use_the_pre_event_steady_state_without_a_level_target():
    levels = [900.0] * 20 + [80.0] * 10 + [4000.0] * 3 + [1000.0] * 10
    trace = [_row(i, v) for i, v in enumerate(levels)]
    events = [IlluminationEvent(20, 1e-3, "in"), IlluminationEvent(30, 1e3, "out")]
    rec = step_events(trace, events, None, BLACK)
    assert [r["target_level_dn"] for r in rec] == [900.0, 900.0]
    assert rec[0]["frames_to_converge"] is None and rec[1]["frames_to_converge"] == 3


def test_tunnel_darker_than_the_camera_counts_frames_until_the_limit():
    lim = CameraLimits(1e-5, 0.015, 1.0, 15.85)
    pinned = lim.max_effective_exposure_s
    ramp = [0.005 * 4 ** i for i in range(1, 4)]  # 0.02, 0.08, 0.32 -> beyond the limit
    trace = ([_row(i, TARGET) for i in range(10)]
             + [_row(10 + i, 100.0, min(e, pinned)) for i, e in enumerate([0.005] + ramp)]
             + [_row(14 + i, 300.0, pinned) for i in range(10)])
    rec = step_events(trace, [IlluminationEvent(10, 1e-3, "tunnel")], TARGET, BLACK, limits=lim)
    assert rec[0]["frames_to_converge"] is None and rec[0]["limited_by_camera"] is True
    assert rec[0]["frames_to_camera_limit"] == 3  # frame 13 is the first at the limit
    assert frames_to_camera_limit(trace[:13], 10, lim) is None


def test_overshoot_is_the_excursion_past_the_target_on_the_other_side():
    # too bright after the event, then 1 EV too dark, then on target
    dark = BLACK + (TARGET - BLACK) / 2
    trace = [_row(i, v) for i, v in enumerate([TARGET] * 5 + [4095.0, 3000.0, dark, TARGET, TARGET])]
    assert overshoot_ev(trace, 5, TARGET, BLACK) == pytest.approx(1.0)
    calm = [_row(i, v) for i, v in enumerate([TARGET] * 5 + [4095.0, 3000.0, TARGET, TARGET])]
    assert overshoot_ev(calm, 5, TARGET, BLACK) == 0.0
    assert overshoot_ev(calm, 50, TARGET, BLACK) is None
    rec = step_events(trace, [IlluminationEvent(5, 1e3, "exit")], TARGET, BLACK)
    assert rec[0]["overshoot_ev"] == pytest.approx(1.0)


def test_oscillation_over_no_steady_frame_is_none_with_a_reason():
    short = [_row(i, TARGET) for i in range(20)]
    osc = oscillation(short, guard=30)
    assert osc["frames_scored"] == 0 and osc["sign_changes_per_100_frames"] is None
    assert osc["rms_step_ev"] is None and "no steady frames" in osc["reason"]
    assert oscillation([], guard=0)["frames_scored"] == 0


def test_oscillation_skips_gaps_in_the_trace():
    # a lost frame must not make one step out of two
    rows = [_row(i, TARGET, 0.005) for i in range(50)] + [_row(i, TARGET, 0.01) for i in range(51, 100)]
    osc = oscillation(rows, guard=10)
    assert osc["frames_scored"] == 39 + 48 and osc["rms_step_ev"] == 0.0


def test_oscillation_counts_sign_changes_away_from_events():
    steady = [_row(i, TARGET, 0.005 * (1.1 if i % 2 else 1.0)) for i in range(100)]
    calm = [_row(i, TARGET, 0.005) for i in range(100)]
    assert oscillation(steady, guard=10)["sign_changes_per_100_frames"] > 80
    assert oscillation(calm, guard=10)["sign_changes_per_100_frames"] == 0
    assert oscillation(calm, guard=10)["frames_scored"] == 89
    assert math.isclose(oscillation(steady, guard=10)["rms_step_ev"], math.log2(1.1), rel_tol=1e-6)
