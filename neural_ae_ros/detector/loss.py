"""Training targets and losses of the detector head (CenterNet heatmap + TTFNet box regression).

Targets on the stride-4 grid, for every ground-truth box (input pixels, xyxy):

* heatmap: an elliptical Gaussian per box in its class channel, peak 1 at the cell that holds
  the box centre, ``sigma = alpha * box_size / 6`` (alpha = 0.54, TTFNet), merged by max;
* box regression: at every cell where the box's Gaussian is above 0.05 (and inside the box),
  the target is the box itself; the cell weight is the Gaussian value, normalised per box
  so that a box's weights sum to ``log(area)``; where boxes overlap the smaller one wins.

Losses: the CenterNet variant of the focal loss (alpha 2, beta 4) normalised by the number
of boxes, and a weighted GIoU loss (weight 5, TTFNet).
"""
from __future__ import annotations

import math

import torch

from .model import OUTPUT_STRIDE

ALPHA = 0.54
REG_WEIGHT = 5.0


def build_targets(boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, grid_hw: tuple[int, int],
                  stride: int = OUTPUT_STRIDE, ignore_boxes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Targets of one image. boxes (M, 4) xyxy input pixels, labels (M,); ``ignore_boxes``
    (don't-care objects): no heatmap loss on the cells they cover."""
    h, w = grid_hw
    heat = torch.zeros(num_classes, h, w)
    box_t = torch.zeros(4, h, w)
    box_w = torch.zeros(h, w)
    ignore = torch.zeros(h, w)
    if ignore_boxes is not None and ignore_boxes.numel():
        for x1, y1, x2, y2 in ignore_boxes.tolist():
            c0, c1 = int(max(x1 // stride, 0)), int(min(-(-x2 // stride), w))
            r0, r1 = int(max(y1 // stride, 0)), int(min(-(-y2 // stride), h))
            ignore[r0:r1, c0:c1] = 1.0
    if boxes.numel() == 0:
        return {"heatmap": heat, "box": box_t, "box_weight": box_w, "ignore": ignore}
    boxes = boxes.float()
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * stride
    for i in torch.argsort(areas, descending=True).tolist():  # small boxes last: they win overlaps
        x1, y1, x2, y2 = boxes[i].tolist()
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0:
            continue
        cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
        px = min(max(int(cx // stride), 0), w - 1)
        py = min(max(int(cy // stride), 0), h - 1)
        # Gaussian centred on the peak cell, in grid units
        sx = max(ALPHA * bw / stride / 6, 0.25)
        sy = max(ALPHA * bh / stride / 6, 0.25)
        gx = torch.exp(-((torch.arange(w, dtype=torch.float32) - px) ** 2) / (2 * sx * sx))
        gy = torch.exp(-((torch.arange(h, dtype=torch.float32) - py) ** 2) / (2 * sy * sy))
        g = gy[:, None] * gx[None, :]
        c = int(labels[i])
        heat[c] = torch.maximum(heat[c], g)
        inside = ((xs[None, :] >= x1) & (xs[None, :] <= x2) & (ys[:, None] >= y1) & (ys[:, None] <= y2))
        reg = (g > 0.05) & inside
        reg[py, px] = True
        gw = g * reg
        gw = gw / gw.sum() * math.log(max(bw * bh, 2.0))
        box_t[:, reg] = boxes[i][:, None]
        box_w[reg] = gw[reg]
    return {"heatmap": heat, "box": box_t, "box_weight": box_w, "ignore": ignore}


def focal_loss(logits: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """CenterNet focal loss, summed and divided by the number of peaks (>= 1); no negative
    loss on ``ignore`` cells (N, H, W)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    if ignore is not None:
        neg = neg * (1.0 - ignore[:, None])
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg).sum()
    num_pos = pos.sum().clamp(min=1.0)
    return (pos_loss + neg_loss) / num_pos


def giou_loss(pred_dist: torch.Tensor, target_box: torch.Tensor, weight: torch.Tensor,
              stride: int = OUTPUT_STRIDE) -> torch.Tensor:
    """Weighted GIoU loss between per-cell predicted boxes (from side distances) and targets."""
    n, _, h, w = pred_dist.shape
    mask = weight > 0
    if not mask.any():
        return pred_dist.sum() * 0.0
    ys = (torch.arange(h, dtype=pred_dist.dtype) + 0.5) * stride
    xs = (torch.arange(w, dtype=pred_dist.dtype) + 0.5) * stride
    cx = xs.view(1, 1, w).expand(n, h, w)[mask]
    cy = ys.view(1, h, 1).expand(n, h, w)[mask]
    d = pred_dist.permute(0, 2, 3, 1)[mask]  # (P, 4)
    t = target_box.permute(0, 2, 3, 1)[mask]
    wt = weight[mask]
    px1, py1, px2, py2 = cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]
    tx1, ty1, tx2, ty2 = t.unbind(1)
    iw = (torch.minimum(px2, tx2) - torch.maximum(px1, tx1)).clamp(min=0)
    ih = (torch.minimum(py2, ty2) - torch.maximum(py1, ty1)).clamp(min=0)
    inter = iw * ih
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    iou = inter / union.clamp(min=1e-6)
    ew = torch.maximum(px2, tx2) - torch.minimum(px1, tx1)
    eh = torch.maximum(py2, ty2) - torch.minimum(py1, ty1)
    enclose = (ew * eh).clamp(min=1e-6)
    giou = iou - (enclose - union) / enclose
    return ((1 - giou) * wt).sum() / wt.sum().clamp(min=1e-6)


def detection_loss(outputs: dict, targets: dict) -> dict[str, torch.Tensor]:
    """Total loss and its parts for a batch; ``targets`` holds stacked build_targets outputs."""
    heat = focal_loss(outputs["heatmap"], targets["heatmap"], targets.get("ignore"))
    reg = giou_loss(outputs["box"], targets["box"], targets["box_weight"]) * REG_WEIGHT
    return {"loss": heat + reg, "heatmap": heat.detach(), "box": reg.detach()}


def collate_targets(batch_boxes, batch_labels, num_classes: int, grid_hw: tuple[int, int],
                    batch_ignore=None) -> dict:
    batch_ignore = batch_ignore if batch_ignore is not None else [None] * len(batch_boxes)
    ts = [build_targets(b, l, num_classes, grid_hw, ignore_boxes=ig)
          for b, l, ig in zip(batch_boxes, batch_labels, batch_ignore)]
    return {k: torch.stack([t[k] for t in ts]) for k in ts[0]}
