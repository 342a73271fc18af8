"""ae_controller: per frame, join what the AE method needs (histograms, + the raw image for
methods that look at it) with the exposure the frame was captured with, run the controller,
publish an ExposureCommand.

Camera facts (limits, T_max, levels, latency, session) come from the camera's latched
``camera_exposure_info``; frames before it arrived are skipped (counted, throttled log). A new
camera session resets the controller (its frame indices restart). Method, smoothing and method
constants are live parameters: a change is validated first (on-set) and then applied in place,
so the controller keeps its state and the exposure stays continuous.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Optional

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from neural_ae_ros.msg import AppliedExposure, AttentionWeights, CameraExposureInfo, ExposureCommand, HistogramStack

from ..ae import INPUT_RAW, INPUT_RGB, ControllerSettings, ExposureController, Observation, make_method, method_class, method_kwargs
from . import topics
from .convert import (MessageFormatError, StampJoin, applied_from_msg, camera_info_from_msg, command_to_msg,
                      image_to_raw, image_to_rgb, stamp_key)
from .diagnostics import ERROR, DiagnosticsReporter, NodeHealth, cause_of, guarded
from .params import DeclaredParameters
from .run import run_node

#: Frames kept while waiting for the other parts of a join.
_MAX_PENDING = 30
_SETTINGS = set(ControllerSettings.names())


def controller_settings(values: Dict[str, Any]) -> ControllerSettings:
    return ControllerSettings(**{k: values[k] for k in _SETTINGS if k in values})


class AeControllerNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("ae_controller", **node_kwargs)
        self.image_sub = None
        self.rgb_sub = None
        self.weights_announced = None  # the last AttentionWeights that loaded (re-applied when attention_rl is remade)
        self.controller: Optional[ExposureController] = None
        self.params = DeclaredParameters(self, "ae_controller", on_change=self._apply_parameter,
                                         extra_validator=self._check_parameter)
        self.health = NodeHealth(stale_after_s=None)
        self.diagnostics = DiagnosticsReporter(self, self.health)
        self.join = StampJoin(self._required_parts(self.params["method"]), _MAX_PENDING)
        self.cmd_pub = self.create_publisher(ExposureCommand, topics.EXPOSURE_COMMAND, topics.RECORD_QOS)
        self.create_subscription(CameraExposureInfo, topics.CAMERA_EXPOSURE_INFO, self._on_camera_info,
                                 topics.LATCHED_QOS)
        self.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, self._on_exposure, topics.RECORD_QOS)
        self.create_subscription(HistogramStack, topics.HISTOGRAMS, self._on_histograms, topics.RECORD_QOS)
        self._update_image_subscription()
        self.commands_sent = 0
        # attention_rl (paper 001): personalised weights swap in while running (personalization_node)
        self.weights_active_pub = self.create_publisher(AttentionWeights, topics.ATTENTION_RL_WEIGHTS_ACTIVE,
                                                        topics.LATCHED_QOS)
        self.create_subscription(AttentionWeights, topics.ATTENTION_RL_WEIGHTS, self._on_weights, topics.LATCHED_QOS)

    # -- camera facts -----------------------------------------------------------------------
    @guarded(cause="camera_info_callback")
    def _on_camera_info(self, msg) -> None:
        try:
            info = camera_info_from_msg(msg, self.resolve_topic_name(topics.CAMERA_EXPOSURE_INFO))
        except ValueError as exc:
            self.health.problem("camera_info", str(exc))
            return
        if self.controller is None:
            v = self.params.values
            self.controller = ExposureController(self._make_method(v), info, controller_settings(v))
            self.get_logger().info(f"camera session {info.session_id}: AE method '{v['method']}', "
                                   f"smoothing {v['smoothing']}, latency {info.actuation_latency_frames} frames")
        else:
            if info.session_id != self.controller.camera.session_id:
                self.join.reset()
                self.get_logger().info(f"new camera session {info.session_id} (was "
                                       f"{self.controller.camera.session_id}): controller state reset")
            self.controller.set_camera(info)
        self.health.clear("no_camera_info")

    # -- parameters: validate (on-set), then apply in place (post-set) ----------------------
    def _check_parameter(self, name: str, value: Any) -> Optional[str]:
        v = dict(self.params.values, **{name: value})
        try:
            problems = controller_settings(v).problems()
            if problems:
                return "; ".join(problems)
            make_method(v["method"], **method_kwargs(v["method"], v))
        except (TypeError, ValueError) as exc:
            return f"{name}={value!r}: {exc}"
        return None

    def _apply_parameter(self, name: str, value: Any) -> None:
        v = self.params.values
        if self.controller is None:
            return  # applied when the camera info arrives
        if name in _SETTINGS:
            self.controller.configure(**{name: value})
        elif name == "method" or name in {p.name for p in method_class(v["method"]).parameters}:
            self.controller.set_method(self._make_method(v))
            self.join.set_required(self._required_parts(v["method"]))
            self._update_image_subscription()

    @staticmethod
    def _required_parts(method: str):
        inputs = method_class(method).inputs
        return ({"exposure", "histograms"} | ({"raw"} if INPUT_RAW in inputs else set())
                | ({"rgb"} if INPUT_RGB in inputs else set()))

    def _update_image_subscription(self) -> None:
        """Raw images (image_raw) and ISP output (image_rgb) cross the middleware to this node only
        for methods that use them."""
        inputs = method_class(self.params["method"]).inputs
        for attr, kind, topic, callback in (("image_sub", INPUT_RAW, topics.IMAGE_RAW, self._on_image),
                                            ("rgb_sub", INPUT_RGB, topics.IMAGE_RGB, self._on_rgb)):
            sub = getattr(self, attr)
            if kind in inputs and sub is None:
                setattr(self, attr, self.create_subscription(Image, topic, callback, topics.IMAGE_QOS))
            elif kind not in inputs and sub is not None:
                self.destroy_subscription(sub)
                setattr(self, attr, None)

    # -- attention_rl weights (paper 001 personalisation) ------------------------------------
    def _make_method(self, v: Dict[str, Any]):
        method = make_method(v["method"], **method_kwargs(v["method"], v))
        if hasattr(method, "swap_weights") and (self.weights_announced is None
                                                or not self._swap_weights(method, self.weights_announced)):
            self._announce_active(method, "", 0)
        return method

    @guarded(cause="weights_callback")
    def _on_weights(self, msg: AttentionWeights) -> None:
        method = self.controller.method if self.controller is not None else None
        if method is None or not hasattr(method, "swap_weights"):
            self.weights_announced = msg  # checked and loaded when attention_rl is made
            self.get_logger().info(f"attention_rl weights of profile {msg.profile!r} announced ({msg.path}); "
                                   "loaded when attention_rl runs")
            return
        self._swap_weights(method, msg)

    def _swap_weights(self, method, msg: AttentionWeights) -> bool:
        """Load the announced file into ``method`` if its sha256 is the announced one; a refusal
        is logged and reported (ERROR) and the running weights stay."""
        where = f"{self.resolve_topic_name(topics.ATTENTION_RL_WEIGHTS)} (profile {msg.profile!r}, {msg.path})"
        try:
            method.swap_weights(msg.path, expected_sha256=msg.sha256)
        except Exception as exc:  # noqa: BLE001 - CheckpointError, OSError, torch errors: refuse, keep running
            running = getattr(method, "weights_sha256", "") or "none"
            self.health.problem(cause_of(str(exc), "weights_refused: "), f"{where}: refused: {exc}; still running "
                                f"weights {running[:12]}...", level=ERROR)
            return False
        self.weights_announced = msg
        self.get_logger().info(f"attention_rl weights swapped in: profile {msg.profile!r}, {msg.labels} feedback "
                               f"labels, sha256 {msg.sha256[:12]}... ({msg.path})")
        self._announce_active(method, msg.profile, msg.labels)
        return True

    def _announce_active(self, method, profile: str, labels: int) -> None:
        out = AttentionWeights(profile=profile, path=str(method.weights_path), sha256=method.weights_sha256,
                               labels=int(labels))
        out.header.stamp = self.get_clock().now().to_msg()
        self.weights_active_pub.publish(out)
        self.health.set_value("attention_rl_weights_sha256", method.weights_sha256)
        self.health.set_value("attention_rl_profile", profile or "(shipped)")

    # -- joins ------------------------------------------------------------------------------
    def _add(self, header, part: str, value) -> None:
        evicted = self.join.evicted
        parts = self.join.add(stamp_key(header), part, value)
        if self.join.evicted > evicted:
            stamp, have = self.join.last_evicted
            self.health.failed_join("join_evicted", f"frame stamp {stamp} ns had only {', '.join(have)} after "
                                    f"{_MAX_PENDING} newer frames; skipped")
        if parts is not None:
            self._decide(parts)

    @guarded(cause="exposure_callback")
    def _on_exposure(self, msg: AppliedExposure) -> None:
        self.health.frame_in()
        self._add(msg.header, "exposure", msg)

    @guarded(cause="histograms_callback")
    def _on_histograms(self, msg: HistogramStack) -> None:
        self._add(msg.header, "histograms", msg)

    @guarded(cause="image_callback")
    def _on_image(self, msg: Image) -> None:
        if "raw" not in self.join.required:
            return
        try:
            raw = image_to_raw(msg, self.resolve_topic_name(topics.IMAGE_RAW))
        except MessageFormatError as exc:
            self.health.dropped(cause_of(str(exc), "bad_image: "), str(exc))
            return
        self._add(msg.header, "raw", raw)

    @guarded(cause="rgb_callback")
    def _on_rgb(self, msg: Image) -> None:
        if "rgb" not in self.join.required:
            return
        try:
            rgb = image_to_rgb(msg, self.resolve_topic_name(topics.IMAGE_RGB))
        except MessageFormatError as exc:
            self.health.dropped(cause_of(str(exc), "bad_image: "), str(exc))
            return
        self._add(msg.header, "rgb", rgb)

    # -- decision ---------------------------------------------------------------------------
    def _decide(self, parts: Dict[str, Any]) -> None:
        exp, hist = parts["exposure"], parts["histograms"]
        if self.controller is None:
            self.health.problem("no_camera_info", f"frame {exp.frame_index}: no camera_exposure_info yet (limits, "
                                "latency, session); frame skipped")
            return
        if exp.session_id not in (0, self.controller.camera.session_id):
            self.health.failed_join("other_session", f"frame {exp.frame_index} of camera session {exp.session_id}, "
                                    f"camera info is session {self.controller.camera.session_id}; frame skipped")
            return
        counts = np.frombuffer(hist.counts, dtype=np.uint32)
        if counts.size != hist.num_regions * hist.num_bins:
            self.health.dropped("histogram_size", f"histograms of frame {exp.frame_index}: {counts.size} counts for "
                                f"{hist.num_regions} x {hist.num_bins}; frame skipped")
            return
        cam = self.controller.camera
        exposure = applied_from_msg(exp)
        obs = Observation(exposure, mean_level_dn=float(exp.mean_level_dn), raw=parts.get("raw"), rgb=parts.get("rgb"),
                          histograms=counts.reshape(hist.num_regions, hist.num_bins),
                          white_level_dn=cam.white_level_dn, black_level_dn=cam.black_level_dn)
        command = self.controller.update(obs)
        for problem in self.controller.last_info["problems"]:
            self.health.problem(cause_of(problem, "decision: "), problem)
        self.cmd_pub.publish(command_to_msg(command, exp.header, exposure.effective_exposure_s))
        self.commands_sent += 1
        self.health.frame_out()
        self.health.set_value("mode", self.controller.last_info["mode"])
        self.health.set_value("method", command.method)
        self.health.set_value("clamped", command.clamped)


def main(args=None) -> int:
    return run_node(AeControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
