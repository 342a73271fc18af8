"""isp_node: raw frame (bayer_rggb16) in, rgb8 out with the same header, through the same
differentiable ISP as training (neural_ae_ros.imaging.isp). ISP parameters are live (rqt).

A lifecycle node (``rclpy.lifecycle``): ``configure`` builds the ISP, ``activate`` starts
publishing, ``deactivate`` stops, ``cleanup`` frees; ``autostart`` (default true) does
configure + activate at start so no lifecycle manager is needed. No single message stops it:
malformed frames are dropped with a throttled log line that says what was wrong, any other
exception in the callback is reported as ERROR on ``/diagnostics``; frames it is too slow for
are counted against the camera's ``exposure`` records and reported.
"""
from __future__ import annotations

import sys

from sensor_msgs.msg import Image

from neural_ae_ros.msg import AppliedExposure

from neural_ae_ros.imaging.isp import IspInputError, load_isp
from neural_ae_ros.imaging.sensor import SensorParams
from . import topics
from .convert import MessageFormatError, image_to_raw, rgb_to_image, stamp_key
from .diagnostics import DiagnosticsReporter, NodeHealth, SkipCounter, cause_of, guarded
from .lifecycle import LoadingNode
from .params import DeclaredParameters
from .run import run_node


class IspNode(LoadingNode):
    load_cause = "isp"

    def __init__(self, **node_kwargs) -> None:
        super().__init__("isp_node", **node_kwargs)
        self.sensor = SensorParams.from_yaml()
        self.params = DeclaredParameters(self, "isp_node", on_change=lambda *_: self._rebuild())
        self.health = NodeHealth(stale_after_s=None)
        self.diagnostics = DiagnosticsReporter(self, self.health)
        self.skips = SkipCounter()
        self.isp = None
        self.pub = None
        self._init_lifecycle()

    @property
    def dropped(self) -> int:
        return self.health.counters["dropped_frames"]

    def _build(self):
        v = self.params.values
        return load_isp(sensor_params=self.sensor, demosaic=v["demosaic"], binning=v["binning"],
                        digital_gain=v["digital_gain"], gamma=v["gamma"])

    def _rebuild(self) -> None:
        if self.isp is not None:
            self.isp = self._build()

    # -- lifecycle (LoadingNode) ---------------------------------------------------------------
    def load(self) -> None:
        self.isp = self._build()

    def connect(self):
        self.pub = self.create_lifecycle_publisher(Image, topics.IMAGE_RGB, topics.IMAGE_QOS)
        subs = [self.create_subscription(Image, topics.IMAGE_RAW, self._on_image, topics.IMAGE_QOS),
                self.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, self._on_exposure,
                                         topics.RECORD_QOS)]
        return [self.pub], subs

    def free(self) -> None:
        self.pub = None
        self.isp = None

    # -- frames -----------------------------------------------------------------------------
    def _on_exposure(self, msg: AppliedExposure) -> None:
        if self.active:
            self.skips.upstream(stamp_key(msg.header))

    @guarded(cause="isp_callback")
    def _on_image(self, msg: Image) -> None:
        if not self.active or self.isp is None:
            return
        self.health.frame_in()
        try:
            raw = image_to_raw(msg, self.resolve_topic_name(topics.IMAGE_RAW))
            rgb = self.isp.to_rgb8(raw)
        except (MessageFormatError, IspInputError) as exc:
            self.health.dropped(cause_of(str(exc), "bad_image: "), str(exc))
            return
        self.pub.publish(rgb_to_image(rgb, msg.header))
        self.health.frame_out()
        if self.skips.done(stamp_key(msg.header)):
            self.health.set_value("frames_skipped", self.skips.skipped)
            self.health.dropped("skipped_frames", f"isp skipped {self.skips.skipped} of "
                                f"{self.skips.skipped + self.skips.processed} camera frames so far "
                                f"(slower than the camera)")


def main(args=None) -> int:
    return run_node(IspNode, args, after_start=lambda node: node.autostart())


if __name__ == "__main__":
    sys.exit(main())
