"""ae_controller: per frame, join histograms (+ raw image for the gradient method) with the
exposure the frame was captured with, run the selected AE method, publish an ExposureCommand.

The method, Eq. 5 smoothing, Eq. 6 split and method constants are live parameters (rqt or
``ros2 param set``); the camera limits are read-only. Commands are always clamped.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import Image

from neural_ae_ros.msg import AppliedExposure, ExposureCommand, HistogramStack

from ..ae import ExposureController, Observation, make_method
from neural_ae_ros.imaging.exposure import CameraLimits
from neural_ae_ros.imaging.sensor import SensorParams
from . import topics
from .convert import MessageFormatError, image_to_raw, stamp_key
from .params import DeclaredParameters
from .run import run_node

#: Methods that look at the raw image, not only at the histograms.
_NEEDS_RAW = {"gradient"}
#: Frames kept while waiting for the other half of a join.
_MAX_PENDING = 30


@dataclass
class _Pending:
    exposure: Optional[AppliedExposure] = None
    histograms: Optional[HistogramStack] = None
    raw: Optional[np.ndarray] = None


def method_kwargs(name: str, values: Dict) -> Dict:
    """Constructor arguments of AE method ``name`` from the node's parameter values."""
    if name == "average":
        return {"target_fraction": values["target_level_fraction"]}
    if name == "gradient":
        return {"lam": values["gradient_lambda"], "delta": values["gradient_delta"], "kp": values["gradient_kp"]}
    return {}


class AeControllerNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("ae_controller", **node_kwargs)
        self.image_sub = None
        self.params = DeclaredParameters(self, "ae_controller", on_change=lambda *_: self._build_controller())
        sensor = SensorParams.from_yaml()
        self.white_level_dn = int(sensor.white_level_dn)
        self.black_level_dn = float(sensor.black_level_dn)
        self._build_controller()
        self.pending: Dict[int, _Pending] = {}
        self.cmd_pub = self.create_publisher(ExposureCommand, topics.EXPOSURE_COMMAND, topics.RECORD_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, 10)
        self.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, self._on_exposure, topics.RECORD_QOS)
        self.create_subscription(HistogramStack, topics.HISTOGRAMS, self._on_histograms, topics.RECORD_QOS)
        self._update_image_subscription()
        self.commands_sent = 0
        self.dropped = 0

    def _build_controller(self) -> None:
        v = self.params.values
        limits = CameraLimits(v["min_exposure_time_s"], v["max_exposure_time_s"],
                              v["min_analog_gain"], v["max_analog_gain"])
        method = make_method(v["method"], **method_kwargs(v["method"], v))
        self.controller = ExposureController(method, limits, t_max_s=v["t_max_s"], mu=v["ema_mu"],
                                             wait_for_applied_command=v["wait_for_applied_command"])
        self.get_logger().info(f"AE method '{v['method']}', mu={v['ema_mu']}, T_max={v['t_max_s']} s")
        if hasattr(self, "pending"):
            self._update_image_subscription()

    def _update_image_subscription(self) -> None:
        """Raw images cross the middleware to this node only for methods that use them."""
        wanted = self.params["method"] in _NEEDS_RAW
        if wanted and self.image_sub is None:
            self.image_sub = self.create_subscription(Image, topics.IMAGE_RAW, self._on_image, topics.IMAGE_QOS)
        elif not wanted and self.image_sub is not None:
            self.destroy_subscription(self.image_sub)
            self.image_sub = None

    # -- joins ------------------------------------------------------------------------------
    def _slot(self, header) -> _Pending:
        key = stamp_key(header)
        slot = self.pending.get(key)
        if slot is None:
            slot = self.pending[key] = _Pending()
            if len(self.pending) > _MAX_PENDING:
                oldest = min(self.pending)
                del self.pending[oldest]
                self.dropped += 1
        return slot

    def _on_exposure(self, msg: AppliedExposure) -> None:
        self._slot(msg.header).exposure = msg
        self._try(msg.header)

    def _on_histograms(self, msg: HistogramStack) -> None:
        self._slot(msg.header).histograms = msg
        self._try(msg.header)

    def _on_image(self, msg: Image) -> None:
        if self.params["method"] not in _NEEDS_RAW:
            return
        try:
            raw = image_to_raw(msg, self.resolve_topic_name(topics.IMAGE_RAW))
        except MessageFormatError as exc:
            self.get_logger().error(f"dropped frame: {exc}")
            return
        self._slot(msg.header).raw = raw
        self._try(msg.header)

    def _try(self, header) -> None:
        key = stamp_key(header)
        slot = self.pending.get(key)
        if slot is None or slot.exposure is None or slot.histograms is None:
            return
        needs_raw = self.params["method"] in _NEEDS_RAW
        if needs_raw and slot.raw is None:
            return
        del self.pending[key]
        self._decide(slot, needs_raw)

    # -- decision ---------------------------------------------------------------------------
    def _decide(self, slot: _Pending, needs_raw: bool) -> None:
        exp, hist = slot.exposure, slot.histograms
        counts = np.frombuffer(hist.counts, dtype=np.uint32)
        if counts.size != hist.num_regions * hist.num_bins:
            self.get_logger().error(
                f"histograms of frame {exp.frame_index}: {counts.size} counts for "
                f"{hist.num_regions} x {hist.num_bins}; frame skipped")
            return
        obs = Observation(
            frame_index=int(exp.frame_index),
            exposure_time_s=exp.exposure_time_s,
            analog_gain=exp.analog_gain,
            mean_level_dn=float(exp.mean_level_dn),  # computed once per frame, by the camera
            raw=slot.raw if needs_raw else None,
            histograms=counts.reshape(hist.num_regions, hist.num_bins),
            white_level_dn=self.white_level_dn,
            black_level_dn=self.black_level_dn,
            command_source_frame_index=int(exp.command_source_frame_index) if exp.from_command else -1,
        )
        values = self.controller.update(obs)
        for problem in values.problems:
            self.get_logger().warning(problem)
        cmd = ExposureCommand()
        cmd.header = exp.header
        cmd.source_frame_index = values.source_frame_index
        cmd.target_frame_index = values.source_frame_index + 1
        cmd.exposure_time_s = values.exposure_time_s
        cmd.analog_gain = values.analog_gain
        cmd.effective_exposure_s = values.effective_exposure_s
        cmd.delta_ev = math.log2(values.effective_exposure_s / obs.effective_exposure_s)
        cmd.method = values.method
        cmd.clamped = values.clamped
        self.cmd_pub.publish(cmd)
        self.commands_sent += 1
        if self.commands_sent % 30 == 1:
            self._publish_diagnostics(cmd, obs)

    def _publish_diagnostics(self, cmd: ExposureCommand, obs: Observation) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = cmd.header.stamp
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: auto exposure"
        status.hardware_id = "neural_ae_ros"
        status.level = DiagnosticStatus.WARN if cmd.clamped else DiagnosticStatus.OK
        status.message = "command clamped to camera limits" if cmd.clamped else "ok"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("method", cmd.method), ("frame", obs.frame_index), ("mean_level_dn", round(obs.mean_level_dn, 1)),
            ("exposure_time_s", cmd.exposure_time_s), ("analog_gain", cmd.analog_gain),
            ("delta_ev", round(cmd.delta_ev, 3)), ("commands_sent", self.commands_sent),
            ("joins_dropped", self.dropped))]
        arr.status = [status]
        self.diag_pub.publish(arr)


def main(args=None) -> int:
    return run_node(AeControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
