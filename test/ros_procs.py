"""Helpers for tests that run nodes as real processes."""
import os
import signal
import subprocess
import sys
import time

import rclpy


def start_node(module, params, log_path, namespace):
    """Start ``neural_ae_ros.ros.<module>`` in its own process; returns (process, log file)."""
    cmd = [sys.executable, "-m", f"neural_ae_ros.ros.{module}", "--ros-args", "-r", f"__ns:={namespace}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    return proc, log


def stop_nodes(procs):
    for proc, log in procs:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def spin_until(node, cond, timeout=20.0):
    """Spin ``node`` until ``cond()`` holds or ``timeout`` seconds pass; returns ``cond()``."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return cond()


def wait_for_log(path, needle, node=None, timeout=20.0):
    """Wait until the log file ``path`` contains ``needle`` (spinning ``node`` meanwhile if given);
    returns whether it does, so that a failing assert can show the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in open(path).read():
            return True
        if node is not None:
            rclpy.spin_once(node, timeout_sec=0.05)
        else:
            time.sleep(0.05)
    return needle in open(path).read()
