"""Bad input across processes: malformed raw images, absurd exposure commands and out-of-range
parameters are refused with a message that says what was wrong; nothing crashes and the camera
keeps running on clamped settings."""
import math

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image

from neural_ae_ros.imaging.exposure import CameraLimits
from neural_ae_ros.msg import AppliedExposure, ExposureCommand, HistogramStack
from neural_ae_ros.parameters import node_defaults
from neural_ae_ros.ros import topics
from ros_procs import spin_until, start_node, stop_nodes, wait_for_log


@pytest.fixture()
def pipeline(tmp_path):
    procs = [start_node("camera_bridge", {"drive": "step_test", "width": 64, "height": 64, "frame_rate_hz": 20.0},
                        tmp_path / "camera.log", "/bad"),
             start_node("histogram_node", {}, tmp_path / "hist.log", "/bad")]
    rclpy.init()
    node = rclpy.create_node("bad_input_test", namespace="/bad")
    yield node, procs[0][0], procs[1][0], tmp_path
    rclpy.shutdown()
    stop_nodes(procs)


def _bad_images():
    good = np.full((64, 64), 500, np.uint16)
    wrong_encoding = Image(height=64, width=64, encoding="mono16", step=128, data=good.tobytes())
    wrong_step = Image(height=64, width=64, encoding="bayer_rggb16", step=100, data=good.tobytes())
    truncated = Image(height=64, width=64, encoding="bayer_rggb16", step=128, data=good.tobytes()[:-10])
    odd_size = Image(height=63, width=64, encoding="bayer_rggb16", step=128, data=good[:63].tobytes())
    return ((wrong_encoding, "encoding 'mono16', expected 'bayer_rggb16'"), (wrong_step, "step 100 B is shorter than a row"),
            (truncated, "(truncated)"), (odd_size, "even width and height"))


def test_malformed_images_and_commands_are_refused_and_nodes_keep_running(pipeline):
    node, cam, hist, tmp = pipeline
    applied, hists = [], []
    node.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, applied.append, topics.RECORD_QOS)
    node.create_subscription(HistogramStack, topics.HISTOGRAMS, hists.append, topics.RECORD_QOS)
    img_pub = node.create_publisher(Image, topics.IMAGE_RAW, topics.IMAGE_QOS)
    cmd_pub = node.create_publisher(ExposureCommand, topics.EXPOSURE_COMMAND, topics.RECORD_QOS)
    assert spin_until(node, lambda: len(applied) > 3 and len(hists) > 3 and img_pub.get_subscription_count() >= 1
                       and cmd_pub.get_subscription_count() >= 1, timeout=60)  # start-up on a loaded machine

    for bad, reason in _bad_images():  # one at a time: the image queue is short (depth 3) by design
        img_pub.publish(bad)
        assert wait_for_log(tmp / "hist.log", reason, node), (tmp / "hist.log").read_text()[-2000:]
    last = applied[-1].frame_index
    for t, k in ((math.nan, 1.0), (-0.01, 2.0), (1e9, 1e9), (0.004, math.inf)):
        cmd = ExposureCommand(source_frame_index=last, exposure_time_s=t, analog_gain=k, method="fuzz")
        cmd_pub.publish(cmd)
    n_hist = len(hists)
    assert spin_until(node, lambda: len(hists) > n_hist + 5 and len(applied) > last + 10)
    assert cam.poll() is None and hist.poll() is None, "a node died on bad input"

    limits = CameraLimits.from_yaml()
    for m in applied:
        assert limits.min_exposure_time_s <= m.exposure_time_s <= limits.max_exposure_time_s
        assert limits.min_analog_gain <= m.analog_gain <= limits.max_analog_gain
    for reason in ("exposure_time_s=nan", "exposure_time_s=-0.01 is not positive", "absurdly large", "analog_gain=inf"):
        assert wait_for_log(tmp / "camera.log", reason, node), (tmp / "camera.log").read_text()[-2000:]


def test_out_of_range_and_read_only_parameters_are_refused_with_a_reason(pipeline):
    node, cam, hist, tmp = pipeline
    client = AsyncParameterClient(node, "/bad/camera_bridge")
    assert client.wait_for_services(timeout_sec=60)

    def set_one(name, value):
        fut = client.set_parameters([Parameter(name, value=value)])
        rclpy.spin_until_future_complete(node, fut, timeout_sec=10)
        return fut.result().results[0]

    too_late = set_one("actuation_latency_frames", 9)
    assert not too_late.successful
    read_only = set_one("max_analog_gain", 100.0)
    assert not read_only.successful and "read-only" in read_only.reason.lower()
    wrong_type = set_one("frame_rate_hz", "fast")
    assert not wrong_type.successful
    ok = set_one("actuation_latency_frames", 2)
    assert ok.successful
    fut = client.get_parameters(["actuation_latency_frames", "max_analog_gain"])
    rclpy.spin_until_future_complete(node, fut, timeout_sec=10)
    values = [v.integer_value or v.double_value for v in fut.result().values]
    assert values == [2, node_defaults("camera_bridge")["max_analog_gain"]]
    assert cam.poll() is None
