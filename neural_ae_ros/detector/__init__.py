"""Object detector for the six classes of paper 000, with the stage-2 ("ResNet conv2") features
that the semantic AE branch consumes. See :mod:`.model` for the design and why.

    from neural_ae_ros.detector import load_detector
    det = load_detector()                             # shipped default checkpoint
    out = det.detect(rgb8, want_features=True)        # boxes, scores, labels, features
"""
from .checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint, save_checkpoint
from .inference import DetectorInputError, DetectorRuntime, load_detector
from .model import CONV2_CHANNELS, CONV2_STRIDE, Detector, DetectorConfig
from .postprocess import Detections, batched_nms, decode, nms

__all__ = [
    "CONV2_CHANNELS", "CONV2_STRIDE", "CheckpointError", "DEFAULT_CHECKPOINT", "Detections", "Detector",
    "DetectorConfig", "DetectorInputError", "DetectorRuntime", "batched_nms", "decode", "load_checkpoint",
    "load_detector", "nms", "save_checkpoint",
]
