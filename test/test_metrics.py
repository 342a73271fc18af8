"""AP@0.5 / mAP against pycocotools (COCOeval) on random detections, to 1e-6."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from neural_ae_ros.classes import CLASS_NAMES
from neural_ae_ros.evaluation.detection_metrics import (box_iou, evaluate_detections, evaluate_with_hflip,
                                   hflip_boxes)


def _random_case(rng, n_images=25, nc=6, max_gt=6, max_det=12, width=640, height=384, with_ignore=False):
    gts, dets = [], []
    for _ in range(n_images):
        ng = rng.integers(0, max_gt + 1)
        xy = rng.uniform(0, [width - 40, height - 40], (ng, 2))
        wh = rng.uniform(8, 120, (ng, 2))
        gb = np.concatenate([xy, np.minimum(xy + wh, [width, height])], 1)
        gl = rng.integers(0, nc, ng)
        # detections: jittered copies of some gts (true-ish positives) + random boxes
        nd_near = rng.integers(0, ng + 1) if ng else 0
        src = rng.choice(ng, nd_near) if ng else np.zeros(0, int)
        jitter = rng.normal(0, 3, (nd_near, 4))
        near = gb[src] + jitter
        near[:, 2:] = np.maximum(near[:, 2:], near[:, :2] + 1)
        nd_rand = rng.integers(0, max_det - nd_near + 1)
        xy = rng.uniform(0, [width - 40, height - 40], (nd_rand, 2))
        wh = rng.uniform(8, 120, (nd_rand, 2))
        rb = np.concatenate([xy, xy + wh], 1)
        db = np.concatenate([near, rb], 0)
        dl = np.concatenate([np.where(rng.random(nd_near) < 0.85, gl[src], rng.integers(0, nc, nd_near)),
                             rng.integers(0, nc, nd_rand)]).astype(int)
        ds = rng.random(len(db))
        gt = {"boxes": gb, "labels": gl}
        if with_ignore:
            ni = rng.integers(0, 3)
            xy = rng.uniform(0, [width - 40, height - 40], (ni, 2))
            gt["ignore_boxes"] = np.concatenate([xy, xy + rng.uniform(6, 60, (ni, 2))], 1)
            gt["ignore_labels"] = rng.integers(0, nc, ni)
            # some detections right on the ignored objects
            if ni:
                db = np.concatenate([db, gt["ignore_boxes"] + rng.normal(0, 2, (ni, 4))])
                dl = np.concatenate([dl, gt["ignore_labels"]])
                ds = np.concatenate([ds, rng.random(ni)])
        gts.append(gt)
        dets.append({"boxes": db, "scores": ds, "labels": dl})
    return dets, gts


def _pycocotools_ap(dets, gts, nc, max_dets=100):
    import pycocotools.coco as coco_mod  # pinned in requirements.txt: missing is a failure
    import pycocotools.cocoeval as cocoeval_mod
    images, annotations, results = [], [], []
    aid = 1
    for i, (d, g) in enumerate(zip(dets, gts)):
        images.append({"id": i + 1, "width": 640, "height": 384})
        gb, gl, crowd = list(g["boxes"]), list(g["labels"]), [0] * len(g["boxes"])
        if g.get("ignore_boxes") is not None:
            gb += list(g["ignore_boxes"]); gl += list(g["ignore_labels"]); crowd += [1] * len(g["ignore_boxes"])
        for b, l, cr in zip(gb, gl, crowd):
            w, h = b[2] - b[0], b[3] - b[1]
            annotations.append({"id": aid, "image_id": i + 1, "category_id": int(l) + 1,
                                "bbox": [float(b[0]), float(b[1]), float(w), float(h)],
                                "area": float(w * h), "iscrowd": cr})
            aid += 1
        for b, s, l in zip(d["boxes"], d["scores"], d["labels"]):
            results.append({"image_id": i + 1, "category_id": int(l) + 1,
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                            "score": float(s)})
    gt = coco_mod.COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": c + 1, "name": CLASS_NAMES[c]} for c in range(nc)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results) if results else coco_mod.COCO()
        ev = cocoeval_mod.COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.maxDets = [max_dets]
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][0, :, :, 0, 0]  # (101 recall thresholds, K)
    ap = np.array([prec[:, k].mean() if (prec[:, k] > -1).all() else np.nan for k in range(nc)])
    return ap


@pytest.mark.parametrize("seed,with_ignore", [(0, False), (1, False), (2, True), (3, True), (4, True)])
def test_ap_matches_pycocotools(seed, with_ignore):
    """Regular ground truth, and don't-care objects as COCO crowd regions (iscrowd=1)."""
    rng = np.random.default_rng(seed)
    dets, gts = _random_case(rng, n_images=20 + 5 * seed, with_ignore=with_ignore)
    ours = evaluate_detections(dets, gts)
    ref = _pycocotools_ap(dets, gts, len(CLASS_NAMES))
    assert np.array_equal(np.isnan(ours.ap), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert ok.sum() >= 4
    np.testing.assert_allclose(ours.ap[ok], ref[ok], atol=1e-6, rtol=0)
    assert abs(ours.map - np.nanmean(ref)) < 1e-6


def test_max_dets_matches_pycocotools():
    rng = np.random.default_rng(7)
    dets, gts = _random_case(rng, n_images=10, max_det=40)
    ours = evaluate_detections(dets, gts, max_dets=5)
    ref = _pycocotools_ap(dets, gts, len(CLASS_NAMES), max_dets=5)
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours.ap[ok], ref[ok], atol=1e-6, rtol=0)


def test_perfect_and_empty():
    gts = [{"boxes": [[0, 0, 10, 10], [20, 20, 40, 50]], "labels": [2, 3]}]
    dets = [{"boxes": [[0, 0, 10, 10], [20, 20, 40, 50]], "scores": [0.9, 0.8], "labels": [2, 3]}]
    r = evaluate_detections(dets, gts)
    assert r.ap[2] == pytest.approx(1.0) and r.ap[3] == pytest.approx(1.0)
    assert np.isnan(r.ap[0]) and r.map == pytest.approx(1.0)
    r = evaluate_detections([{"boxes": np.zeros((0, 4)), "scores": [], "labels": []}], gts)
    assert r.ap[2] == 0.0 and r.map == 0.0
    # a false positive ranked above the one true positive: precision 0.5 at every recall -> AP 0.5
    d2 = [{"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "scores": [0.4, 0.9], "labels": [2, 2]}]
    g2 = [{"boxes": [[0, 0, 10, 10]], "labels": [2]}]
    assert evaluate_detections(d2, g2).ap[2] == pytest.approx(0.5)
    # the same false positive on a don't-care region counts for nothing -> AP 1
    g3 = [{"boxes": [[0, 0, 10, 10]], "labels": [2], "ignore_boxes": [[48, 48, 70, 70]], "ignore_labels": [2]}]
    r3 = evaluate_detections(d2, g3)
    assert r3.ap[2] == pytest.approx(1.0) and r3.num_det[2] == 1 and r3.num_gt[2] == 1
    with pytest.raises(ValueError, match="interpolation"):
        evaluate_detections(d2, g2, interpolation="all_point")
    with pytest.raises(ValueError):
        evaluate_detections([{"boxes": [[0, 0, 1, 1]], "scores": [1], "labels": [9]}], g2)


def test_iou_and_flip():
    a = np.array([[0, 0, 10, 10]])
    assert box_iou(a, np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)
    assert box_iou(a, np.array([[20, 20, 30, 30]]))[0, 0] == 0
    np.testing.assert_allclose(hflip_boxes([[10, 5, 30, 25]], 100), [[70, 5, 90, 25]])


def test_hflip_evaluation_with_mirror_consistent_predictor():
    img = np.zeros((40, 100, 3), np.uint8)
    img[10:20, 10:30] = 255  # a bright box the "detector" finds
    gt = {"boxes": np.array([[10, 10, 30, 20]], float), "labels": np.array([1])}

    def predict(im):
        ys, xs = np.nonzero(im[..., 0])
        return {"boxes": [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], "scores": [0.9], "labels": [1]}

    r = evaluate_with_hflip(predict, [img], [gt])
    assert r.num_gt[1] == 2 and r.ap[1] == pytest.approx(1.0)


def test_known_ap_values_by_hand():
    """Two images, TP (0.9), FP (0.8), TP (0.7): precision 1 up to recall 0.5, then 2/3.

    COCO 101-point AP = (51 * 1 + 50 * 2/3) / 101; IoU 100/210 < 0.5 makes the 0.8 box a miss."""
    gts = [{"boxes": [[0, 0, 10, 10]], "labels": [4]}, {"boxes": [[100, 50, 120, 90]], "labels": [4]}]
    dets = [{"boxes": [[0, 0, 10, 11], [0, 0, 10, 21]], "scores": [0.9, 0.8], "labels": [4, 4]},
            {"boxes": [[101, 50, 121, 90]], "scores": [0.7], "labels": [4]}]
    r = evaluate_detections(dets, gts)
    assert r.ap[4] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-12)
    assert r.num_gt[4] == 2 and r.num_det[4] == 3
    assert np.isnan(r.ap[[0, 1, 2, 3, 5]]).all() and r.map == pytest.approx(r.ap[4])
    # the flipped ranking (FP last) reaches recall 1 at precision 1
    dets[0]["scores"] = [0.9, 0.1]
    assert evaluate_detections(dets, gts).ap[4] == pytest.approx(1.0)
