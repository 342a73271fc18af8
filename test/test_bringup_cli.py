"""`neural-ae bringup` before anything starts: a user's parameter file is read with the package's
loader and a value a node would refuse is one error line naming file, node and reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from neural_ae_ros.cli.bringup import build_graph, check_params_files

NEURAL_AE = str(Path(sys.executable).parent / "neural-ae")
NODES = ["ae_controller", "camera_bridge", "histogram_node"]


def test_a_value_a_node_would_refuse_is_named_with_file_node_and_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**/ae_controller:\n  ros__parameters:\n    ema_mu: 1.5\n")
    with pytest.raises(ValueError, match=rf"{bad}: ae_controller: ema_mu=1.5 is above its maximum 0.99"):
        check_params_files([bad], NODES)
    shared = tmp_path / "shared.yaml"  # '/**' applies to every node: checked against each
    shared.write_text("/**:\n  ros__parameters:\n    frame_rate_hz: 500.0\n")
    with pytest.raises(ValueError, match="camera_bridge: frame_rate_hz=500.0 is above its maximum 120.0"):
        check_params_files([shared], NODES)


def test_unknown_parameters_of_our_nodes_warn_and_other_files_are_refused(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("camera_bridge:\n  ros__parameters:\n    frame_rate: 20.0\n    width: 320\n"
                    "/**:\n  ros__parameters:\n    use_sim_time: false\n")
    warnings = check_params_files([typo], NODES)
    assert warnings == [f"{typo}: camera_bridge has no parameter 'frame_rate' (ignored)"]
    old = tmp_path / "old.yaml"
    old.write_text("ae:\n  method: average\n")
    with pytest.raises(ValueError, match=f"{old}: not a ros__parameters file"):
        check_params_files([old], NODES)


def test_the_command_stops_before_starting_nodes_on_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**/camera_bridge:\n  ros__parameters:\n    actuation_latency_frames: 9\n")
    res = subprocess.run([NEURAL_AE, "bringup", "--method", "average",
                          "--params-file", str(bad)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"neural-ae bringup: error: ValueError: {bad}: camera_bridge: actuation_latency_frames=9 is above its "
        "maximum 5"]
    assert "started" not in res.stdout


def test_bag_argument_selects_the_bag_source_and_perception_can_be_left_out():
    args = SimpleNamespace(method="average", namespace="", source="", drive=None, bag="/data/run1",
                           driver_node=None, detector_checkpoint=None, no_perception=True,
                           driver_image_topic=None, driver_meta_topic=None)
    graph = build_graph(args)
    assert [n.executable for n in graph] == ["ae_controller", "histogram_node", "camera_bridge"]
    cam = graph[-1].parameters
    assert cam["source"] == "bag" and cam["bag_path"] == "/data/run1"
