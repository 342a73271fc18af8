"""The closed loop across processes (real rclpy over DDS): commands computed on frame t land on
frame t + 1 + latency, and the loop moves the exposure toward the target."""
import math
import os

import pytest

from neural_ae_ros.ae.gradient import DEFAULT_GAMMAS
from neural_ae_ros.parameters import node_defaults
from neural_ae_ros.ros.loop import run_loop


@pytest.mark.parametrize("latency", [0, 3])
def test_commands_land_on_frame_t_plus_1_plus_latency(latency, tmp_path):
    environ = dict(os.environ)
    # a generous lockstep wait: the claim is where commands land, not how fast the first one is made
    # (the controller's first decision waited out the 1 s default once on a busy start-up)
    r = run_loop(method="average", frames=50, latency=latency, width=160, height=100, drive="step_test",
                 log_dir=tmp_path, progress=False, extra_ae_params={"target_level_fraction": 0.6},
                 lockstep_timeout_s=5.0)
    assert dict(os.environ) == environ  # the caller's environment is not changed
    # scored with what the run used: the camera's announced facts and this run's AE parameters
    assert r["camera"]["actuation_latency_frames"] == latency and r["camera"]["session_id"] > 0
    assert r["ae_parameters"]["target_level_fraction"] == 0.6
    assert r["step_events"] == [] and r["oscillation"]["frames_scored"] == 50 - 1 - 30
    assert r["frames_published"] == 50 and r["frames_lost"] == 0
    assert r["command_to_frame_lag"] == [1 + latency]
    # every frame after the first 1 + latency frames runs on a command from an earlier frame
    assert r["frames_with_command"] == 50 - (1 + latency)
    trace = r["exposure_trace"]
    for row in trace[1 + latency:]:
        assert row["from_command"] and row["command_source_frame_index"] == row["index"] - 1 - latency
    # the average AE raises the initially low level toward its target
    assert trace[-1]["mean_raw_level_dn"] > trace[0]["mean_raw_level_dn"] * 1.2
    # the camera started because the pipeline was connected, not because its wait timed out
    assert "starting before all expected subscribers connected" not in (tmp_path / "camera_bridge.log").read_text()


def test_gradient_method_runs_in_the_loop(tmp_path):
    r = run_loop(method="gradient", frames=30, latency=1, width=160, height=100, drive="step_test",
                 log_dir=tmp_path, progress=False)
    assert r["frames_published"] == 30
    assert r["command_to_frame_lag"] == [2]
    # Shim et al.'s update E_next = E * (1 + alpha Kp (1 - gamma_hat)) with gamma_hat within the
    # anchors [1/1.9, 1.9]: every commanded exposure is its source frame's times a bounded factor
    kp = node_defaults("ae_controller")["gradient_kp"]
    lo, hi = 1 + 0.5 * kp * (1 - max(DEFAULT_GAMMAS)), 1 + kp * (1 - min(DEFAULT_GAMMAS))
    trace = {row["index"]: row for row in r["exposure_trace"]}
    effective = {i: row["exposure_time_s"] * row["gain"] for i, row in trace.items()}
    steps = [effective[i] / effective[row["command_source_frame_index"]]
             for i, row in trace.items() if row["from_command"]]
    assert len(steps) == 28 and all(lo - 1e-9 <= u <= hi + 1e-9 for u in steps), (lo, hi, steps)
    assert abs(math.log(effective[29] / effective[0])) > 0.05, "the gradient AE never moved the exposure"


def test_loop_replays_a_scene_recording(tmp_path):
    """The camera bridge's source can be a scene bag: every recorded frame is captured once,
    in order, under the closed loop, and the run ends with the recording: with no frame count
    asked, at the last frame the bag holds, even where its /scene/info announced more (a
    recording stopped early), instead of waiting for the run's time limit."""
    from neural_ae_ros.scenes.drives import DriveSource
    from neural_ae_ros.scenes.scene_bag import SceneBagWriter

    bag = tmp_path / "scene_bag"
    src = DriveSource("tunnel", 160, 96, seed=5, fps=30.0, num_frames=24)
    with SceneBagWriter(bag, 160, 96, 30.0, dict(frames=40, drive="tunnel",
                                                 events=[e.to_dict() for e in src.events])) as w:
        for i in range(24):
            fr = src.render(i)
            w.write(i, fr.radiance, fr.boxes, fr.ignored, fr.events)
    r = run_loop(method="average", frames=None, latency=2, bag_path=str(bag), log_dir=tmp_path / "logs",
                 progress=False)
    assert r["incomplete"] is None and r["frames_requested"] == 24
    assert r["frames_published"] == 24 and r["frames_lost"] == 0
    assert (r["width"], r["height"]) == (160, 96)
    assert r["command_to_frame_lag"] == [3]
    assert [row["index"] for row in r["exposure_trace"]] == list(range(24))


def test_loop_on_a_recording_with_an_unreadable_frame_ends_there_instead_of_waiting(tmp_path):
    """Frame 7 of a 20-frame recording is damaged on disk (negative radiance): the camera
    reports it and its source ends; the loop stops then (the camera says so on /diagnostics)
    and reports the run incomplete with the reason, long before its time limit."""
    import time

    import numpy as np

    from neural_ae_ros.scenes.scene_bag import SceneBagWriter

    bag = tmp_path / "damaged"
    values = [1.0e5 * (1 + i) for i in range(20)]
    with SceneBagWriter(bag, 64, 48, 30.0, encoding="32FC3") as w:
        for i, v in enumerate(values):
            w.write(i, np.full((3, 48, 64), v, np.float32), [])
    mcap = next(bag.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    pattern = np.full(64, values[7], "<f4").tobytes()
    at = data.find(pattern)
    assert at > 0
    data[at:at + len(pattern)] = np.full(64, -1.0, "<f4").tobytes()
    mcap.write_bytes(bytes(data))
    t0 = time.monotonic()
    r = run_loop(method="average", frames=None, latency=1, bag_path=str(bag), log_dir=tmp_path / "logs",
                 progress=False, timeout_s=600.0)
    took = time.monotonic() - t0
    assert r["frames_published"] == 7 and [row["index"] for row in r["exposure_trace"]] == list(range(7))
    assert "the camera's source ended at frame 8" in r["incomplete"], r["incomplete"]
    assert took < 300, f"the run waited {took:.0f} s: it did not stop at the damaged frame"
    log = (tmp_path / "logs" / "camera_bridge.log").read_text()
    assert "frame 7" in log and str(bag) in log and "negative radiance" in log
