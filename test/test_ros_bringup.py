"""`neural-ae bringup` across processes (real rclpy, Fast DDS): the vehicle graph from the same
description and ros__parameters files as vehicle.launch.py, tuned live over SetParameters while it
runs, stopped by Ctrl-C or by --duration-s with every node exiting cleanly; a node killed mid-run is reported
(name, exit code, last lines) and the command exits non-zero without hanging."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient

from neural_ae_ros.msg import AppliedExposure, ExposureCommand
from neural_ae_ros.parameters import NODE_PARAMETERS
from neural_ae_ros.ros import topics
from neural_ae_ros.ros.processes import pid_alive
from ros_procs import spin_until

#: The installed command (as a user runs it).
NEURAL_AE = [str(Path(sys.executable).parent / "neural-ae"), "bringup"]
#: Small frames and the stand-in driver keep six nodes light enough for a loaded 2-core machine.
SMALL = """
/**/camera_bridge:
  ros__parameters:
    frame_rate_hz: 15.0
/**/standin_camera_driver:
  ros__parameters:
    width: 64
    height: 64
    ignore_every_nth_set: 5
"""


class Bringup:
    """`neural-ae bringup` in a process whose output a thread collects (a full pipe would stall
    the command's log forwarding, and with it the nodes)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        params = tmp_path / "small.yaml"
        params.write_text(SMALL)
        self.proc = subprocess.Popen([*NEURAL_AE, "--params-file", str(params), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def started_pids(self, timeout: float = 60.0):
        """name -> pid from bringup's 'started a (pid 1), b (pid 2); ...' line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = next((x for x in list(self.lines) if "neural-ae bringup: started" in x), None)
            if line:
                return {name: int(pid) for name, pid in re.findall(r"([\w/]+) \(pid (\d+)\)", line)}
            time.sleep(0.1)
        raise AssertionError("bringup never said what it started:\n" + self.out)

    def wait(self, timeout: float) -> int:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=10)
        return self.proc.returncode


def _set(node, fqn, params, timeout=30.0):
    client = AsyncParameterClient(node, fqn)
    assert client.wait_for_services(timeout_sec=timeout), f"{fqn} has no parameter services"
    future = client.set_parameters(params)
    assert spin_until(node, future.done, timeout)
    return future.result().results


def current_value(node, fqn, name):
    """The current value of parameter ``name`` of node ``fqn``."""
    future = AsyncParameterClient(node, fqn).get_parameters([name])
    assert spin_until(node, future.done, 20)
    return parameter_value_to_python(future.result().values[0])


@pytest.fixture()
def ros_node():
    rclpy.init()
    node = rclpy.create_node("bringup_test")
    yield node
    node.destroy_node()
    rclpy.shutdown()


def test_bringup_runs_tunes_live_and_stops_cleanly_on_ctrl_c(ros_node, tmp_path):
    node, ns = ros_node, "/bu"
    applied, commands = [], []
    node.create_subscription(AppliedExposure, f"{ns}/{topics.APPLIED_EXPOSURE}", applied.append, topics.RECORD_QOS)
    node.create_subscription(ExposureCommand, f"{ns}/{topics.EXPOSURE_COMMAND}", commands.append, topics.RECORD_QOS)
    run = Bringup(tmp_path, "--method", "average", "--source", "standin_driver", "--namespace", "bu")
    try:
        pids = run.started_pids()
        assert set(pids) == {f"bu/{n}" for n in ("standin_camera_driver", "ae_controller", "histogram_node",
                                                 "camera_bridge", "isp_node", "detector_node")}, pids
        # the closed loop runs through the stand-in driver's parameters
        assert spin_until(node, lambda: sum(a.from_command for a in applied) > 10, 50), \
            f"no frames from commands; applied={len(applied)}"
        assert all(c.method == "average" for c in commands)
        # live tuning: the AE method, over SetParameters, while the graph runs
        switched = len(commands)
        results = _set(node, f"{ns}/ae_controller", [Parameter("method", value="gradient")])
        assert results[0].successful, results[0].reason
        assert spin_until(node, lambda: any(c.method == "gradient" for c in commands[switched:]), 20)
        assert any(a.command_method == "gradient" for a in applied) or spin_until(
            node, lambda: any(a.command_method == "gradient" for a in applied), 20)
        # every node: a tunable number carries its range and a value outside is refused with the reason;
        # a read-only one is refused as read-only
        for name, specs in NODE_PARAMETERS.items():
            if f"bu/{name}" not in pids:  # nodes of other graphs (e.g. personalization_node)
                continue
            tunable = [s for s in specs if s.type in (int, float) and s.low is not None and not s.read_only]
            spec = tunable[0] if tunable else next(s for s in specs if s.read_only)
            client = AsyncParameterClient(node, f"{ns}/{name}")
            assert client.wait_for_services(timeout_sec=30), name
            future = client.describe_parameters([spec.name])
            assert spin_until(node, future.done, 20), name
            desc = future.result().descriptors[0]
            if spec.read_only:
                assert desc.read_only
                bad = _set(node, f"{ns}/{name}", [Parameter(spec.name, value=current_value(node, f"{ns}/{name}", spec.name))])
                assert not bad[0].successful and "read-only" in bad[0].reason, (name, spec.name, bad[0].reason)
                continue
            ranges = desc.floating_point_range if spec.type is float else desc.integer_range
            assert (ranges[0].from_value, ranges[0].to_value) == (spec.low, spec.high), (name, spec.name)
            bad = _set(node, f"{ns}/{name}", [Parameter(spec.name, value=spec.type(spec.high * 2 + 1))])
            assert not bad[0].successful and bad[0].reason, (name, spec.name)
    finally:
        run.proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = run.wait(timeout=90)
    out = run.out
    assert code == 130, out
    assert re.search(r"^neural-ae bringup: stopped on SIGINT after [\d.]+ s; every node exited cleanly$", out, re.M), out
    for name in pids:  # each node's own shutdown line, forwarded with its prefix
        assert re.search(rf"^\[{re.escape(name)}\] .*stopping on SIGINT", out, re.M), name
        assert not pid_alive(pids[name])
    assert "Traceback" not in out


def test_bringup_stops_cleanly_after_its_duration(tmp_path):
    duration_s = 12.0
    run = Bringup(tmp_path, "--method", "average", "--source", "drive", "--drive", "step_test", "--namespace", "bd",
                  "--no-perception", "--duration-s", str(duration_s))
    started = time.monotonic()
    try:
        pids = run.started_pids()
    finally:
        code = run.wait(timeout=duration_s + 90)
    out = run.out
    assert code == 0, out
    assert time.monotonic() - started >= duration_s - 1
    assert re.search(r"^neural-ae bringup: stopped after [\d.]+ s; every node exited cleanly$", out, re.M), out
    assert all(not pid_alive(pid) for pid in pids.values())
    assert "Traceback" not in out


def test_a_node_killed_mid_run_is_reported_and_the_rest_stopped(ros_node, tmp_path):
    node, ns = ros_node, "/bk"
    applied = []
    node.create_subscription(AppliedExposure, f"{ns}/{topics.APPLIED_EXPOSURE}", applied.append, topics.RECORD_QOS)
    run = Bringup(tmp_path, "--method", "average", "--source", "drive", "--drive", "step_test", "--namespace", "bk",
                  "--no-perception")
    try:
        pids = run.started_pids()
        assert spin_until(node, lambda: len(applied) > 5, 60), "the graph never ran:\n" + run.out
        os.kill(pids["bk/histogram_node"], signal.SIGKILL)
    finally:
        code = run.wait(timeout=90)
    out = run.out
    assert code == 1, out
    report = out[out.index("node bk/histogram_node died"):]
    assert "exit code -9" in report.splitlines()[0]
    assert "histogram_node" in report and "last lines" in report
    assert all(not pid_alive(pid) for pid in pids.values()), "a node outlived the command"
    assert re.search(r"^\[bk/camera_bridge\] .*stopping on SIGINT", out, re.M)
