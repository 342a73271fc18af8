"""detector_node: rgb8 image in; vision_msgs/Detection2DArray out (class name, score, box in the
image's pixels, same header); the backbone's stage-2 ("conv2", stride 4) FeatureMap out only
while someone subscribes to it (the semantic AE branch of paper 000 Section 4.2).

A lifecycle node (``rclpy.lifecycle``): a missing, corrupt (SHA-256 mismatch) or mismatched
checkpoint is refused at ``configure`` with the reason; the node stays alive, unconfigured, ERROR on
``/diagnostics``. Switching ``checkpoint`` live to a bad file is refused with the reason and the
loaded model stays. A malformed image is dropped with a throttled log line that says what was wrong;
frames the detector is too slow for are counted (against the camera's ``exposure`` records) and
reported as dropped on ``/diagnostics``.

With ``ae_checkpoint`` (a ``semantic_nn``/``hybrid_nn`` exposure-network checkpoint, the one whose
detector this node runs) it also publishes ``semantic_features``: the conv2 map through that
method's channel compression and pyramid pooling (:class:`~neural_ae_ros.ae.neural.SemanticEncoder`),
4496 float32 per frame, only while someone subscribes (docs/design.md, "Semantic features on
the wire"). A bad ``ae_checkpoint`` is refused at configure like a bad detector checkpoint.
"""
from __future__ import annotations

import array
import sys

import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from neural_ae_ros.msg import AppliedExposure, FeatureMap, SemanticFeatures

from ..ae.training import AeCheckpointError

from ..detector.checkpoint import CheckpointError
from ..detector.inference import DetectorInputError, load_detector
from . import topics
from .convert import MessageFormatError, image_to_rgb, stamp_key
from .diagnostics import DiagnosticsReporter, NodeHealth, SkipCounter, cause_of, guarded
from .lifecycle import LoadingNode
from .params import DeclaredParameters
from .run import run_node


def detections_to_msg(det, classes, header) -> Detection2DArray:
    """Detections (xyxy pixels) -> vision_msgs/Detection2DArray with the image's header."""
    out = Detection2DArray()
    out.header = header
    boxes = det.boxes.numpy()
    for k, (box, score, label) in enumerate(zip(boxes, det.scores.tolist(), det.labels.tolist())):
        d = Detection2D()
        d.header = header
        x0, y0, x1, y1 = (float(v) for v in box)
        d.bbox.center.position.x, d.bbox.center.position.y = (x0 + x1) / 2, (y0 + y1) / 2
        d.bbox.size_x, d.bbox.size_y = x1 - x0, y1 - y0
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id = classes[int(label)]
        h.hypothesis.score = float(score)
        d.results = [h]
        d.id = str(k)
        out.detections.append(d)
    return out


def features_to_msg(features, header, input_size) -> FeatureMap:
    """(1, C, h, w) float tensor -> FeatureMap."""
    f = features[0].contiguous().float().numpy()
    msg = FeatureMap()
    msg.header = header
    msg.layer = "conv2"
    msg.input_width, msg.input_height = int(input_size[0]), int(input_size[1])
    msg.channels, msg.height, msg.width = (int(v) for v in f.shape)
    msg.stride_px = int(round(input_size[0] / f.shape[2]))
    data = array.array("f")
    data.frombytes(np.ascontiguousarray(f, dtype=np.float32).tobytes())
    msg.data = data
    return msg


def semantic_to_msg(vector: np.ndarray, header, encoder, input_size) -> SemanticFeatures:
    """Pooled semantic vector (float32) -> SemanticFeatures with the image's header."""
    msg = SemanticFeatures()
    msg.header = header
    msg.method, msg.ae_weights_sha256 = encoder.method, encoder.sha256
    msg.input_width, msg.input_height = int(input_size[0]), int(input_size[1])
    data = array.array("f")
    data.frombytes(np.ascontiguousarray(vector, dtype=np.float32).tobytes())
    msg.data = data
    return msg


class DetectorNode(LoadingNode):
    """Lifecycle node: ``configure`` loads and checks the model (a bad one is refused, the node
    stays unconfigured and says so on /diagnostics), ``activate`` starts publishing,
    ``deactivate`` stops, ``cleanup`` frees the model. With ``autostart`` (default) it configures
    and activates itself at start, so the graph runs without a lifecycle manager."""

    load_cause = "checkpoint"
    load_errors = (CheckpointError, AeCheckpointError)

    def __init__(self, **node_kwargs) -> None:
        super().__init__("detector_node", **node_kwargs)
        self.params = DeclaredParameters(self, "detector_node", on_change=self._on_change,
                                         extra_validator=self._validate_checkpoint)
        self.health = NodeHealth(stale_after_s=None)
        self.diagnostics = DiagnosticsReporter(self, self.health)
        self.skips = SkipCounter()
        self.runtime = None
        self.encoder = None  # SemanticEncoder of ae_checkpoint, or None
        self.det_pub = self.feat_pub = self.sem_pub = None
        self._init_lifecycle()

    @property
    def dropped(self) -> int:
        return self.health.counters["dropped_frames"]

    # -- lifecycle (LoadingNode) ---------------------------------------------------------------
    def load(self) -> None:
        self.runtime = self._load(self.params["checkpoint"])
        self.encoder = self._load_encoder(self.params["ae_checkpoint"])
        if self.encoder is not None:
            self.get_logger().info(f"semantic features of {self.encoder.method} ({self.encoder.path}) on "
                                   f"{self.resolve_topic_name(topics.SEMANTIC_FEATURES)}")
        self.get_logger().info(
            f"detector: classes {list(self.runtime.classes)}, input {self.runtime.input_size[0]}x"
            f"{self.runtime.input_size[1]}, checkpoint {self.params['checkpoint'] or 'default'}")

    def connect(self):
        self.det_pub = self.create_lifecycle_publisher(Detection2DArray, topics.DETECTIONS, topics.RECORD_QOS)
        self.feat_pub = self.create_lifecycle_publisher(FeatureMap, topics.FEATURES, topics.IMAGE_QOS)
        subs = [self.create_subscription(Image, topics.IMAGE_RGB, self._on_image, topics.IMAGE_QOS),
                self.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, self._on_exposure,
                                         topics.RECORD_QOS)]
        self.sem_pub = self.create_lifecycle_publisher(SemanticFeatures, topics.SEMANTIC_FEATURES,
                                                       topics.RECORD_QOS)
        return [self.det_pub, self.feat_pub, self.sem_pub], subs

    def free(self) -> None:
        self.det_pub = self.feat_pub = self.sem_pub = None
        self.runtime = None
        self.encoder = None

    # -- parameters -------------------------------------------------------------------------
    def _load(self, checkpoint: str):
        v = self.params.values
        return load_detector(checkpoint or None, score_threshold=v["score_threshold"], nms_iou=v["nms_iou"],
                             top_k=v["max_detections"])

    @staticmethod
    def _load_encoder(path: str):
        if not path:
            return None
        from ..ae.neural import SemanticEncoder

        return SemanticEncoder(path)

    def _validate_checkpoint(self, name, value):
        try:
            if name == "checkpoint":
                self._candidate = self._load(value)
            elif name == "ae_checkpoint":
                self._candidate_encoder = self._load_encoder(value)
        except (CheckpointError, AeCheckpointError) as exc:
            return f"{name} refused: {exc}"
        return None

    def _on_change(self, name, value) -> None:
        if self.runtime is None:
            return  # unconfigured: the next configure loads with the new values
        if name == "checkpoint":
            self.runtime = self._candidate
        elif name == "ae_checkpoint":
            self.encoder = self._candidate_encoder
        else:
            self.runtime.score_threshold = self.params["score_threshold"]
            self.runtime.nms_iou = self.params["nms_iou"]
            self.runtime.top_k = self.params["max_detections"]

    # -- frames -----------------------------------------------------------------------------
    def _on_exposure(self, msg: AppliedExposure) -> None:
        if self.active:
            self.skips.upstream(stamp_key(msg.header))

    @guarded(cause="detector_callback")
    def _on_image(self, msg: Image) -> None:
        if not self.active or self.runtime is None:
            return
        self.health.frame_in()
        try:
            rgb = image_to_rgb(msg, self.resolve_topic_name(topics.IMAGE_RGB))
            want_map = self.feat_pub.get_subscription_count() > 0
            want_semantic = self.encoder is not None and self.sem_pub.get_subscription_count() > 0
            det = self.runtime.detect(rgb, "rgb8", want_features=want_map or want_semantic)
        except (MessageFormatError, DetectorInputError) as exc:
            self.health.dropped(cause_of(str(exc), "bad_image: "), str(exc))
            return
        self.det_pub.publish(detections_to_msg(det, self.runtime.classes, msg.header))
        if want_map and det.features is not None:
            self.feat_pub.publish(features_to_msg(det.features, msg.header, self.runtime.input_size))
        if want_semantic and det.features is not None:
            vector = self.encoder.encode(det.features)
            self.sem_pub.publish(semantic_to_msg(vector, msg.header, self.encoder, self.runtime.input_size))
        self.health.frame_out()
        skipped = self.skips.done(stamp_key(msg.header))
        self.health.set_value("frames_skipped", self.skips.skipped)
        if skipped:
            self.health.dropped("skipped_frames", f"detector skipped {self.skips.skipped} of "
                                f"{self.skips.skipped + self.skips.processed} camera frames so far "
                                f"(slower than the camera)")


def main(args=None) -> int:
    return run_node(DetectorNode, args, after_start=lambda node: node.autostart())


if __name__ == "__main__":
    sys.exit(main())
