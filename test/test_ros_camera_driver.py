"""The camera bridge in front of a camera driver, across processes (real rclpy): our stand-in
driver (spinnaker_camera_driver's interface: exposure_time in us, gain in dB, ranges, latency,
dropped sets, ~/meta) behind the bridge, with the histogram node and the AE controller, started
from the bring-up graph description (graph.vehicle) and the ros__parameters files."""
from __future__ import annotations

import math
import os
import time

import pytest
import rclpy
from rclpy.parameter_client import AsyncParameterClient
from rclpy.parameter import parameter_value_to_python

from neural_ae_ros.config import config_path
from neural_ae_ros.graph import ros_args, vehicle
from neural_ae_ros.msg import AppliedExposure, CameraExposureInfo, DriverImageMetaData, ExposureCommand
from neural_ae_ros.ros import topics
from neural_ae_ros.ros.convert import stamp_key
from neural_ae_ros.ros.processes import start_node_process, stop_processes
from ros_procs import spin_until

NS = "/drv"
DRIVER = f"{NS}/standin_camera_driver"


@pytest.fixture()
def graph(tmp_path):
    """Start the graph with a user parameter file; yields (test node, log dir, the file's path)."""
    params = tmp_path / "driver.yaml"
    params.write_text(
        "/**/standin_camera_driver:\n  ros__parameters:\n    ignore_every_nth_set: 3\n"
        "    max_exposure_time_us: 8000.0\n"
        # a parameter this driver does not have: the bridge must report the driver's refusal
        "/**/camera_bridge:\n  ros__parameters:\n    driver_manual_parameters: 'exposure_auto=Off,white_balance=5'\n")
    procs, logs = [], []
    rclpy.init()
    node = rclpy.create_node("driver_test")
    try:
        for n in vehicle("average", namespace=NS.strip("/"), source="standin_driver", perception=False):
            log = open(tmp_path / f"{n.executable}.log", "w")
            logs.append(log)
            files = [config_path(f) for f in n.params_files] + [params]
            procs.append(start_node_process(n.module, ros_args(n, files), log, dict(os.environ)))
        yield node, tmp_path
    finally:
        stop_processes(procs)
        for log in logs:
            log.close()
        node.destroy_node()
        rclpy.shutdown()


def _log(tmp_path, name):
    return (tmp_path / f"{name}.log").read_text()


def _driver_value(node, name):
    future = AsyncParameterClient(node, DRIVER).get_parameters([name])
    assert spin_until(node, future.done, 20)
    return parameter_value_to_python(future.result().values[0])


def test_bridge_drives_the_driver_through_its_parameters_clamped_and_reports_what_it_applied(graph):
    node, tmp = graph
    applied, metas, infos, commands = [], {}, [], []
    node.create_subscription(AppliedExposure, f"{NS}/{topics.APPLIED_EXPOSURE}", applied.append, topics.RECORD_QOS)
    node.create_subscription(DriverImageMetaData, f"{DRIVER}/meta", lambda m: metas.__setitem__(stamp_key(m.header), m),
                             topics.RECORD_QOS)
    node.create_subscription(CameraExposureInfo, f"{NS}/{topics.CAMERA_EXPOSURE_INFO}", infos.append,
                             topics.LATCHED_QOS)
    node.create_subscription(ExposureCommand, f"{NS}/{topics.EXPOSURE_COMMAND}", commands.append, topics.RECORD_QOS)
    assert spin_until(node, lambda: sum(a.from_command for a in applied) > 40, 120), _log(tmp, "camera_bridge")

    # the driver's ranges reached the camera's announced limits (8000 us < config/camera.yaml's 15 ms)
    assert spin_until(node, lambda: infos and infos[-1].max_exposure_time_s == pytest.approx(0.008), 20), infos
    # every applied record is what the driver's metadata of the same frame says, in s and linear K
    spin_until(node, lambda: all(stamp_key(a.header) in metas for a in applied), 5)
    matched = [(a, metas[stamp_key(a.header)]) for a in applied if stamp_key(a.header) in metas]
    assert len(matched) >= len(applied) - 2
    for a, m in matched:
        assert a.exposure_time_s == pytest.approx(m.exposure_time * 1e-6)
        assert 20 * math.log10(a.analog_gain) == pytest.approx(m.gain, abs=1e-4)
    # the exposure moved away from the driver's initial 5000 us, 0 dB, by our commands, after the latency
    # (this scene wants ~8.4 ms: exposure time at the 8000 us limit, the rest in gain)
    assert len({(m.exposure_time, round(m.gain, 3)) for _, m in matched}) > 3
    from_cmd = [a for a in applied if a.from_command]
    assert all(a.frame_index - a.command_source_frame_index >= 1 for a in from_cmd)
    assert {a.command_method for a in from_cmd} == {"average"}
    # never beyond the camera's limits: the driver's value stays inside its range, nothing refused
    assert 10.0 <= _driver_value(node, "exposure_time") <= 8000.0
    # the driver dropped some sets silently; a dropped set is either superseded or resent
    assert "ignored" in _log(tmp, "standin_camera_driver")
    # a parameter the driver does not have is reported with the driver's reason, once, and the node lives on
    bridge_log = _log(tmp, "camera_bridge")
    assert "refused white_balance=5" in bridge_log, bridge_log
    assert _driver_value(node, "exposure_auto") == "Off"
    assert "applied settings from the driver's metadata" in bridge_log

    # a command beyond every limit reaches the driver clamped to the narrowed limits, not refused.
    # The controller keeps commanding; a command from a newer frame wins, so ours is sent from the
    # newest frame seen, until a frame shows it
    refusals = _log(tmp, "camera_bridge").count("refused exposure_time")  # (sets before the ranges were read)
    pub = node.create_publisher(ExposureCommand, f"{NS}/{topics.EXPOSURE_COMMAND}", topics.RECORD_QOS)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cmd = ExposureCommand()
        cmd.header = applied[-1].header
        cmd.source_frame_index = applied[-1].frame_index
        cmd.target_frame_index = applied[-1].frame_index + 1
        cmd.exposure_time_s, cmd.analog_gain, cmd.method = 10.0, 1e4, "test"
        pub.publish(cmd)
        spin_until(node, lambda: False, 0.2)
        if any(a.command_method == "test" for a in applied):
            break
    shown = [a for a in applied if a.command_method == "test"]
    assert shown, _log(tmp, "camera_bridge")
    assert shown[0].exposure_time_s == pytest.approx(0.008) and shown[0].analog_gain == pytest.approx(10 ** 1.2)
    assert _log(tmp, "camera_bridge").count("refused exposure_time") == refusals
