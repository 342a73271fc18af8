"""Run the detector on one RGB frame (what the detector_node calls; no ROS import).

    det = load_detector()                       # default checkpoint, or a path
    out = det.detect(rgb8)                      # (H, W, 3) uint8, any size with ~ the model's aspect
    out.boxes, out.scores, out.labels           # in the frame's pixel coordinates
    out = det.detect(rgb8, want_features=True)  # + out.features: (1, 128, h/4, w/4) conv2 map

Bad input raises :class:`DetectorInputError` with a reason (wrong encoding, dtype, channels,
too small, far from the model's aspect ratio): the node logs it and drops the frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint
from .model import Detector
from .postprocess import Detections, decode

#: Image encodings the detector accepts (sensor_msgs/Image names).
IMAGE_ENCODINGS = ("rgb8", "bgr8")
#: Largest relative difference between frame and model aspect ratios accepted.
MAX_ASPECT_MISMATCH = 0.25


class DetectorInputError(ValueError):
    """A frame the detector cannot process."""


def resize_rgb(images: torch.Tensor, size_wh: Sequence[int]) -> torch.Tensor:
    """(N, 3, H, W) float -> (N, 3, h, w) with antialiasing (area-like when shrinking)."""
    w, h = int(size_wh[0]), int(size_wh[1])
    if tuple(images.shape[-2:]) == (h, w):
        return images
    return F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False,
                         antialias=bool(images.shape[-1] > w or images.shape[-2] > h))


class DetectorRuntime:
    """A loaded detector with its pre- and post-processing."""

    def __init__(self, model: Detector, metadata: dict[str, Any] | None = None,
                 score_threshold: float = 0.05, nms_iou: float = 0.6, top_k: int = 100):
        self.model = model.eval()
        self.metadata = metadata or {}
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.top_k = top_k

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.cfg.classes

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the network input."""
        return self.model.cfg.input_size

    def check_image(self, image: Any, encoding: str = "rgb8") -> None:
        if encoding not in IMAGE_ENCODINGS:
            raise DetectorInputError(f"image encoding {encoding!r} not supported; expected one of {IMAGE_ENCODINGS}")
        if not isinstance(image, np.ndarray):
            raise DetectorInputError(f"image must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise DetectorInputError(f"image dtype must be uint8 for {encoding}, got {image.dtype}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise DetectorInputError(f"image must be (H, W, 3), got shape {image.shape}")
        h, w = image.shape[:2]
        if h < 32 or w < 32:
            raise DetectorInputError(f"image {w}x{h} too small (min 32x32)")
        mw, mh = self.input_size
        mismatch = abs((w / h) / (mw / mh) - 1.0)
        if mismatch > MAX_ASPECT_MISMATCH:
            raise DetectorInputError(f"image {w}x{h} (aspect {w / h:.3f}) too far from the model input "
                                     f"{mw}x{mh} (aspect {mw / mh:.3f})")

    def preprocess(self, image: np.ndarray, encoding: str = "rgb8") -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, h, w) float in [0, 1] at the model's input size."""
        self.check_image(image, encoding)
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div_(255.0)
        if encoding == "bgr8":
            t = t.flip(1)
        return resize_rgb(t, self.input_size)

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (its inputs go there)."""
        return next(self.model.parameters()).device

    def to(self, device: str = "cpu") -> "DetectorRuntime":
        """Move the network to ``device`` ('cpu' or 'cuda[:N]'), channels-last (~1.3x faster
        convolutions on CPU, same results); decoding stays on the CPU. A device that is not
        there is a ValueError that says so."""
        dev = torch.device(device)
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"--device {device}: only cpu and cuda are supported")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device here (torch {torch.__version__})")
        self.model.to(dev, memory_format=torch.channels_last)
        return self

    @torch.inference_mode()
    def detect_tensor(self, images: torch.Tensor, want_features: bool = False) -> list[Detections]:
        """Batch of model-size float images (N, 3, h, w), on any device -> detections in input
        pixels, on the CPU (the network runs on :attr:`device`)."""
        out = self.model(images.to(self.device))
        dets = decode(out["heatmap"].cpu().contiguous(), out["box"].cpu().contiguous(),
                      self.score_threshold, self.top_k, self.nms_iou)
        if want_features:
            for i, d in enumerate(dets):
                d.features = out["features"]["conv2"][i:i + 1].cpu().clone()
        return dets

    @torch.inference_mode()
    def detect(self, image: np.ndarray, encoding: str = "rgb8", want_features: bool = False) -> Detections:
        """One frame (H, W, 3) uint8 -> detections in that frame's pixel coordinates.

        ``want_features``: also return the stage-2 ("ResNet conv2") map, (1, 128, h/4, w/4)
        at the model's input resolution (the node publishes it only when subscribed).
        """
        x = self.preprocess(image, encoding)
        det = self.detect_tensor(x, want_features)[0]
        mw, mh = self.input_size
        h, w = image.shape[:2]
        return det.scaled(w / mw, h / mh)


def load_detector(path: str | Path | None = None, expected_classes: Sequence[str] | None = None,
                  **runtime_kwargs) -> DetectorRuntime:
    """Load a checkpoint (default: the shipped ``neural_ae_ros/data/detector/default.pt``).
    Raises :class:`~neural_ae_ros.detector.checkpoint.CheckpointError` on a bad checkpoint."""
    model, meta = load_checkpoint(path, expected_classes=expected_classes)
    return DetectorRuntime(model, meta, **runtime_kwargs)


def device_label(device: str) -> str:
    """'cpu' or 'cuda (<GPU name>)', for reports."""
    dev = torch.device(device)
    return f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "cpu"
