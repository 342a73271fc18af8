"""The histogram node bins raw levels against the white level the camera announces on the latched
camera_exposure_info (one source of truth), not its own copy of the sensor file."""
from dataclasses import replace

import numpy as np
import rclpy
from std_msgs.msg import Header

from neural_ae_ros.imaging.exposure import CameraExposureInfo
from neural_ae_ros.msg import CameraExposureInfo as CameraExposureInfoMsg
from neural_ae_ros.msg import HistogramStack
from neural_ae_ros.ros import topics
from neural_ae_ros.ros.convert import camera_info_to_msg, raw_to_image
from ros_procs import spin_until, start_node, stop_nodes, wait_for_log


def test_histograms_use_the_announced_white_level(tmp_path):
    sensor_info = CameraExposureInfo.from_yaml()
    announced = replace(sensor_info, white_level_dn=1023, saturation_level_dn=1023.0, session_id=77)
    assert announced.white_level_dn != sensor_info.white_level_dn
    procs = [start_node("histogram_node", {}, tmp_path / "hist.log", "/wl")]
    rclpy.init()
    node = rclpy.create_node("white_level_test", namespace="/wl")
    try:
        hists = []
        node.create_subscription(HistogramStack, topics.HISTOGRAMS, hists.append, topics.RECORD_QOS)
        info_pub = node.create_publisher(CameraExposureInfoMsg, topics.CAMERA_EXPOSURE_INFO, topics.LATCHED_QOS)
        img_pub = node.create_publisher(type(raw_to_image(np.zeros((2, 2), np.uint16), Header())), topics.IMAGE_RAW,
                                        topics.IMAGE_QOS)
        info_pub.publish(camera_info_to_msg(announced, Header(frame_id="camera")))
        assert wait_for_log(tmp_path / "hist.log", "white level 1023 DN from /wl/camera_exposure_info", node,
                            timeout=60), (tmp_path / "hist.log").read_text()[-2000:]
        raw = np.full((64, 64), 1000, np.uint16)  # 98 % of 1023, 24 % of the sensor file's white level
        assert spin_until(node, lambda: img_pub.get_subscription_count() >= 1, timeout=30)
        n = 0
        while not hists and n < 50:
            img_pub.publish(raw_to_image(raw, Header(frame_id="camera")))
            spin_until(node, lambda: bool(hists), timeout=0.5)
            n += 1
        assert hists, "no histogram stack came back"
        h = hists[-1]
        assert h.white_level_dn == 1023
        counts = np.asarray(h.counts, np.int64).reshape(h.num_regions, h.num_bins)
        assert int(np.argmax(counts[0])) == int(1000 * h.num_bins / 1024)  # bin of 1000 DN on a 1023 scale
    finally:
        node.destroy_node()
        rclpy.shutdown()
        stop_nodes(procs)
