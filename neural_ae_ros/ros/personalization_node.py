"""personalization_node: live personalisation of attention_rl (paper 001 Sections 5.1-5.3), a
thin shell over :class:`neural_ae_ros.personalization.feedback.FeedbackSession`.

- ``image_rgb`` (the ISP output): every frame is remembered by its stamp (the last
  ``frames_held``), downsampled to the network input.
- ``exposure_feedback`` (ExposureFeedback: frame stamp, under / well / over, giver, profile):
  accepted or refused; the answer, with the reason of a refusal, goes to
  ``exposure_feedback_result`` (FeedbackResult) and refusals are logged. Refused: an unknown
  label, a bad giver or profile name, a stamp the node never saw (or no longer holds), a frame the
  giver already labelled, more than ``max_feedback_per_minute`` labels of one giver (a flood).
  Nothing refused reaches the weights.
- Every ``batch_size`` accepted labels of a profile fine-tune its network by REINFORCE (Eq. 11,
  Fig. 6 reward) and write ``<profile_dir>/<profile>.pt`` atomically with its sha256
  (:mod:`neural_ae_ros.weights`). Fine-tunes of ``active_profile`` are announced latched on
  ``attention_rl_weights`` (AttentionWeights: path + sha256); ae_controller loads them after
  checking the hash, without a restart, and says what it runs on ``attention_rl_weights_active``.
- ``exposure_maps_request`` (ExposureMapsRequest: frame stamp, profile): the attention map AM
  and exposure map EM of that frame as two ``sensor_msgs/Image`` ``32FC1`` at the network's
  map resolution (8 x 8 for the 64 x 64 input) on ``attention_map`` / ``exposure_map``, stamped
  with the frame; with ``maps_plot_dir`` also a PNG (frame, EM, AM).

Fine-tuning runs on a worker thread (tens of seconds on 2 loaded CPU cores): frames, feedback
and map requests go on meanwhile. Its outcome is a second FeedbackResult (``request``
"fine_tune": the new weights, or the reason it failed and the previous weights stay).
"""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Optional

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from neural_ae_ros.msg import AttentionWeights, ExposureFeedback, ExposureMapsRequest, FeedbackResult

from . import topics
from .convert import MessageFormatError, float_map_to_image, image_to_rgb, stamp_key
from .diagnostics import DiagnosticsReporter, NodeHealth, cause_of, guarded
from .params import DeclaredParameters
from .run import run_node

_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
#: FeedbackSession attribute of each live parameter.
_SESSION_ATTRS = {"batch_size": "batch_size", "max_feedback_per_minute": "max_per_minute",
                  "fine_tune_steps": "steps", "learning_rate": "lr"}


def default_profile_dir() -> Path:
    """``$ROS_HOME/neural_ae_ros/profiles`` (``$ROS_HOME`` defaults to ``~/.ros``, as ROS logs)."""
    return Path(os.environ.get("ROS_HOME") or Path.home() / ".ros") / "neural_ae_ros" / "profiles"


class PersonalizationNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("personalization_node", **node_kwargs)
        from neural_ae_ros.ae.attention_rl import SHIPPED_WEIGHTS
        from neural_ae_ros.personalization.attention_net import load_weights
        from neural_ae_ros.personalization.feedback import FeedbackSession

        self.params = DeclaredParameters(self, "personalization_node", on_change=self._apply_parameter,
                                         extra_validator=self._check_parameter)
        v = self.params.values
        reason = self._check_parameter("active_profile", v["active_profile"])
        if reason:
            raise ValueError(reason)
        self.health = NodeHealth(stale_after_s=None)
        self.diagnostics = DiagnosticsReporter(self, self.health)
        base = Path(v["base_weights"]) if v["base_weights"] else SHIPPED_WEIGHTS
        net, _ = load_weights(base)  # a bad file: CheckpointError naming it, fatal at start
        self.profile_dir = Path(v["profile_dir"]).expanduser() if v["profile_dir"] else default_profile_dir()
        self.session = FeedbackSession(net, self.profile_dir, frames_held=v["frames_held"],
                                       fine_tune_inline=False,
                                       **{attr: v[name] for name, attr in _SESSION_ATTRS.items()})
        self._work = threading.Event()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._fine_tune_worker, name="fine_tune", daemon=True)
        self.result_pub = self.create_publisher(FeedbackResult, topics.FEEDBACK_RESULT, topics.RECORD_QOS)
        self.weights_pub = self.create_publisher(AttentionWeights, topics.ATTENTION_RL_WEIGHTS, topics.LATCHED_QOS)
        self.attention_pub = self.create_publisher(Image, topics.ATTENTION_MAP, topics.RECORD_QOS)
        self.exposure_pub = self.create_publisher(Image, topics.EXPOSURE_MAP, topics.RECORD_QOS)
        self.create_subscription(Image, topics.IMAGE_RGB, self._on_rgb, topics.IMAGE_QOS)
        self.create_subscription(ExposureFeedback, topics.EXPOSURE_FEEDBACK, self._on_feedback, topics.RECORD_QOS)
        self.create_subscription(ExposureMapsRequest, topics.EXPOSURE_MAPS_REQUEST, self._on_maps_request,
                                 topics.RECORD_QOS)
        self.get_logger().info(f"personalisation: base weights {base}, profiles in {self.profile_dir}, active "
                               f"profile {v['active_profile']!r}, batches of {v['batch_size']} labels")
        self._announce_saved(v["active_profile"])
        self._worker.start()

    def destroy_node(self) -> None:
        self._stop.set()
        self._work.set()
        self._worker.join(timeout=2.0)  # a fine-tune in flight ends with the process; its write is atomic
        super().destroy_node()

    # -- parameters -------------------------------------------------------------------------
    @staticmethod
    def _check_parameter(name: str, value: Any) -> Optional[str]:
        if name == "active_profile" and not _NAME.match(value or ""):
            return f"active_profile={value!r} must be 1-64 letters, digits, '_' or '-'"
        return None

    def _apply_parameter(self, name: str, value: Any) -> None:
        if name in _SESSION_ATTRS:
            setattr(self.session, _SESSION_ATTRS[name], value)
        elif name == "active_profile":
            self._announce_saved(value)

    def _announce_saved(self, profile: str) -> None:
        """Announce ``profile``'s saved weights (a restart, or a switch of the active profile)."""
        path = self.session.profile_path(profile)
        if path.is_file():
            self._announce(profile, path, labels=0)

    def _announce(self, profile: str, path: Path, labels: int) -> str:
        from neural_ae_ros.weights import file_sha256

        msg = AttentionWeights(profile=profile, path=str(Path(path).resolve()), sha256=file_sha256(path),
                               labels=int(labels))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.weights_pub.publish(msg)
        self.health.set_value("announced_profile", profile)
        self.health.set_value("announced_sha256", msg.sha256)
        return msg.sha256

    # -- frames -----------------------------------------------------------------------------
    @guarded(cause="rgb_callback")
    def _on_rgb(self, msg: Image) -> None:
        self.health.frame_in()
        try:
            rgb = image_to_rgb(msg, self.resolve_topic_name(topics.IMAGE_RGB))
        except MessageFormatError as exc:
            self.health.dropped(cause_of(str(exc), "bad_image: "), str(exc))
            return
        self.session.frame_seen(stamp_key(msg.header), rgb)

    # -- feedback ---------------------------------------------------------------------------
    def _result(self, header, request: str, giver: str, profile: str, label: str, reason: str = "",
                weights_path: str = "", weights_sha256: str = "") -> None:
        self.result_pub.publish(FeedbackResult(
            header=header, request=request, giver=giver, profile=profile, label=label, accepted=not reason,
            reason=reason, pending_labels=self.session.pending(profile) if _NAME.match(profile or "") else 0,
            weights_path=weights_path, weights_sha256=weights_sha256))

    def _refuse(self, header, request: str, giver: str, profile: str, label: str, exc: Exception) -> None:
        # throttled per kind of message (a flood of one mistake logs once a second, with its count)
        self.health.problem(cause_of(str(exc), f"{request}_refused_{getattr(exc, 'kind', 'refused')}: "),
                            f"{request} refused: {exc}", counter=f"{request}_refused")
        self._result(header, request, giver, profile, label, reason=str(exc))

    @guarded(cause="feedback_callback")
    def _on_feedback(self, msg: ExposureFeedback) -> None:
        from neural_ae_ros.personalization.feedback import FeedbackRefused

        stamp = stamp_key(msg.header)
        try:
            self.session.submit(stamp, msg.label, msg.giver, msg.profile)
        except FeedbackRefused as exc:
            self._refuse(msg.header, "feedback", msg.giver, msg.profile, msg.label, exc)
            return
        self.health.counters["feedback_accepted"] = self.health.counters.get("feedback_accepted", 0) + 1
        self._result(msg.header, "feedback", msg.giver, msg.profile, msg.label)
        self._work.set()  # a completed batch waits in the session for the worker

    def _fine_tune_worker(self) -> None:
        while not self._stop.is_set():
            self._work.wait(timeout=0.5)
            self._work.clear()
            while not self._stop.is_set():
                ready = self.session.take_ready()
                if ready is None:
                    break
                self._fine_tune(*ready)

    def _fine_tune(self, profile: str, batch, frames) -> None:
        from neural_ae_ros.personalization.feedback import FeedbackRefused
        from neural_ae_ros.weights import file_sha256

        last = batch[-1]
        header = Header(frame_id="")
        header.stamp.sec, header.stamp.nanosec = divmod(int(last.stamp_ns), 1_000_000_000)
        try:
            done = self.session.fine_tune(profile, batch, frames)
        except Exception as exc:  # noqa: BLE001 - non-finite weights, a profile directory not writable, ...
            if not isinstance(exc, FeedbackRefused):
                exc = FeedbackRefused(f"fine-tuning profile {profile!r} on {len(batch)} labels failed "
                                      f"({type(exc).__name__}: {exc}); the previous weights stay", "fine_tune")
            self._refuse(header, "fine_tune", last.giver, profile, last.label, exc)
            return
        active = done.profile == self.params["active_profile"]
        sha = self._announce(done.profile, done.path, done.labels) if active else file_sha256(done.path)
        self.get_logger().info(f"profile {done.profile!r} fine-tuned on {done.labels} labels (mean Fig. 6 reward "
                               f"{done.mean_reward:+.2f}): {done.path} sha256 {sha[:12]}..."
                               + (" announced to ae_controller" if active else " (not the active profile)"))
        self._result(header, "fine_tune", last.giver, profile, last.label, weights_path=str(done.path),
                     weights_sha256=sha)

    # -- maps on request --------------------------------------------------------------------
    @guarded(cause="maps_callback")
    def _on_maps_request(self, msg: ExposureMapsRequest) -> None:
        from neural_ae_ros.personalization.feedback import FeedbackRefused

        profile = msg.profile or self.params["active_profile"]
        try:
            delta_ev, em, am, frame = self.session.maps(stamp_key(msg.header), profile)
        except FeedbackRefused as exc:
            self._refuse(msg.header, "maps", "", profile, "", exc)
            return
        plot_dir = self.params["maps_plot_dir"]
        if plot_dir:  # before the answer: a requester that got it finds the file
            from neural_ae_ros.personalization.plots import plot_frame_maps

            path = Path(plot_dir) / f"maps_{profile}_{stamp_key(msg.header)}.png"
            plot_frame_maps(frame, em, am, delta_ev, path, title=f"{profile}: frame {stamp_key(msg.header)} ns")
            self.get_logger().info(f"maps of frame {stamp_key(msg.header)} ns ({profile}): {path}")
        self.attention_pub.publish(float_map_to_image(am, msg.header))
        self.exposure_pub.publish(float_map_to_image(em, msg.header))
        self._result(msg.header, "maps", "", profile, "")


def main(args=None) -> int:
    return run_node(PersonalizationNode, args)


if __name__ == "__main__":
    sys.exit(main())
