"""Detection metrics as paper 000 reports them: AP at IoU 0.5 per class and mAP over six classes.

Paper 000 (Section 6.1, Tables 1-3) reports "object detection average precision (AP) at 50 %
IoU" for six automotive classes and their mean, evaluated over the test frames *and their
horizontal flips*. This module computes exactly that.

Matching and interpolation follow the COCO evaluation (``pycocotools.cocoeval.COCOeval``)
restricted to one IoU threshold, so results can be checked against pycocotools to 1e-6
(``test/test_metrics.py`` does):

* per image and class, detections sorted by score (stable), at most ``max_dets`` (100) kept;
  each is matched greedily to the unmatched ground-truth box of highest IoU >= threshold
  (IoU on continuous xyxy boxes, no "+1" pixel convention);
* per class, detections of all images are ranked by score (stable, in image order),
  precision is made monotonically decreasing, and AP is its mean at the 101 recall points
  0, 0.01, ..., 1 (``interpolation="coco101"``, the default).

``interpolation="all_point"`` gives the VOC 2010+ all-point area under the interpolated
precision-recall curve instead (same matching).

A class without any ground-truth box has AP = NaN and is left out of the mean (pycocotools:
-1, left out as well).

Boxes are ``(x1, y1, x2, y2)`` pixels; labels are class indices into :data:`CLASS_NAMES`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from neural_ae_ros.classes import CLASS_NAMES

_EPS = np.spacing(1)  # pycocotools adds it to the precision denominator


def _as_boxes(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes (continuous coordinates)."""
    a, b = _as_boxes(a), _as_boxes(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass
class ApResult:
    """AP per class (NaN where the class has no ground truth) and their mean."""

    ap: np.ndarray
    class_names: tuple[str, ...]
    num_gt: np.ndarray
    num_det: np.ndarray
    iou_threshold: float = 0.5
    interpolation: str = "coco101"
    precision: list = field(default_factory=list, repr=False)  # per class, monotone PR curve
    recall: list = field(default_factory=list, repr=False)

    @property
    def map(self) -> float:
        valid = ~np.isnan(self.ap)
        return float(self.ap[valid].mean()) if valid.any() else float("nan")

    def ap_dict(self) -> dict[str, float | None]:
        return {n: (None if np.isnan(v) else float(v)) for n, v in zip(self.class_names, self.ap)}

    def to_dict(self) -> dict:
        m = self.map
        return {"map": None if np.isnan(m) else m, "ap": self.ap_dict(),
                "num_gt": {n: int(v) for n, v in zip(self.class_names, self.num_gt)},
                "num_det": {n: int(v) for n, v in zip(self.class_names, self.num_det)},
                "iou_threshold": self.iou_threshold, "interpolation": self.interpolation}

    def table(self, scale: float = 100.0) -> str:
        """One-line-per-class text table, in percent like paper 000's tables."""
        lines = [f"{'class':14s} {'AP@' + format(self.iou_threshold, 'g'):>8s} {'#gt':>6s} {'#det':>6s}"]
        for n, a, g, d in zip(self.class_names, self.ap, self.num_gt, self.num_det):
            lines.append(f"{n:14s} {'   n/a' if np.isnan(a) else format(a * scale, '8.2f')} {g:6d} {d:6d}")
        lines.append(f"{'mAP':14s} {self.map * scale:8.2f}")
        return "\n".join(lines)


def _match_image(det_boxes, det_scores, gt_boxes, gt_ignore, iou_threshold, max_dets):
    """COCO ``evaluateImg`` for one image and class.

    Returns (scores, tp, det_ignored) of the kept detections. Ignored ground truth behaves
    like COCO "crowd" regions: IoU is intersection / detection area, it can absorb several
    detections, a detection matched to it counts neither as TP nor FP, and it is only used
    when no regular ground truth matches."""
    order = np.argsort(-det_scores, kind="mergesort")[:max_dets]
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    tp = np.zeros(len(order), bool)
    dt_ig = np.zeros(len(order), bool)
    if len(gt_boxes) and len(order):
        g_order = np.argsort(gt_ignore.astype(np.int8), kind="mergesort")  # regular first
        gt_boxes, gt_ignore = gt_boxes[g_order], gt_ignore[g_order]
        ious = box_iou(det_boxes, gt_boxes)
        if gt_ignore.any():
            ious[:, gt_ignore] = _intersection_over_det(det_boxes, gt_boxes[gt_ignore])
        gt_taken = np.zeros(len(gt_boxes), bool)
        thr = min(iou_threshold, 1 - 1e-10)
        for d in range(len(order)):
            best, m = thr, -1
            for g in range(len(gt_boxes)):
                if gt_taken[g] and not gt_ignore[g]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                if ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m >= 0:
                dt_ig[d] = gt_ignore[m]
                tp[d] = not gt_ignore[m]
                gt_taken[m] = True
    return det_scores, tp, dt_ig


def _intersection_over_det(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    ix1 = np.maximum(d[:, None, 0], g[None, :, 0])
    iy1 = np.maximum(d[:, None, 1], g[None, :, 1])
    ix2 = np.minimum(d[:, None, 2], g[None, :, 2])
    iy2 = np.minimum(d[:, None, 3], g[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area_d[:, None] > 0, inter / area_d[:, None], 0.0)


def _ap_from_pr(tp_sorted: np.ndarray, num_gt: int, interpolation: str):
    tps = np.cumsum(tp_sorted).astype(np.float64)
    fps = np.cumsum(~tp_sorted).astype(np.float64)
    rc = tps / num_gt
    pr = tps / (fps + tps + _EPS)
    # monotone precision envelope (from the right)
    pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
    if interpolation == "coco101":
        rec_thrs = np.linspace(0.0, 1.0, 101)
        idx = np.searchsorted(rc, rec_thrs, side="left")
        q = np.zeros(len(rec_thrs))
        valid = idx < len(pr)
        q[valid] = pr[idx[valid]]
        return float(np.mean(q)), pr, rc
    if interpolation == "all_point":
        mrec = np.concatenate([[0.0], rc, [1.0]])
        mpre = np.concatenate([[0.0], pr, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.nonzero(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])), pr, rc
    raise ValueError(f"interpolation must be 'coco101' or 'all_point', got {interpolation!r}")


def evaluate_detections(
    detections: Sequence[Mapping],
    ground_truths: Sequence[Mapping],
    class_names: Sequence[str] = CLASS_NAMES,
    iou_threshold: float = 0.5,
    interpolation: str = "coco101",
    max_dets: int = 100,
) -> ApResult:
    """AP per class and mAP.

    ``detections[i]`` and ``ground_truths[i]`` belong to image i; each is a mapping with
    ``boxes`` (N, 4) xyxy and ``labels`` (N,) class indices; detections also ``scores`` (N,).
    Ground truth may add don't-care objects as ``ignore_boxes`` / ``ignore_labels`` (treated
    like COCO crowd regions, see :func:`_match_image`). Tensors or arrays are accepted.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truths)} images")
    nc = len(class_names)
    per_class_scores: list[list[np.ndarray]] = [[] for _ in range(nc)]
    per_class_tp: list[list[np.ndarray]] = [[] for _ in range(nc)]
    num_gt = np.zeros(nc, np.int64)
    num_det = np.zeros(nc, np.int64)
    for det, gt in zip(detections, ground_truths):
        db, ds, dl = _as_boxes(_np(det["boxes"])), _np(det["scores"]).astype(np.float64).reshape(-1), \
            _np(det["labels"]).astype(np.int64).reshape(-1)
        gb, gl = _as_boxes(_np(gt["boxes"])), _np(gt["labels"]).astype(np.int64).reshape(-1)
        if not (len(db) == len(ds) == len(dl)) or len(gb) != len(gl):
            raise ValueError("boxes, scores and labels must have the same length")
        gi = np.zeros(len(gb), bool)
        if gt.get("ignore_boxes") is not None and len(_np(gt["ignore_boxes"])):
            ib = _as_boxes(_np(gt["ignore_boxes"]))
            il = _np(gt["ignore_labels"]).astype(np.int64).reshape(-1)
            gb, gl = np.concatenate([gb, ib]), np.concatenate([gl, il])
            gi = np.concatenate([gi, np.ones(len(ib), bool)])
        for arr, what in ((dl, "detection"), (gl, "ground-truth")):
            if len(arr) and (arr.min() < 0 or arr.max() >= nc):
                raise ValueError(f"{what} label outside 0..{nc - 1}")
        for c in range(nc):
            gmask, dmask = gl == c, dl == c
            num_gt[c] += int((gmask & ~gi).sum())
            if not dmask.any():
                continue
            s, tp, ig = _match_image(db[dmask], ds[dmask], gb[gmask], gi[gmask], iou_threshold, max_dets)
            per_class_scores[c].append(s[~ig])
            per_class_tp[c].append(tp[~ig])
            num_det[c] += int((~ig).sum())
    ap = np.full(nc, np.nan)
    precisions, recalls = [], []
    for c in range(nc):
        if num_gt[c] == 0:
            precisions.append(np.zeros(0)); recalls.append(np.zeros(0))
            continue
        if per_class_scores[c]:
            scores = np.concatenate(per_class_scores[c])
            tp = np.concatenate(per_class_tp[c])
            order = np.argsort(-scores, kind="mergesort")
            tp = tp[order]
        else:
            tp = np.zeros(0, bool)
        ap[c], pr, rc = _ap_from_pr(tp, int(num_gt[c]), interpolation)
        precisions.append(pr); recalls.append(rc)
    return ApResult(ap=ap, class_names=tuple(class_names), num_gt=num_gt, num_det=num_det,
                    iou_threshold=iou_threshold, interpolation=interpolation,
                    precision=precisions, recall=recalls)


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


# ----------------------------------------------------------------------------- flips
def hflip_boxes(boxes, image_width: float) -> np.ndarray:
    """Mirror xyxy boxes about the vertical centre line of an image ``image_width`` wide."""
    b = _as_boxes(_np(boxes)).copy()
    x1 = image_width - b[:, 2]
    x2 = image_width - b[:, 0]
    b[:, 0], b[:, 2] = x1, x2
    return b


def hflip_annotation(ann: Mapping, image_width: float) -> dict:
    """Copy of a detection / ground-truth mapping with its boxes (and ignore boxes) mirrored."""
    out = {k: (None if v is None else _np(v)) for k, v in ann.items()}
    for k in ("boxes", "ignore_boxes"):
        if out.get(k) is not None:
            out[k] = hflip_boxes(out[k], image_width)
    return out


def evaluate_with_hflip(
    predict: Callable[[np.ndarray], Mapping],
    images: Iterable[np.ndarray],
    ground_truths: Sequence[Mapping],
    hflip: bool = True,
    **kwargs,
) -> ApResult:
    """Paper 000's protocol: AP over the test images *and* their horizontal flips.

    ``predict(image)`` takes an image ``(H, W, 3)`` (or ``(3, H, W)`` tensor-like: width is
    read from the last axis that is not 3) and returns a detection mapping in that image's
    pixel frame. With ``hflip`` each image is also predicted mirrored, and the mirrored
    ground truth is added as another image, so the AP covers 2N images.
    """
    dets, gts = [], []
    for img, gt in zip(images, ground_truths):
        dets.append(predict(img)); gts.append(gt)
        if hflip:
            chw = img.shape[0] == 3 and img.shape[-1] != 3
            width = img.shape[-1] if chw else img.shape[1]
            if hasattr(img, "flip"):  # torch tensor
                flipped = img.flip(-1 if chw else 1)
            else:
                flipped = np.ascontiguousarray(img[..., ::-1] if chw else img[:, ::-1])
            dets.append(predict(flipped)); gts.append(hflip_annotation(gt, width))
    return evaluate_detections(dets, gts, **kwargs)
