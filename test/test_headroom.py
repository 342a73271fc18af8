"""Headroom measurement (issue 7): pooled AP, paired bootstrap, oracle, report structure, one step."""
from __future__ import annotations

import numpy as np
import pytest

from neural_ae_ros.evaluation.detection_metrics import evaluate_detections
from neural_ae_ros.evaluation.headroom import (HeadroomSettings, PooledConfig, bootstrap_weights, match_image,
                                               method_key, oracle_choice, paired_difference, sweep_key)

NC = 6


def _scene(rng, n_obj=4):
    xy = rng.uniform(0, 500, (n_obj, 2))
    wh = rng.uniform(20, 80, (n_obj, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    return {"boxes": boxes, "labels": rng.integers(0, NC, n_obj), "ignore_boxes": np.zeros((0, 4)),
            "ignore_labels": np.zeros(0, np.int64)}


def _detect(rng, gt, quality):
    """Detections: each object found with probability ``quality`` (jittered box, high score),
    plus false positives with scores below the true ones with probability ``quality``."""
    b, s, l = [], [], []
    for box, lab in zip(gt["boxes"], gt["labels"]):
        if rng.random() < quality:
            b.append(box + rng.normal(0, 1.0, 4)); s.append(rng.uniform(0.6, 1.0)); l.append(lab)
    for _ in range(3):
        xy = rng.uniform(0, 500, 2)
        b.append(np.concatenate([xy, xy + 30])); l.append(int(rng.integers(0, NC)))
        s.append(rng.uniform(0.0, 0.5) if rng.random() < quality else rng.uniform(0.6, 1.0))
    return {"boxes": np.array(b).reshape(-1, 4), "scores": np.array(s), "labels": np.array(l, np.int64)}


def _data(n_scenes=40, qualities=(0.9,), seed=0):
    rng = np.random.default_rng(seed)
    gts = [_scene(rng) for _ in range(n_scenes)]
    dets = {q: [_detect(rng, g, q) for g in gts] for q in qualities}
    return gts, dets


def test_pooled_ap_equals_the_project_metric_and_weights_equal_duplicated_images():
    gts, dets = _data(30, (0.7,))
    d = dets[0.7]
    pooled = PooledConfig([[match_image(x, g, NC, 0.5)] for x, g in zip(d, gts)], NC)
    ref = evaluate_detections(d, gts)
    np.testing.assert_allclose(pooled.ap(), ref.ap, atol=1e-9)
    w = np.random.default_rng(1).integers(0, 3, len(gts)).astype(float)
    dup_d = [x for x, k in zip(d, w) for _ in range(int(k))]
    dup_g = [g for g, k in zip(gts, w) for _ in range(int(k))]
    np.testing.assert_allclose(pooled.ap(w), evaluate_detections(dup_d, dup_g).ap, atol=1e-9)


def test_bootstrap_interval_contains_zero_for_identical_methods_and_is_above_zero_for_a_better_one():
    gts, dets = _data(60, (0.55, 0.95))
    good = PooledConfig([[match_image(x, g, NC, 0.5)] for x, g in zip(dets[0.95], gts)], NC)
    poor = PooledConfig([[match_image(x, g, NC, 0.5)] for x, g in zip(dets[0.55], gts)], NC)
    poor2 = PooledConfig([[match_image(x, g, NC, 0.5)] for x, g in zip(dets[0.55], gts)], NC)
    w = bootstrap_weights(60, 300, seed=0)
    same = paired_difference(poor, poor2, w)
    assert same["mean"] == 0 and same["ci95"][0] <= 0 <= same["ci95"][1]
    better = paired_difference(good, poor, w)
    assert better["mean"] > 10 and better["ci95"][0] > 0
    worse = paired_difference(poor, good, w)
    assert worse["ci95"][1] < 0


def test_bootstrap_is_paired_scene_noise_cancels():
    """Two configurations equal up to one scene: the paired interval is narrow around the
    one-scene difference, far narrower than either mAP's own bootstrap spread."""
    gts, dets = _data(60, (0.6, 0.95))
    a_list = [[match_image(x, g, NC, 0.5)] for x, g in zip(dets[0.6], gts)]
    b_list = list(a_list)
    b_list[0] = [match_image(dets[0.95][0], gts[0], NC, 0.5)]
    a, b = PooledConfig(a_list, NC), PooledConfig(b_list, NC)
    w = bootstrap_weights(60, 300, seed=0)
    d = paired_difference(b, a, w)
    spread_a = np.percentile([a.map(x) * 100 for x in w], [2.5, 97.5])
    assert d["ci95"][1] - d["ci95"][0] < 0.5 * (spread_a[1] - spread_a[0])


def test_oracle_beats_or_equals_every_fixed_exposure_per_scene_and_breaks_ties_toward_e_base():
    evs = [-1.0, -0.5, 0.0, 0.5, 1.0]
    rng = np.random.default_rng(3)
    score = rng.integers(-3, 5, (50, len(evs))).astype(float)
    best = oracle_choice(score, evs)
    assert (score[np.arange(50), best][:, None] >= score).all()
    tie = np.array([[2, 5, 1, 5, 5]], float)  # best at -0.5, +0.5, +1: nearest e_base, then lower
    assert evs[oracle_choice(tie, evs)[0]] == -0.5
    assert evs[oracle_choice(np.array([[1, 1, 1, 1, 1]], float), evs)[0]] == 0.0


def test_map_oracle_is_at_least_the_best_fixed_exposure_and_the_tp_fp_oracle():
    from neural_ae_ros.evaluation.headroom import ChoiceView, map_oracle_choice

    gts, dets = _data(25, (0.3, 0.6, 0.9), seed=2)
    rng = np.random.default_rng(1)
    qs = [rng.permutation([0.3, 0.6, 0.9]) for _ in gts]  # option e of scene s has quality qs[s][e]
    pool = PooledConfig([[match_image(dets[q][s], gts[s], NC, 0.5)] for s in range(25) for q in qs[s]], NC)
    fixed = [ChoiceView(pool, 3, np.full(25, e)).map() for e in range(3)]
    best = map_oracle_choice(pool, 3, np.full(25, int(np.argmax(fixed))))
    assert ChoiceView(pool, 3, best).map() >= max(fixed)
    # it finds the best option of (nearly) every scene
    assert np.mean([qs[s][best[s]] == 0.9 for s in range(25)]) > 0.8


def test_match_image_counts_true_and_false_positives_above_the_threshold():
    gt = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "labels": np.array([0, 1])}
    det = {"boxes": np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], float),
           "scores": np.array([0.9, 0.8, 0.2]), "labels": np.array([0, 0, 1])}
    e = match_image(det, gt, NC, score_threshold=0.5)
    assert (e.tp_at, e.fp_at) == (1, 1)  # the class-1 hit is below the threshold
    assert e.num_gt.tolist() == [1, 1, 0, 0, 0, 0]


class _Rec:
    def __init__(self, name, gt, kind):
        self.name, self.kind = name, kind
        self.boxes, self.labels = gt["boxes"], gt["labels"]
        self.ignore_boxes, self.ignore_labels = None, None
        self.width, self.height = 640, 384


def test_summary_has_the_issue_structure_and_the_oracle_ceiling():
    from neural_ae_ros.evaluation.headroom_run import summarize

    settings = HeadroomSettings(ev_sweep=(-1.0, 0.0, 1.0), shifts=(1.5, 4.0, 10.0), methods=("average",),
                                hflip=False)
    gts, dets = _data(20, (0.4, 0.7, 0.95), seed=5)
    rng = np.random.default_rng(0)
    records, results = [], {}
    for i, g in enumerate(gts):
        name = f"scene_{i:05d}"
        records.append(_Rec(name, g, "tunnel_exit" if i % 2 else "night_oncoming"))
        qs = rng.permutation([0.4, 0.7, 0.95])  # the best exposure differs per scene
        d = {sweep_key(ev): dets[q][i] for ev, q in zip(settings.ev_sweep, qs)}
        ev = {}
        for k in settings.shifts:
            for kappa in (1 / k, k):
                d[method_key("average", k, kappa)] = dets[0.4 if k == 10 else 0.7][i]
                ev[method_key("average", k, kappa)] = 0.0
        results[name] = ({"e_base_s": 1e-3, "ev": ev}, d)
    r = summarize(records, results, settings, n_boot=200)
    assert set(r["oracle_minus_average"]) == {"1.5", "4", "10"}
    for v in r["oracle_minus_average"].values():
        assert set(v) >= {"mean", "ci95"} and len(v["ci95"]) == 2
    assert set(r["sweep"]) == {"-1.0", "+0.0", "+1.0"}
    assert r["oracle_score_check"] is True
    assert r["oracle"]["map"] >= max(s["map"] for s in r["sweep"].values())
    assert r["oracle_map"]["map"] >= r["oracle"]["map"]  # joint mAP choice: the ceiling of the metric itself
    assert r["oracle_minus_average"]["10"]["ci95"][0] > 0  # the k = 10 step got the worst detections
    assert r["methods"]["average"]["10"]["map"] < r["methods"]["average"]["1.5"]["map"]
    assert set(r["by_kind"]) == {"tunnel_exit", "night_oncoming"}


def _uniform_pair(level_e_per_s=2e5, size=(64, 96)):
    rng = np.random.default_rng(0)
    rad = np.full((3, *size), level_e_per_s, np.float32) * rng.uniform(0.5, 1.5, (1, *size)).astype(np.float32)
    return rad, rad.copy()


def test_one_step_of_average_from_a_shifted_frame_lands_near_e_base_on_a_low_dynamic_range_scene():
    from neural_ae_ros.evaluation.headroom_run import PairCapture, scene_exposures

    cap = PairCapture(*_uniform_pair(), noise_seed=1)
    s = HeadroomSettings(methods=("average",), shifts=(4.0,), mu=0.0)
    e = scene_exposures(cap, s)
    assert e[sweep_key(1.0)] == pytest.approx(2 * cap.e_base_s)
    # from 4x under, the linear mean tells the exact correction
    assert np.log2(e[method_key("average", 4.0, 0.25)] / cap.e_base_s) == pytest.approx(0.0, abs=0.1)
    # from 4x over every pixel clips: the mean reads ~white, u = 0.5, one step lands at +1 EV
    assert np.log2(e[method_key("average", 4.0, 4.0)] / cap.e_base_s) == pytest.approx(1.0, abs=0.05)
    # the paper's inference EMA (mu = 0.9) moves only a tenth of the way in log exposure
    e9 = scene_exposures(cap, HeadroomSettings(methods=("average",), shifts=(4.0,), mu=0.9))
    assert np.log2(e9[method_key("average", 4.0, 4.0)] / cap.e_base_s) == pytest.approx(2 - 0.1, abs=0.05)


def test_cache_roundtrip_and_settings_key(tmp_path):
    from neural_ae_ros.evaluation.headroom_run import load_cached, save_cached

    d = {"sweep/+0.00": {"boxes": np.ones((2, 4)), "scores": np.array([0.5, 0.4]), "labels": np.array([1, 2])}}
    key = HeadroomSettings().cache_key()
    save_cached(tmp_path, "scene_00000", {"settings_key": key, "e_base_s": 1e-3}, d)
    meta, back = load_cached(tmp_path, "scene_00000", key)
    assert meta["e_base_s"] == 1e-3 and back["sweep/+0.00"]["labels"].tolist() == [1, 2]
    assert load_cached(tmp_path, "scene_00000", HeadroomSettings(mu=0.9).cache_key()) is None


def test_channels_last_batch_detection_equals_the_runtime_path():
    import torch

    from neural_ae_ros.detector.inference import load_detector
    from neural_ae_ros.evaluation.headroom_run import _detect_batch

    det = load_detector(None, score_threshold=0.01)
    x = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    ref = det.detect_tensor(x)
    got = _detect_batch(det, x)
    for r, g in zip(ref, got):
        n = min(len(r.scores), len(g["scores"]), 20)
        np.testing.assert_allclose(g["scores"][:n], r.scores.numpy()[:n], atol=1e-4)
        np.testing.assert_allclose(g["boxes"][:n], r.boxes.numpy()[:n], atol=1e-2)


def test_headroom_run_in_shards_reports_what_one_run_reports(tmp_path):
    """Two --shard processes fill one cache (here one after the other); the report made from it
    equals a single run's; a shard run reports nothing and says so."""
    from neural_ae_ros.evaluation.headroom_run import run_headroom
    from neural_ae_ros.scenes.generate import generate_split

    scenes = tmp_path / "pairs"
    generate_split(scenes, "test", 3, seed=5, width=256, height=160, progress=False)
    settings = HeadroomSettings(ev_sweep=(-1.0, 0.0, 1.0), shifts=(4.0,), methods=("average",), hflip=False)
    kw = dict(n_boot=50, progress=False)
    whole = run_headroom(scenes, settings, cache_dir=tmp_path / "whole", log=lambda *_: None, **kw)
    logs = []
    for i in (1, 0):
        assert run_headroom(scenes, settings, cache_dir=tmp_path / "sharded", shard=(i, 2), log=logs.append, **kw) == {}
    assert any("shard 1/2 done (1 scenes)" in s for s in logs) and any("shard 0/2 done (2 scenes)" in s for s in logs)
    logs = []
    report = run_headroom(scenes, settings, cache_dir=tmp_path / "sharded", log=logs.append, **kw)
    assert any("3 cached" in s for s in logs), logs
    assert report["detector_device"] == "cpu"
    for key in ("sweep", "oracle_minus_average"):
        assert report[key] == whole[key]
