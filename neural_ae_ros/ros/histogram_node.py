"""histogram_node: raw frame in, the 59 x 256 histogram stack of paper 000 Section 4.1 out.

A malformed image (wrong encoding, size/step mismatch, truncated data) is dropped with a log
line that says what was wrong; the node keeps running.
"""
from __future__ import annotations

import array
import sys

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from neural_ae_ros.msg import HistogramStack

from neural_ae_ros.imaging.histograms import histogram_stack
from neural_ae_ros.imaging.sensor import SensorParams
from . import topics
from .convert import MessageFormatError, image_to_raw
from .params import DeclaredParameters
from .run import run_node


class HistogramNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("histogram_node", **node_kwargs)
        self.params = DeclaredParameters(self, "histogram_node")
        grids = tuple(int(g) for g in self.params["grid_sizes"].split(","))
        if grids != (1, 3, 7):
            raise ValueError(f"grid_sizes {grids}: only the paper's 1,3,7 stack is implemented")
        self.grid_sizes = list(grids)
        self.white_level_dn = int(SensorParams.from_yaml().white_level_dn)
        self.pub = self.create_publisher(HistogramStack, topics.HISTOGRAMS, topics.RECORD_QOS)
        self.create_subscription(Image, topics.IMAGE_RAW, self._on_image, topics.IMAGE_QOS)
        self.dropped = 0

    def _on_image(self, msg: Image) -> None:
        try:
            raw = image_to_raw(msg, self.resolve_topic_name(topics.IMAGE_RAW))
        except MessageFormatError as exc:
            self.dropped += 1
            self.get_logger().error(f"dropped frame: {exc}")
            return
        hist, mean = histogram_stack(raw, self.white_level_dn, return_mean=True)
        out = HistogramStack()
        out.header = msg.header
        out.grid_sizes = self.grid_sizes
        out.num_regions, out.num_bins = int(hist.shape[0]), int(hist.shape[1])
        out.white_level_dn = self.white_level_dn
        out.counts = uint32_array(hist)
        out.mean_level_dn = float(mean)
        self.pub.publish(out)


def uint32_array(values: np.ndarray) -> array.array:
    """numpy -> array.array('I') for a uint32[] field (fast; assigning numpy directly is slow)."""
    out = array.array("I")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def main(args=None) -> int:
    return run_node(HistogramNode, args)


if __name__ == "__main__":
    sys.exit(main())
