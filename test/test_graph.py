"""The graph description shared by `neural-ae loop` and launch/vehicle.launch.py (test_launch_file.py)."""
from pathlib import Path

import pytest

from neural_ae_ros.graph import pipeline, ros_args
from neural_ae_ros.parameters import AE_METHODS, NODE_PARAMETERS, spec_by_name, validate

ROOT = Path(__file__).resolve().parent.parent


def test_pipeline_overrides_are_declared_parameters_with_valid_values():
    for method in ("average", "gradient", "attention_rl"):
        for node in pipeline(method, namespace="a", camera={"actuation_latency_frames": 3}, wait_for_recorder=True,
                             personalize=True):
            specs = spec_by_name(node.executable)
            for key, value in node.parameters.items():
                assert key in specs, f"{node.executable} has no parameter {key}"
                assert validate(specs[key], value) is None


def test_gradient_pipeline_waits_for_the_controller_image_subscription():
    cam = {n.executable: n for n in pipeline("gradient", wait_for_recorder=True)}["camera_bridge"]
    assert cam.parameters["wait_for_image_subscribers"] == 2
    cam = {n.executable: n for n in pipeline("average", wait_for_recorder=True)}["camera_bridge"]
    assert cam.parameters["wait_for_image_subscribers"] == 1


def test_rgb_method_gets_the_isp_and_the_camera_waits_for_it():
    graph = {n.executable: n for n in pipeline("attention_rl", wait_for_recorder=True)}
    assert "isp_node" in graph and "personalization_node" not in graph
    assert graph["camera_bridge"].parameters["wait_for_image_subscribers"] == 2  # histogram_node + isp_node
    assert list(graph)[-1] == "camera_bridge"  # the camera starts last, its readers before it
    assert "isp_node" not in {n.executable for n in pipeline("average")}
    personal = [n.executable for n in pipeline("attention_rl", personalize=True)]
    assert "personalization_node" in personal
    assert "personalization_node" not in [n.executable for n in pipeline("average", personalize=True)]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown AE method 'magic'"):
        pipeline("magic")


def test_ros_args_namespace_and_types():
    node = pipeline("average", namespace="/b/", camera={"simulate_noise": False, "seed": 3})[2]
    args = ros_args(node)
    assert args[:3] == ["--ros-args", "-r", "__ns:=/b"]
    assert "simulate_noise:=false" in args and "seed:=3" in args


def test_every_node_has_an_executable_script_and_a_module():
    for node in NODE_PARAMETERS:
        assert (ROOT / "scripts" / node).is_file()
        assert (ROOT / "neural_ae_ros" / "ros" / f"{node}.py").is_file()


@pytest.mark.parametrize("method", AE_METHODS)
def test_perception_graphs_hold_one_isp_and_the_methods_own_detector(method):
    from neural_ae_ros.graph import method_detector, perception_pipeline, vehicle

    for nodes in (perception_pipeline(method, "a", wait_for_recorder=True), vehicle(method, "v")):
        names = [n.executable for n in nodes]
        assert names.count("isp_node") == 1 and names.count("detector_node") == 1, names
        isp = next(n for n in nodes if n.executable == "isp_node")
        assert not isp.parameters.get("binning")  # perception sees the full-resolution image
        det = next(n for n in nodes if n.executable == "detector_node")
        own = method_detector(method)
        assert det.parameters.get("checkpoint") == own
        if method in ("semantic_nn", "hybrid_nn"):  # its detector node also runs the semantic encoder
            assert own.endswith(f"{method}_detector.pt") and det.parameters["ae_checkpoint"].endswith(f"{method}.pt")
        if method in ("average", "gradient"):  # Table 2 fairness: the shipped fine-tuned detector
            assert own is not None and own.endswith(f"{method}_detector.pt")
