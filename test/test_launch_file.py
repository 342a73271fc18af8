"""launch/vehicle.launch.py, executed: its nodes and parameters are the graph's (neural_ae_ros/graph.py).

ROS 2's ``launch``/``launch_ros`` are not installable here (not on PyPI), so the launch file runs
against the stand-ins in ``test/launch_stubs`` (same constructor signatures; they record what the
file builds). What is checked is the launch file's own logic: its arguments, how it turns them
into the graph, and the launch_ros Nodes it makes of it.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from neural_ae_ros.graph import pipeline
from neural_ae_ros.parameters import AE_METHODS, NODE_PARAMETERS

ROOT = Path(__file__).resolve().parent.parent
STUBS = Path(__file__).resolve().parent / "launch_stubs"


@pytest.fixture()
def launch_api(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] in ("launch", "launch_ros")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(STUBS))
    import launch
    import launch.actions

    assert Path(launch.__file__).is_relative_to(STUBS)
    spec = importlib.util.spec_from_file_location("vehicle_launch", ROOT / "launch" / "vehicle.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield launch, module
    for name in [m for m in sys.modules if m.split(".")[0] in ("launch", "launch_ros")]:
        del sys.modules[name]


def _run(launch, module, **arguments):
    """Execute the description as launch would: declare arguments, then run the actions."""
    description = module.generate_launch_description()
    context = launch.LaunchContext()
    context.launch_configurations.update({k: str(v) for k, v in arguments.items()})
    nodes = []
    for action in description.entities:
        nodes += action.execute(context) or []
    return description, context, nodes


def _as_graph(nodes):
    return [(n.package, n.executable, n.namespace or "", (n.parameters[0] if n.parameters else {})) for n in nodes]


def _expected(method, namespace="", camera=None):
    return [("neural_ae_ros", n.executable, n.namespace, n.parameters)
            for n in pipeline(method, namespace=namespace, camera=camera)]


@pytest.mark.parametrize("method", AE_METHODS)
def test_default_launch_starts_the_graph_of_each_method(launch_api, method):
    launch, module = launch_api
    _, context, nodes = _run(launch, module, method=method)
    assert _as_graph(nodes) == _expected(method)
    assert all(n.namespace is None for n in nodes), "an empty namespace must not become '/'"
    assert {n.executable for n in nodes} <= set(NODE_PARAMETERS)
    for n in nodes:  # CMakeLists installs scripts/<executable> to lib/neural_ae_ros, where launch_ros looks
        assert (ROOT / "scripts" / n.executable).is_file()


def test_launch_keeps_dds_on_the_machine_unless_the_user_chose(launch_api, monkeypatch):
    from neural_ae_ros.ros.dds import shm_profile_path

    launch, module = launch_api
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    _, context, _ = _run(launch, module)
    assert context.environment["FASTDDS_DEFAULT_PROFILES_FILE"] == str(shm_profile_path())
    assert shm_profile_path().is_file()
    assert context.environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/mine.xml")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    _, context, _ = _run(launch, module)
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in context.environment  # the user's profile stays
    assert context.environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


def test_arguments_reach_the_nodes_as_typed_parameter_overrides(launch_api):
    launch, module = launch_api
    _, _, nodes = _run(launch, module, method="gradient", namespace="ab", actuation_latency_frames=3,
                       drive="tunnel", source="bag", bag_path="/data/run1")
    camera = {"actuation_latency_frames": 3, "drive": "tunnel", "source": "bag", "bag_path": "/data/run1"}
    assert _as_graph(nodes) == _expected("gradient", namespace="ab", camera=camera)
    cam = next(n for n in nodes if n.executable == "camera_bridge")
    assert isinstance(cam.parameters[0]["actuation_latency_frames"], int)


def test_method_argument_offers_exactly_the_registered_methods(launch_api):
    launch, module = launch_api
    description, _, _ = _run(launch, module)
    declared = {a.name: a for a in description.entities if type(a).__name__ == "DeclareLaunchArgument"}
    assert list(declared["method"].choices) == list(AE_METHODS)
    with pytest.raises(ValueError, match="magic"):
        _run(launch, module, method="magic")


def test_personalize_argument_adds_the_personalization_node_for_rgb_methods(launch_api):
    launch, module = launch_api
    _, _, nodes = _run(launch, module, method="attention_rl", personalize="true")
    assert _as_graph(nodes) == [("neural_ae_ros", n.executable, n.namespace, n.parameters)
                                for n in pipeline("attention_rl", personalize=True)]
    assert "personalization_node" in {n.executable for n in nodes}
