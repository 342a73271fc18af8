"""Every custom message and vision_msgs/Detection2DArray crosses a process boundary intact
(real rclpy, Fast DDS over shared memory)."""
import array
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from neural_ae_ros.msg import AppliedExposure, ExposureCommand, FeatureMap, HistogramStack
from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

ECHO = Path(__file__).with_name("ros_echo.py")


def _exposure_command():
    m = ExposureCommand()
    m.header.stamp.sec, m.header.stamp.nanosec = 12, 345
    m.header.frame_id = "cam"
    m.source_frame_index, m.target_frame_index = 41, 42
    m.exposure_time_s, m.analog_gain = 0.0123, 2.5
    m.effective_exposure_s, m.delta_ev = 0.0123 * 2.5, -0.75
    m.method, m.clamped = "gradient", True
    return m


def _applied_exposure():
    m = AppliedExposure()
    m.header.stamp.sec, m.header.stamp.nanosec = 7, 999_999_999
    m.frame_index, m.exposure_time_s, m.analog_gain = 2**40, 1e-5, 15.85
    m.effective_exposure_s = 1e-5 * 15.85
    m.from_command, m.command_source_frame_index, m.command_method, m.clamped = True, 2**40 - 4, "average", False
    m.mean_level_dn = 2047.5
    return m


def _histograms():
    m = HistogramStack()
    m.header.frame_id = "cam"
    m.grid_sizes = [1, 3, 7]
    m.num_regions, m.num_bins, m.white_level_dn = 59, 256, 4095
    m.counts = array.array("I", range(59 * 256))
    return m


def _features():
    m = FeatureMap()
    m.header.frame_id = "cam"
    m.layer, m.stride_px, m.input_width, m.input_height = "conv2", 4, 384, 240
    m.channels, m.height, m.width = 128, 60, 96
    m.data = array.array("f", (float(i % 97) * 0.5 for i in range(128 * 60 * 96)))
    return m


def _detections():
    arr = Detection2DArray()
    arr.header.frame_id = "cam"
    for i in range(3):
        d = Detection2D()
        d.header = arr.header
        d.id = f"obj{i}"
        d.bbox = BoundingBox2D()
        d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.center.theta = 10.0 + i, 20.5, 0.0
        d.bbox.size_x, d.bbox.size_y = 30.0, 40.25
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id, h.hypothesis.score = "car_van", 0.875
        h.pose.covariance[0] = 1.5
        d.results = [h]
        arr.detections.append(d)
    return arr


CASES = [
    ("neural_ae_ros.msg/ExposureCommand", _exposure_command),
    ("neural_ae_ros.msg/AppliedExposure", _applied_exposure),
    ("neural_ae_ros.msg/HistogramStack", _histograms),
    ("neural_ae_ros.msg/FeatureMap", _features),
    ("vision_msgs.msg/Detection2DArray", _detections),
]


@pytest.mark.parametrize("type_name,make", CASES, ids=[c[0].split("/")[1] for c in CASES])
def test_round_trip_between_processes(type_name, make):
    module, cls = type_name.split("/")
    msg_type = type(make())
    echo = subprocess.Popen([sys.executable, str(ECHO), type_name, "rt_in", "rt_out"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert echo.stdout.readline().strip() == "ready"
        rclpy.init()
        node = rclpy.create_node("rt_test")
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        got = []
        pub = node.create_publisher(msg_type, "rt_in", qos)
        node.create_subscription(msg_type, "rt_out", got.append, qos)
        deadline = time.monotonic() + 20
        while (pub.get_subscription_count() < 1 or node.count_publishers("rt_out") < 1) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        sent = make()
        pub.publish(sent)
        while not got and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        assert got, f"{type_name} did not come back from the echo process"
        assert got[0] == sent
    finally:
        if rclpy.ok():
            rclpy.shutdown()
        echo.send_signal(signal.SIGINT)
        echo.wait(timeout=10)
