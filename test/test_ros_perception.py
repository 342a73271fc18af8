"""ISP and detector nodes across processes: camera_bridge -> isp_node -> detector_node.

Detections and features keep the stamp of their image; features flow only while subscribed;
bad images are dropped with a reason; a bad checkpoint is refused with a reason."""
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from neural_ae_ros.detector.checkpoint import DEFAULT_CHECKPOINT
from neural_ae_ros.msg import FeatureMap
from neural_ae_ros.ros import topics
from neural_ae_ros.ros.convert import stamp_key
from ros_procs import spin_until, start_node, stop_nodes

pytestmark = pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no default detector checkpoint")


def test_detections_and_features_keep_their_image_stamp(tmp_path):
    procs = [start_node("camera_bridge", {"drive": "tunnel", "width": 384, "height": 240, "frame_rate_hz": 10.0},
                        tmp_path / "cam.log", "/perc"),
             start_node("isp_node", {}, tmp_path / "isp.log", "/perc"),
             start_node("detector_node", {}, tmp_path / "det.log", "/perc")]
    rclpy.init()
    try:
        node = rclpy.create_node("perception_test", namespace="/perc")
        images, dets, feats = {}, [], []
        node.create_subscription(Image, topics.IMAGE_RGB, lambda m: images.setdefault(stamp_key(m.header), m),
                                 topics.IMAGE_QOS)
        node.create_subscription(Detection2DArray, topics.DETECTIONS, dets.append, topics.RECORD_QOS)
        assert spin_until(node, lambda: len(dets) >= 3, timeout=60), (tmp_path / "det.log").read_text()[-2000:]
        assert not feats
        node.create_subscription(FeatureMap, topics.FEATURES, feats.append, topics.IMAGE_QOS)
        assert spin_until(node, lambda: len(feats) >= 2, timeout=30)
        rgb = next(iter(images.values()))
        assert rgb.encoding == "rgb8" and (rgb.width, rgb.height) == (384, 240)
        for d in dets:
            assert stamp_key(d.header) in images or stamp_key(d.header) < max(images)
            for det in d.detections:
                assert det.results[0].hypothesis.class_id in ("bike", "bus_truck", "car_van", "person",
                                                             "traffic_light", "traffic_sign")
                assert 0.0 <= det.results[0].hypothesis.score <= 1.0
                assert det.bbox.size_x > 0 and det.bbox.size_y > 0
        f = feats[-1]
        assert (f.layer, f.stride_px, f.channels) == ("conv2", 4, 128)
        assert f.height * f.stride_px == f.input_height and f.width * f.stride_px == f.input_width
        assert len(f.data) == f.channels * f.height * f.width and np.isfinite(np.asarray(f.data)).all()
        assert {stamp_key(x.header) for x in feats} <= {stamp_key(x.header) for x in dets} | set(images)
    finally:
        rclpy.shutdown()
        stop_nodes(procs)


def test_bad_images_and_checkpoints_are_refused_with_a_reason(tmp_path):
    procs = [start_node("detector_node", {}, tmp_path / "det.log", "/badperc")]
    rclpy.init()
    try:
        node = rclpy.create_node("perception_bad", namespace="/badperc")
        pub = node.create_publisher(Image, topics.IMAGE_RGB, topics.IMAGE_QOS)
        assert spin_until(node, lambda: pub.get_subscription_count() >= 1)
        good = np.zeros((240, 384, 3), np.uint8)
        for img in (Image(height=240, width=384, encoding="mono8", step=384, data=good[..., 0].tobytes()),
                    Image(height=240, width=384, encoding="rgb8", step=1152, data=good.tobytes()[:-7]),
                    Image(height=40, width=384, encoding="rgb8", step=1152, data=good[:40].tobytes())):
            pub.publish(img)
            spin_until(node, lambda: False, timeout=0.3)
        corrupt = tmp_path / "corrupt.pt"
        corrupt.write_bytes(b"not a checkpoint")
        client = AsyncParameterClient(node, "/badperc/detector_node")
        assert client.wait_for_services(timeout_sec=20)
        fut = client.set_parameters([Parameter("checkpoint", value=str(corrupt))])
        rclpy.spin_until_future_complete(node, fut, timeout_sec=20)
        result = fut.result().results[0]
        assert not result.successful and "corrupt.pt" in result.reason
        assert procs[0][0].poll() is None, "detector_node died on bad input"
        time.sleep(0.5)
        log = (tmp_path / "det.log").read_text()
        assert "encoding 'mono8', expected 'rgb8'" in log
        assert "(truncated)" in log
        assert "too far from the model input" in log
    finally:
        rclpy.shutdown()
        stop_nodes(procs)
