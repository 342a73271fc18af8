"""ISP and detector nodes across processes: camera_bridge -> isp_node -> detector_node.

Detections and features keep the stamp of their image; features are computed only while someone
subscribes (subscribe, unsubscribe, then none); bad images are dropped with a reason; a bad
checkpoint is refused with a reason."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from neural_ae_ros.classes import CLASS_NAMES
from neural_ae_ros.detector.checkpoint import DEFAULT_CHECKPOINT
from neural_ae_ros.msg import FeatureMap
from neural_ae_ros.ros import topics
from neural_ae_ros.ros.convert import stamp_key
from ros_procs import spin_until, start_node, stop_nodes, wait_for_log

ECHO = Path(__file__).resolve().parent / "ros_echo.py"


def test_the_shipped_checkpoint_is_present():
    assert DEFAULT_CHECKPOINT.is_file(), f"{DEFAULT_CHECKPOINT}: the shipped detector checkpoint is missing"


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
        node.create_subscription(FeatureMap, topics.FEATURES, feats.append, topics.IMAGE_QOS)
        assert spin_until(node, lambda: len(feats) >= 2, timeout=30)
        rgb = next(iter(images.values()))
        assert rgb.encoding == "rgb8" and (rgb.width, rgb.height) == (384, 240)
        for d in dets:
            assert stamp_key(d.header) in images or stamp_key(d.header) < max(images)
            for det in d.detections:
                assert det.results[0].hypothesis.class_id in CLASS_NAMES
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
        assert spin_until(node, lambda: pub.get_subscription_count() >= 1, timeout=90), \
            "detector_node did not subscribe (model load at configure): " + (tmp_path / "det.log").read_text()[-2000:]
        good = np.zeros((240, 384, 3), np.uint8)
        for img, reason in (
                (Image(height=240, width=384, encoding="mono8", step=384, data=good[..., 0].tobytes()),
                 "encoding 'mono8', expected 'rgb8'"),
                (Image(height=240, width=384, encoding="rgb8", step=1152, data=good.tobytes()[:-7]), "(truncated)"),
                (Image(height=40, width=384, encoding="rgb8", step=1152, data=good[:40].tobytes()),
                 "too far from the model input")):
            pub.publish(img)  # one at a time: the image queue is short by design
            assert wait_for_log(tmp_path / "det.log", reason, node), (tmp_path / "det.log").read_text()[-2000:]
        corrupt = tmp_path / "corrupt.pt"
        corrupt.write_bytes(b"not a checkpoint")
        client = AsyncParameterClient(node, "/badperc/detector_node")
        assert client.wait_for_services(timeout_sec=20)
        fut = client.set_parameters([Parameter("checkpoint", value=str(corrupt))])
        rclpy.spin_until_future_complete(node, fut, timeout_sec=20)
        result = fut.result().results[0]
        assert not result.successful and "corrupt.pt" in result.reason
        assert procs[0][0].poll() is None, "detector_node died on bad input"
    finally:
        rclpy.shutdown()
        stop_nodes(procs)


def test_features_are_computed_only_while_someone_subscribes(tmp_path):
    """Subscribe (another process), unsubscribe, then assert: no feature map is computed or sent.

    The detector node runs in this process so that its model calls can be counted; images come
    from this process too, the features subscriber is a separate process (test/ros_echo.py)."""
    from rclpy.executors import SingleThreadedExecutor

    from neural_ae_ros.ros.detector_node import DetectorNode

    rclpy.init()
    echo = None
    try:
        det = DetectorNode(namespace="/featgate")
        det.autostart()  # lifecycle: configure (loads the model) and activate
        assert det.runtime is not None and det.active
        asked = []  # want_features of every model call
        sent = []  # stamps of published feature maps
        detect, publish = det.runtime.detect, det.feat_pub.publish
        det.runtime.detect = lambda rgb, enc="rgb8", want_features=False: (
            asked.append(want_features), detect(rgb, enc, want_features=want_features))[1]
        det.feat_pub.publish = lambda msg: (sent.append(stamp_key(msg.header)), publish(msg))[1]
        node = rclpy.create_node("featgate_test", namespace="/featgate")
        executor = SingleThreadedExecutor()
        executor.add_node(det)
        executor.add_node(node)

        def spin_until_(cond, timeout=30.0):
            deadline = time.monotonic() + timeout
            while not cond() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            return cond()

        img_pub = node.create_publisher(Image, topics.IMAGE_RGB, topics.IMAGE_QOS)
        echoed = []
        node.create_subscription(FeatureMap, "features_echo", echoed.append, topics.IMAGE_QOS)
        assert spin_until_(lambda: img_pub.get_subscription_count() >= 1)
        rng = np.random.default_rng(0)
        frame = [0]

        def one_image():
            """Publish one image and wait until the detector has run on it."""
            n = len(asked)
            frame[0] += 1
            img = Image(height=240, width=384, encoding="rgb8", step=1152,
                        data=rng.integers(0, 256, (240, 384, 3), np.uint8).tobytes())
            img.header.stamp.sec = frame[0]
            img_pub.publish(img)
            assert spin_until_(lambda: len(asked) > n), "the detector did not process the image"

        for _ in range(2):  # nobody subscribed yet
            one_image()
        assert asked == [False] * 2 and not sent

        echo = subprocess.Popen([sys.executable, str(ECHO), "neural_ae_ros.msg/FeatureMap", "/featgate/features",
                                 "/featgate/features_echo"], stdout=subprocess.PIPE, text=True)
        assert echo.stdout.readline().strip() == "ready"
        assert spin_until_(lambda: det.feat_pub.get_subscription_count() == 1 and node.count_publishers(
            "/featgate/features_echo") >= 1)
        n_before = len(asked)
        while len(echoed) < 2 and len(asked) < n_before + 20:
            one_image()
        assert spin_until_(lambda: len(echoed) >= 2), "features did not reach the subscribing process"
        assert all(asked[n_before:]) and sent

        echo.send_signal(signal.SIGINT)  # the only subscriber leaves
        echo.wait(timeout=10)
        assert spin_until_(lambda: det.feat_pub.get_subscription_count() == 0)
        n_asked, n_sent = len(asked), len(sent)
        for _ in range(2):
            one_image()
        assert asked[n_asked:] == [False] * 2, "feature maps computed after the last subscriber left"
        assert len(sent) == n_sent, "feature maps sent after the last subscriber left"
    finally:
        if echo is not None and echo.poll() is None:
            echo.kill()
        rclpy.shutdown()
