"""histogram_node: raw frame in, the 59 x 256 histogram stack of paper 000 Section 4.1 out.

No single message stops it: a malformed image (wrong encoding, size/step mismatch, truncated
data, a frame smaller than the 7x7 grid needs) is dropped with a throttled log line that says
what was wrong, counted, and reported on ``/diagnostics`` (WARN); any other exception in the
callback is reported as ERROR and the node keeps running. Configuration the stack cannot use
is refused at start with one line.
"""
from __future__ import annotations

import array
import sys

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from neural_ae_ros.msg import CameraExposureInfo, HistogramStack

from neural_ae_ros.imaging.frame_requirements import histogram_size_problem
from neural_ae_ros.imaging.histograms import GRIDS, histogram_stack, warm_up
from neural_ae_ros.imaging.sensor_params import SensorParams
from . import topics
from .convert import MessageFormatError, camera_info_from_msg, image_to_raw, raw_to_image
from .diagnostics import DiagnosticsReporter, NodeHealth, cause_of, guarded
from .params import DeclaredParameters
from .run import run_node


class HistogramNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("histogram_node", **node_kwargs)
        self.params = DeclaredParameters(self, "histogram_node")
        try:
            grids = tuple(int(g) for g in self.params["grid_sizes"].split(","))
        except ValueError:
            raise ValueError(f"grid_sizes {self.params['grid_sizes']!r}: expected comma-separated integers") from None
        if grids != tuple(GRIDS):
            raise ValueError(f"grid_sizes {grids}: only the paper's {','.join(map(str, GRIDS))} stack is implemented")
        self.grid_sizes = list(grids)
        # The white level (DN) is the camera's: announced on the latched camera_exposure_info.
        # Until that arrives, the sensor file's value is used and the log says so once.
        self.white_level_dn = int(SensorParams.from_yaml().white_level_dn)
        self.white_level_source = "sensor file (no camera_exposure_info yet)"
        # STALE after 1 s without frames (or 5 usual frame intervals at low rates): camera gone
        self.health = NodeHealth(stale_after_s=1.0,
                                 input_name=f"frames on {self.resolve_topic_name(topics.IMAGE_RAW)}")
        self.diagnostics = DiagnosticsReporter(self, self.health)
        self.pub = self.create_publisher(HistogramStack, topics.HISTOGRAMS, topics.RECORD_QOS)
        self.create_subscription(CameraExposureInfo, topics.CAMERA_EXPOSURE_INFO, self._on_camera_info,
                                 topics.LATCHED_QOS)
        # the compiled histogram path for frames as they arrive (a message's buffer), before the first one
        warm_up(image_to_raw(raw_to_image(np.zeros((16, 16), np.uint16), Header())))
        self.create_subscription(Image, topics.IMAGE_RAW, self._on_image, topics.IMAGE_QOS)
        self._warned_no_info = False

    @guarded(cause="camera_info_callback")
    def _on_camera_info(self, msg) -> None:
        topic = self.resolve_topic_name(topics.CAMERA_EXPOSURE_INFO)
        try:
            info = camera_info_from_msg(msg, topic)
        except ValueError as exc:
            self.health.problem("camera_info", str(exc))
            return
        if int(info.white_level_dn) != self.white_level_dn or not self.white_level_source.startswith(topic):
            self.get_logger().info(f"white level {int(info.white_level_dn)} DN from {topic} (session "
                                   f"{info.session_id}; was {self.white_level_dn} DN from {self.white_level_source})")
        self.white_level_dn = int(info.white_level_dn)
        self.white_level_source = f"{topic} session {info.session_id}"

    @property
    def dropped(self) -> int:
        return self.health.counters["dropped_frames"]

    @guarded(cause="histogram_callback")
    def _on_image(self, msg: Image) -> None:
        self.health.frame_in()
        topic = self.resolve_topic_name(topics.IMAGE_RAW)
        try:
            raw = image_to_raw(msg, topic)
        except MessageFormatError as exc:
            self.health.dropped(cause_of(str(exc), "bad_image: "), str(exc))
            return
        problem = histogram_size_problem(msg.width, msg.height, self.grid_sizes)
        if problem:
            self.health.dropped(
                "frame_too_small: " + cause_of(problem),
                f"{topic} (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}): {problem}")
            return
        if not self._warned_no_info and self.white_level_source.startswith("sensor file"):
            self._warned_no_info = True
            self.get_logger().warning(f"{topic}: frame before camera_exposure_info; histogram bins use the sensor "
                                      f"file's white level {self.white_level_dn} DN until the camera announces its own")
        hist = histogram_stack(raw, self.white_level_dn)  # the mean level comes with AppliedExposure
        out = HistogramStack()
        out.header = msg.header
        out.grid_sizes = self.grid_sizes
        out.num_regions, out.num_bins = int(hist.shape[0]), int(hist.shape[1])
        out.white_level_dn = self.white_level_dn
        out.counts = uint32_array(hist)
        self.pub.publish(out)
        self.health.frame_out()


def uint32_array(values: np.ndarray) -> array.array:
    """numpy -> array.array('I') for a uint32[] field (fast; assigning numpy directly is slow)."""
    out = array.array("I")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def main(args=None) -> int:
    return run_node(HistogramNode, args)


if __name__ == "__main__":
    sys.exit(main())
