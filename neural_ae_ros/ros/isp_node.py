"""isp_node: raw frame (bayer_rggb16) in, rgb8 out with the same header, through the same
differentiable ISP as training (neural_ae_ros.imaging.isp). Malformed frames are dropped with a log line
that says what was wrong; the node keeps running. ISP parameters are live (rqt)."""
from __future__ import annotations

import sys

from rclpy.node import Node
from sensor_msgs.msg import Image

from neural_ae_ros.imaging.isp import IspInputError, load_isp
from neural_ae_ros.imaging.sensor import SensorParams
from . import topics
from .convert import MessageFormatError, image_to_raw, rgb_to_image
from .params import DeclaredParameters
from .run import run_node


class IspNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("isp_node", **node_kwargs)
        self.sensor = SensorParams.from_yaml()
        self.params = DeclaredParameters(self, "isp_node", on_change=lambda *_: self._build())
        self._build()
        self.pub = self.create_publisher(Image, topics.IMAGE_RGB, topics.IMAGE_QOS)
        self.create_subscription(Image, topics.IMAGE_RAW, self._on_image, topics.IMAGE_QOS)
        self.dropped = 0

    def _build(self) -> None:
        v = self.params.values
        self.isp = load_isp(sensor_params=self.sensor, demosaic=v["demosaic"], binning=v["binning"],
                            digital_gain=v["digital_gain"], gamma=v["gamma"])

    def _on_image(self, msg: Image) -> None:
        try:
            raw = image_to_raw(msg, self.resolve_topic_name(topics.IMAGE_RAW))
            rgb = self.isp.to_rgb8(raw)
        except (MessageFormatError, IspInputError) as exc:
            self.dropped += 1
            self.get_logger().error(f"dropped frame: {exc}")
            return
        self.pub.publish(rgb_to_image(rgb, msg.header))


def main(args=None) -> int:
    return run_node(IspNode, args)


if __name__ == "__main__":
    sys.exit(main())
