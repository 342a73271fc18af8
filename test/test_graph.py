"""The graph description shared by `neural-ae loop` and launch/vehicle.launch.py."""
import ast
from pathlib import Path

import pytest

from neural_ae_ros.graph import pipeline, ros_args
from neural_ae_ros.parameters import NODE_PARAMETERS, spec_by_name, validate

ROOT = Path(__file__).resolve().parent.parent


def test_pipeline_overrides_are_declared_parameters_with_valid_values():
    for method in ("average", "gradient"):
        for node in pipeline(method, namespace="a", camera={"actuation_latency_frames": 3}, wait_for_recorder=True):
            specs = spec_by_name(node.executable)
            for key, value in node.parameters.items():
                assert key in specs, f"{node.executable} has no parameter {key}"
                assert validate(specs[key], value) is None


def test_gradient_pipeline_waits_for_the_controller_image_subscription():
    cam = {n.executable: n for n in pipeline("gradient", wait_for_recorder=True)}["camera_bridge"]
    assert cam.parameters["wait_for_image_subscribers"] == 2
    cam = {n.executable: n for n in pipeline("average", wait_for_recorder=True)}["camera_bridge"]
    assert cam.parameters["wait_for_image_subscribers"] == 1


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown AE method 'magic'"):
        pipeline("magic")


def test_ros_args_namespace_and_types():
    node = pipeline("average", namespace="/b/", camera={"simulate_noise": False, "seed": 3})[2]
    args = ros_args(node)
    assert args[:3] == ["--ros-args", "-r", "__ns:=/b"]
    assert "simulate_noise:=false" in args and "seed:=3" in args


def test_every_node_executable_exists_and_launch_file_uses_the_graph():
    for node in NODE_PARAMETERS:
        assert (ROOT / "scripts" / node).is_file()
        assert (ROOT / "neural_ae_ros" / "ros" / f"{node}.py").is_file()
    tree = ast.parse((ROOT / "launch" / "vehicle.launch.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"pipeline", "generate_launch_description"} & imported == {"pipeline"}
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in ast.walk(tree))
