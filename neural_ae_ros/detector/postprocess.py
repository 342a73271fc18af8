"""Decoding of the detector head and a plain-torch non-maximum suppression.

``decode``: sigmoid heatmap -> 3x3 max-pool peaks -> top-k over all classes and positions ->
boxes from the four side distances at each peak -> score threshold -> class-wise NMS.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import OUTPUT_STRIDE


@dataclass
class Detections:
    """Detections of one image: ``boxes`` (K, 4) xyxy pixels, ``scores`` (K,), ``labels`` (K,)
    class indices; ``features`` the stage-2 map (1, 128, H/4, W/4) when it was asked for."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    features: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.scores.numel())

    def as_dict(self) -> dict:
        return {"boxes": self.boxes, "scores": self.scores, "labels": self.labels}

    def scaled(self, sx: float, sy: float) -> "Detections":
        s = torch.tensor([sx, sy, sx, sy], dtype=self.boxes.dtype)
        return Detections(self.boxes * s, self.scores, self.labels, self.features)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (len(a), len(b)) of xyxy boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS. Returns indices of kept boxes, by decreasing score.

    A box is dropped when its IoU with a higher-scoring kept box is > ``iou_threshold``
    (same convention as torchvision.ops.nms). Ties in score keep the lower index first.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order])
    n = order.numel()
    keep = torch.ones(n, dtype=torch.bool)
    iou_np = (iou > iou_threshold).numpy()
    keep_np = keep.numpy()
    for i in range(n):
        if keep_np[i]:
            sup = iou_np[i, i + 1:]
            keep_np[i + 1:] &= ~sup
    return order[torch.from_numpy(keep_np)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Class-wise NMS: boxes of different labels never suppress each other."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    offset = labels.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offset, scores, iou_threshold)


def decode(
    heatmap_logits: torch.Tensor,
    box: torch.Tensor,
    score_threshold: float = 0.05,
    top_k: int = 100,
    nms_iou: float = 0.6,
    stride: int = OUTPUT_STRIDE,
) -> list[Detections]:
    """Head outputs of a batch -> one :class:`Detections` per image, boxes in input pixels."""
    n, c, h, w = heatmap_logits.shape
    heat = torch.sigmoid(heatmap_logits)
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
    k = min(top_k, c * h * w)
    scores, idx = peaks.view(n, -1).topk(k)
    labels = idx // (h * w)
    pix = idx % (h * w)
    ys = (pix // w).to(heat.dtype)
    xs = (pix % w).to(heat.dtype)
    cx = (xs + 0.5) * stride
    cy = (ys + 0.5) * stride
    d = box.view(n, 4, h * w).gather(2, pix[:, None, :].expand(n, 4, k))  # (n, 4, k): l, t, r, b
    boxes = torch.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], dim=-1)
    boxes[..., 0::2] = boxes[..., 0::2].clamp(0, w * stride)  # clip to the input image
    boxes[..., 1::2] = boxes[..., 1::2].clamp(0, h * stride)
    out = []
    for i in range(n):
        m = scores[i] >= score_threshold
        b, s, l = boxes[i][m], scores[i][m], labels[i][m]
        if nms_iou < 1.0 and len(s):
            keep = batched_nms(b, s, l, nms_iou)
            b, s, l = b[keep], s[keep], l[keep]
        out.append(Detections(b, s, l))
    return out
