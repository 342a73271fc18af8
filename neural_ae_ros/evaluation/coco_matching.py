"""Greedy COCO matching of one image and one class, for AP over bootstrap-weighted scene sets.

:mod:`neural_ae_ros.evaluation.detection_metrics` scores with pycocotools. The headroom and
benchmark statistics need the AP of many resampled scene multisets (paired bootstrap: 1000+
resamples per configuration); re-running COCOeval per resample would take ~1 s each, so
:mod:`neural_ae_ros.evaluation.headroom` matches every image once with the same rules as
COCOeval's ``evaluateImg`` (below) and then ranks pooled detections per resample. Its tests
check that the pooled AP at unit weights equals pycocotools' AP to 1e-9.
"""
from __future__ import annotations

import numpy as np

from neural_ae_ros.evaluation.detection_metrics import box_iou

__all__ = ["match_image_class"]


def match_image_class(det_boxes, det_scores, gt_boxes, gt_ignore, iou_threshold, max_dets):
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
