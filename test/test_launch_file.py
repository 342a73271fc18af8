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

from neural_ae_ros.config import config_path
from neural_ae_ros.graph import BRINGUP_SOURCES, vehicle
from neural_ae_ros.parameters import AE_METHODS, node_config_files

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
    """Execute the description as launch would: declare arguments, then run the actions (and the
    actions an OpaqueFunction returns, at once, in order)."""
    description = module.generate_launch_description()
    context = launch.LaunchContext()
    context.launch_configurations.update({k: str(v) for k, v in arguments.items()})
    nodes = []

    def visit(entities):
        for action in entities:
            if type(action).__name__ == "Node":
                nodes.append(action)
            else:
                visit(action.execute(context) or [])

    visit(description.entities)
    return description, context, nodes


def _overrides(node):
    """The launch Node's parameter dict (after the files), {} when it has none."""
    return next((p for p in node.parameters if isinstance(p, dict)), {})


def _files(node):
    return [p for p in node.parameters if isinstance(p, str)]


def _as_graph(nodes):
    return [(n.package, n.executable, n.namespace or "", _overrides(n), dict(n.remappings)) for n in nodes]


def _expected(method, namespace="", **kwargs):
    return [("neural_ae_ros", n.executable, n.namespace, n.parameters, n.remappings)
            for n in vehicle(method, namespace=namespace, **kwargs)]


@pytest.mark.parametrize("method", AE_METHODS)
def test_default_launch_starts_the_vehicle_graph_of_each_method(launch_api, method):
    launch, module = launch_api
    _, context, nodes = _run(launch, module, method=method)
    assert _as_graph(nodes) == _expected(method)
    assert {n.executable for n in nodes} == {"camera_bridge", "histogram_node", "ae_controller", "isp_node",
                                             "detector_node"}
    assert all(n.namespace is None for n in nodes), "an empty namespace must not become '/'"
    for n in nodes:  # CMakeLists installs scripts/<executable> to lib/neural_ae_ros, where launch_ros looks
        assert (ROOT / "scripts" / n.executable).is_file()


def test_every_node_gets_the_ros_parameters_files_of_its_concerns_first(launch_api, tmp_path):
    launch, module = launch_api
    mine = tmp_path / "mine.yaml"
    _, _, nodes = _run(launch, module, params_file=mine, actuation_latency_frames=1)
    for n in nodes:
        files = _files(n)
        assert files[:-1] == [str(config_path(f)) for f in node_config_files(n.executable)], n.executable
        assert all(Path(f).is_file() for f in files[:-1])
        assert files[-1] == str(mine), "the user's file comes after the package's"
    cam = next(n for n in nodes if n.executable == "camera_bridge")
    assert cam.parameters[-1] == {"actuation_latency_frames": 1}, "overrides last: they win over every file"
    assert set(_files(cam)[:-1]) == {str(config_path(f)) for f in
                                     ("camera.yaml", "scene_source.yaml", "camera_driver.yaml")}


def test_launch_keeps_dds_on_the_machine_unless_the_user_chose(launch_api, monkeypatch):
    from neural_ae_ros.ros.dds import shm_profile_path

    launch, module = launch_api
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    _, context, _ = _run(launch, module)
    assert context.environment["FASTDDS_DEFAULT_PROFILES_FILE"] == str(shm_profile_path())
    assert shm_profile_path().is_file()
    assert context.environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    _, context, _ = _run(launch, module, dds_profile="/site/udp.xml")
    assert context.environment["FASTDDS_DEFAULT_PROFILES_FILE"] == "/site/udp.xml"
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "/mine.xml")
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    _, context, _ = _run(launch, module)
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in context.environment  # the user's profile stays
    assert context.environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


def test_arguments_reach_the_nodes_as_typed_parameter_overrides(launch_api):
    launch, module = launch_api
    _, _, nodes = _run(launch, module, method="gradient", namespace="ab", actuation_latency_frames=3,
                       source="bag", bag_path="/data/run1", detector_checkpoint="/m/det.pt", perception="true")
    camera = {"actuation_latency_frames": 3, "source": "bag", "bag_path": "/data/run1"}
    assert _as_graph(nodes) == _expected("gradient", namespace="ab", source="bag",
                                         camera={k: v for k, v in camera.items() if k != "source"},
                                         detector={"checkpoint": "/m/det.pt"})
    cam = next(n for n in nodes if n.executable == "camera_bridge")
    assert _overrides(cam)["source"] == "bag" and isinstance(_overrides(cam)["actuation_latency_frames"], int)
    assert _overrides(next(n for n in nodes if n.executable == "detector_node")) == {"checkpoint": "/m/det.pt"}


def test_source_driver_remaps_the_driver_topics_and_standin_starts_one(launch_api):
    launch, module = launch_api
    _, _, nodes = _run(launch, module, source="driver", driver_node="/cam_front",
                       driver_image_topic="/cam_front/image_raw", driver_meta_topic="/cam_front/meta")
    cam = next(n for n in nodes if n.executable == "camera_bridge")
    assert dict(cam.remappings) == {"driver_image_raw": "/cam_front/image_raw", "driver_meta": "/cam_front/meta"}
    assert _overrides(cam)["source"] == "driver" and _overrides(cam)["driver_node"] == "/cam_front"
    assert "standin_camera_driver" not in [n.executable for n in nodes]
    _, _, nodes = _run(launch, module, source="standin_driver", namespace="veh", perception="false")
    assert [n.executable for n in nodes] == ["standin_camera_driver", "ae_controller", "histogram_node",
                                             "camera_bridge"]
    cam = next(n for n in nodes if n.executable == "camera_bridge")
    assert _overrides(cam)["driver_node"] == "/veh/standin_camera_driver"
    assert dict(cam.remappings)["driver_image_raw"] == "standin_camera_driver/image_raw"


def test_method_and_source_arguments_offer_exactly_what_exists(launch_api):
    launch, module = launch_api
    description, _, _ = _run(launch, module)
    declared = {a.name: a for a in description.entities if type(a).__name__ == "DeclareLaunchArgument"}
    assert list(declared["method"].choices) == list(AE_METHODS)
    assert set(declared["source"].choices) == {"", *BRINGUP_SOURCES}
    with pytest.raises(ValueError, match="magic"):
        _run(launch, module, method="magic")
    with pytest.raises(ValueError, match="webcam"):
        _run(launch, module, source="webcam")
