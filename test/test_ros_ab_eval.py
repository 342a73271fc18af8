"""``neural-ae ab-eval`` across processes (real rclpy, two five-node pipelines) on a small scene
recording: every frame scored or reported missing, bags a plain MCAP reader decodes, a node that
dies mid-run, a truncated recording."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ab_helpers import write_step_scene

FRAMES = 8
CLI = [str(Path(sys.executable).parent / "neural-ae")]


def _ab_eval(scene, out, *extra, timeout=300):
    return subprocess.Popen([*CLI, "ab-eval", "--a", "average", "--b", "gradient", "--scene-bag", str(scene),
                             "--out", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


@pytest.fixture(scope="module")
def ab_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ab")
    scene = write_step_scene(root / "scene", frames=FRAMES, step_frame=4)
    p = _ab_eval(scene, root / "out", "--pace", "lockstep")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, f"{out}\n{err}"
    return root / "out", out


def test_both_sides_score_every_frame_in_lockstep(ab_run):
    out, stdout = ab_run
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"a", "b"}
    assert summary["a"]["method"] == "average" and summary["b"]["method"] == "gradient"
    for side in summary.values():
        # the camera waits for the detections of the frame before last: no frame is dropped anywhere
        assert side["frames_scored"] == FRAMES and side["frames_missing"] == 0, side["missing"]
        assert set(side["ap"]) == {"bike", "bus_truck", "car_van", "person", "traffic_light", "traffic_sign"}
        assert side["map"] is not None and 0.0 <= side["map"] <= 1.0
        assert [e["name"] for e in side["step_events"]] == ["tunnel_entry"]
        assert "frames_scored" in side["oscillation"]
    assert "a:      average: mAP@0.5" in stdout and "b:     gradient: mAP@0.5" in stdout
    assert f"report: {out / 'report.html'}" in stdout


def test_report_is_self_contained_with_traces_table_and_moments(ab_run):
    out, _ = ab_run
    html = (out / "report.html").read_text()
    assert "src='http" not in html and "src=\"http" not in html  # readable offline
    # one trace plot + both sides' thumbnails at the event and 3 frames after (8-frame run: +0, +3)
    assert html.count("data:image/png;base64,") == 1 + 2 * 2
    assert "tunnel_entry +3" in html and "a: average" in html and "b: gradient" in html
    assert "none: every frame scored on both sides" in html


def test_recorded_bags_decode_in_a_reader_that_knows_nothing_of_the_project(ab_run):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out, _ = ab_run
    for side in ("a", "b"):
        mcap_file = next((out / "bags" / side).glob("*.mcap"))
        seen = {}
        with open(mcap_file, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for schema, channel, _message, msg in reader.iter_decoded_messages():
                seen.setdefault(channel.topic, (schema.name, []))[1].append(msg)
        assert seen[f"/{side}/image_thumbnail"][0] == "sensor_msgs/msg/Image"
        assert seen[f"/{side}/detections"][0] == "vision_msgs/msg/Detection2DArray"
        assert seen[f"/{side}/exposure"][0] == "neural_ae_ros/msg/AppliedExposure"
        thumbs = seen[f"/{side}/image_thumbnail"][1]
        assert len(thumbs) == FRAMES and thumbs[0].encoding == "rgb8" and thumbs[0].width <= 160
        exposures = seen[f"/{side}/exposure"][1]
        assert sorted(m.frame_index for m in exposures) == list(range(FRAMES))
        assert all(0 < m.exposure_time_s <= 0.015 for m in exposures)
        assert len(seen[f"/{side}/detections"][1]) == FRAMES
        assert len(seen["/scene/boxes"][1]) == FRAMES


def test_evaluate_rescores_a_recorded_bag_to_the_same_numbers(ab_run):
    from neural_ae_ros.evaluation.ab_scoring import evaluate_bag

    out, _ = ab_run
    summary = json.loads((out / "summary.json").read_text())
    again = evaluate_bag(out / "bags" / "b")["b"]
    assert again["map"] == summary["b"]["map"] and again["frames_scored"] == summary["b"]["frames_scored"]


def _node_pids(parent_pid, module, namespace):
    """pids of the children of ``parent_pid`` running ``module`` in ``namespace``."""
    from neural_ae_ros.ros.processes import children_of

    out = []
    for pid in children_of(parent_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in b" ".join(cmd) and f"__ns:=/{namespace}".encode() in cmd:
            out.append(pid)
    return out


def test_a_side_whose_detector_dies_mid_run_is_reported_and_the_run_ends(tmp_path):
    import rclpy
    from vision_msgs.msg import Detection2DArray

    from neural_ae_ros.ros import topics

    frames = 10
    scene = write_step_scene(tmp_path / "scene", frames=frames, step_frame=4)
    # paced by the recording's stamps this time
    p = _ab_eval(scene, tmp_path / "out", "--pace", "stamps", "--stall-timeout-s", "15")
    rclpy.init()
    try:
        node = rclpy.create_node("ab_fault_test")
        seen = []
        node.create_subscription(Detection2DArray, "/b/detections", seen.append, topics.RECORD_QOS)
        deadline = time.monotonic() + 200
        # Kill after the 3rd detection and ask the recording for 2: the message published just
        # before a SIGKILL can reach this subscriber and still be lost to the recorder (CI saw
        # 2 here and 1 in the bag).
        while len(seen) < 3 and time.monotonic() < deadline and p.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert len(seen) >= 3, f"side b produced {len(seen)} detections, not 3"
        victims = _node_pids(p.pid, "neural_ae_ros.ros.detector_node", "b")
        assert len(victims) == 1
        os.kill(victims[0], signal.SIGKILL)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, f"{out}\n{err}"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    a, b = summary["a"], summary["b"]
    assert a["frames_scored"] == frames and a["frames_missing"] == 0 and "node_deaths" not in a
    assert b["node_deaths"][0]["node"] == "detector_node" and b["node_deaths"][0]["exit_code"] == -signal.SIGKILL
    assert b["frames_missing"] >= 1 and b["frames_scored"] >= 2
    assert b["frames_scored"] + b["frames_missing"] == frames
    # the camera went on after the in-flight timeout: the missing frames were captured
    assert any("captured, no detections" in g["reason"] for g in b["missing"])
    assert "detector_node ended (exit code -9)" in out and "b:     gradient" in out and "MISSING" in out
    html = (tmp_path / "out" / "report.html").read_text()
    assert "side b: <b>detector_node</b> died" in html and "no detections recorded" in html


def test_truncated_scene_bag_is_one_error_line_before_anything_starts(tmp_path):
    scene = write_step_scene(tmp_path / "scene", frames=30, width=256, height=192)
    mcap_file = next(scene.glob("*.mcap"))
    data = mcap_file.read_bytes()
    mcap_file.write_bytes(data[: len(data) // 2])
    p = _ab_eval(scene, tmp_path / "out")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("neural-ae ab-eval: error: SceneBagError:"), err
    assert str(scene) in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out" / "logs").exists() and not (tmp_path / "out" / "bags").exists()
