"""ae_controller: per frame, join what the AE method needs (histograms, + the raw image for
methods that look at it) with the exposure the frame was captured with, run the controller,
publish an ExposureCommand.

Camera facts (limits, T_max, levels, latency, session) come from the camera's latched
``camera_exposure_info``; frames before it arrived are skipped (counted, throttled log). A new
camera session resets the controller (its frame indices restart). Method, smoothing and method
constants are live parameters: a change is validated first (on-set) and then applied in place,
so the controller keeps its state and the exposure stays continuous.

Learned methods (``histogram_nn``, ``semantic_nn``, ``hybrid_nn``) load their weights
(``network_weights``, default the shipped ``data/ae/<method>.pt``) when the node starts: a
missing or mismatching file ends the start with one line naming the file (and the
``neural-ae train`` command for a missing default). Semantic methods also join the detector
node's ``semantic_features`` (pooled vector, same stamp as the frame) to the frame: a frame
whose features have not arrived ``features_timeout_s`` after its histograms is decided without
them (``hybrid_nn``: histogram branch; ``semantic_nn``: holds), and so is a frame whose features
are unusable (NaN, other weights, wrong size); each is said on ``/diagnostics`` and in a
throttled log line.
"""
from __future__ import annotations

import sys
import time
from collections import OrderedDict
from typing import Any, Dict, Optional

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from neural_ae_ros.msg import (AppliedExposure, AttentionWeights, CameraExposureInfo, ExposureCommand, HistogramStack,
                               SemanticFeatures)

from ..ae import (INPUT_FEATURES, INPUT_RAW, INPUT_RGB, ControllerSettings, ExposureController, Observation, make_method,
                  method_class, method_kwargs)
from . import topics
from .convert import (MessageFormatError, StampJoin, applied_from_msg, camera_info_from_msg, command_to_msg,
                      image_to_raw, image_to_rgb, stamp_key)
from .diagnostics import ERROR, DiagnosticsReporter, NodeHealth, cause_of, guarded
from .params import DeclaredParameters
from .run import run_node

#: Frames kept while waiting for the other parts of a join.
_MAX_PENDING = 30
_SETTINGS = set(ControllerSettings.names())


#: Semantic feature vectors kept while their frame's histograms have not arrived.
_MAX_FEATURES = 30
#: How often frames waiting for their features are checked against features_timeout_s (s).
_FEATURE_POLL_S = 0.01


def controller_settings(values: Dict[str, Any]) -> ControllerSettings:
    return ControllerSettings(**{k: values[k] for k in _SETTINGS if k in values})


def build_method(values: Dict[str, Any]):
    """The AE method named by the node parameters ``values`` (learned ones load their weights)."""
    name = values["method"]
    kwargs = method_kwargs(name, values)
    if method_class(name).loads_weights and values.get("network_weights"):
        kwargs["weights"] = values["network_weights"]
    return make_method(name, **kwargs)


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
        # the method is built (weights loaded) now: a bad file refuses the start with its reason
        self.method = build_method(self.params.values)
        self.features_sub = None
        self._features: "OrderedDict[int, Any]" = OrderedDict()  # stamp -> vector, or the reason it is unusable
        self._awaiting: "OrderedDict[int, tuple]" = OrderedDict()  # stamp -> (parts, deadline), in order
        self._newest_decided = -1
        self._feature_timer = None  # checks deadlines, only while the method uses features
        self.cmd_pub = self.create_publisher(ExposureCommand, topics.EXPOSURE_COMMAND, topics.RECORD_QOS)
        self.create_subscription(CameraExposureInfo, topics.CAMERA_EXPOSURE_INFO, self._on_camera_info,
                                 topics.LATCHED_QOS)
        self.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, self._on_exposure, topics.RECORD_QOS)
        self.create_subscription(HistogramStack, topics.HISTOGRAMS, self._on_histograms, topics.RECORD_QOS)
        self._update_image_subscription()
        self.commands_sent = 0
        self.decisions_without_features = 0
        # attention_rl (paper 001): personalised weights swap in while running (personalization_node)
        self.weights_active_pub = self.create_publisher(AttentionWeights, topics.ATTENTION_RL_WEIGHTS_ACTIVE,
                                                        topics.LATCHED_QOS)
        self.create_subscription(AttentionWeights, topics.ATTENTION_RL_WEIGHTS, self._on_weights, topics.LATCHED_QOS)
        self._adopt_weights(self.method)

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
            self.controller = ExposureController(self.method, info, controller_settings(v))
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
            if name == "method" or name == "network_weights" or name in {
                    p.name for p in method_class(v["method"]).parameters}:
                self._candidate_method = build_method(v)
        except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: AeCheckpointError
            return f"{name}={value!r}: {exc}"
        return None

    def _apply_parameter(self, name: str, value: Any) -> None:
        v = self.params.values
        if self.controller is None:
            if name in ("method", "network_weights") or name in {p.name for p in method_class(v["method"]).parameters}:
                self.method = self._candidate_method
                self._adopt_weights(self.method)
                self.join.set_required(self._required_parts(v["method"]))
                self._update_image_subscription()
            return  # the rest is applied when the camera info arrives
        if name in _SETTINGS:
            self.controller.configure(**{name: value})
        elif name in ("method", "network_weights") or name in {p.name for p in method_class(v["method"]).parameters}:
            self.method = self._candidate_method
            self._adopt_weights(self.method)
            self.controller.set_method(self.method)
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
        wants_features = INPUT_FEATURES in method_class(self.params["method"]).inputs
        if wants_features and self.features_sub is None:
            self.features_sub = self.create_subscription(SemanticFeatures, topics.SEMANTIC_FEATURES,
                                                         self._on_features, topics.RECORD_QOS)
            self._feature_timer = self.create_timer(_FEATURE_POLL_S, self._on_feature_timer)
        elif not wants_features and self.features_sub is not None:
            self.destroy_subscription(self.features_sub)
            self.destroy_timer(self._feature_timer)
            self.features_sub = self._feature_timer = None
            self._features.clear()
        if not wants_features:
            self._drain_awaiting(flush=True)

    # -- attention_rl weights (paper 001 personalisation) ------------------------------------
    def _adopt_weights(self, method) -> None:
        """A newly built attention_rl gets the last verified announcement, else says it runs the shipped weights."""
        if hasattr(method, "swap_weights") and (self.weights_announced is None
                                                or not self._swap_weights(method, self.weights_announced)):
            self._announce_active(method, "", 0)

    @guarded(cause="weights_callback")
    def _on_weights(self, msg: AttentionWeights) -> None:
        method = self.method
        if not hasattr(method, "swap_weights"):
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

    # -- semantic features: joined to the frame by stamp, with a deadline -------------------------
    @guarded(cause="features_callback")
    def _on_features(self, msg: SemanticFeatures) -> None:
        stamp = stamp_key(msg.header)
        topic = self.resolve_topic_name(topics.SEMANTIC_FEATURES)
        where = f"{topic} stamp {stamp} ns"
        data = np.frombuffer(msg.data, dtype=np.float32) if len(msg.data) else np.zeros(0, np.float32)
        method = self.method
        problem = None
        if msg.method != method.name:
            problem = f"{where}: features of {msg.method!r}, this controller runs {method.name!r}"
        elif getattr(method, "sha256", None) and msg.ae_weights_sha256 != method.sha256:
            problem = (f"{where}: made with weights sha256 {msg.ae_weights_sha256[:12]}..., this controller runs "
                       f"{method.sha256[:12]}... (detector node ae_checkpoint and network_weights differ)")
        else:
            problem = method.features_problem(data)
            if problem is not None:
                problem = f"{where}: {problem}"
        if problem is not None:
            self.health.problem(cause_of(problem.split(": ", 1)[1], "bad_features: "), problem)
        if stamp <= self._newest_decided and stamp not in self._awaiting:
            self.health.problem("features_late", f"{where}: arrived after its frame was decided (features_timeout_s "
                                f"{self.params['features_timeout_s']} s)")
            return
        # an unusable vector still goes to the method, which says why it decided without it
        self._features[stamp] = data.copy()
        while len(self._features) > _MAX_FEATURES:
            self._features.popitem(last=False)
        self._drain_awaiting()

    @guarded(cause="features_timer")
    def _on_feature_timer(self) -> None:
        self._drain_awaiting()

    def _drain_awaiting(self, flush: bool = False) -> None:
        """Decide waiting frames in order: with their features once they are here, without them
        once ``features_timeout_s`` has passed (or at once with ``flush``)."""
        now = time.monotonic()
        while self._awaiting:
            stamp, (parts, deadline) = next(iter(self._awaiting.items()))
            features = self._features.pop(stamp, None)
            if features is None and not flush and now < deadline:
                return
            del self._awaiting[stamp]
            self._decide(parts, features)

    # -- joins ------------------------------------------------------------------------------
    def _add(self, header, part: str, value) -> None:
        evicted = self.join.evicted
        parts = self.join.add(stamp_key(header), part, value)
        if self.join.evicted > evicted:
            stamp, have = self.join.last_evicted
            self.health.failed_join("join_evicted", f"frame stamp {stamp} ns had only {', '.join(have)} after "
                                    f"{_MAX_PENDING} newer frames; skipped")
        if parts is None:
            return
        if self.features_sub is None:
            self._decide(parts)
            return
        key = stamp_key(header)
        self._awaiting[key] = (parts, time.monotonic() + float(self.params["features_timeout_s"]))
        self._drain_awaiting()

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
    def _decide(self, parts: Dict[str, Any], features: Optional[np.ndarray] = None) -> None:
        exp, hist = parts["exposure"], parts["histograms"]
        self._newest_decided = max(self._newest_decided, stamp_key(exp.header))
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
                          white_level_dn=cam.white_level_dn, black_level_dn=cam.black_level_dn,
                          features=features)
        try:
            command = self.controller.update(obs)
        except ValueError as exc:  # input the method cannot use (e.g. a histogram stack of other grids)
            topic = self.resolve_topic_name(topics.HISTOGRAMS)
            self.health.dropped(cause_of(str(exc), "bad_input: "), f"{topic} stamp {stamp_key(hist.header)} ns, "
                                f"frame {exp.frame_index}: {exc}; frame skipped")
            return
        for problem in self.controller.last_info["problems"]:
            self.health.problem(cause_of(problem, "decision: "), problem)
        fallback = self.controller.last_info.get("method_info", {}).get("fallback")
        if fallback:
            self.decisions_without_features += 1
            self.health.problem("features_fallback", f"frame {exp.frame_index}: {self.method.name} decided without "
                                f"semantic features: {fallback}")
        if self.features_sub is not None:
            both = "histograms + semantic features" if self.method.name == "hybrid_nn" else "semantic features"
            self.health.set_value("decision_inputs", fallback or both)
            self.health.set_value("decisions_without_features", self.decisions_without_features)
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
