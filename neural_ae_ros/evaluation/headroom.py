"""Exposure headroom: how much could *any* auto-exposure win over the classical ones?

Paper 000's simulation protocol (Sections 5.3 and 6.1) on a scene set of two-frame pairs:

- ``e_base = 0.5 M_white / (g1 mean(phi))`` of frame 1 (the paper's base exposure, Sec. 5.3,
  :func:`neural_ae_ros.imaging.exposure.base_exposure_s` on the Bayer mosaic).
- **Sweep**: frame 2 captured at ``2**ev * e_base`` for ``ev`` in ``-3 .. +3`` (13 exposures,
  0.5 EV apart): what a fixed exposure rule relative to e_base would get.
- **Oracle**: per scene, the sweep exposure with the highest detection score against the
  ground truth, ``TP - FP`` among detections with score >= ``oracle_score_threshold``
  (image and its mirror image summed; ties go to the exposure nearest e_base). No AE that
  picks one of the swept exposures can score more on that scene; it is the ceiling.
- **One step of a method** (``average``, ``gradient``): frame 1 captured at ``kappa e_base``,
  ``kappa in {1/k, k}``; the method sees frame 1's raw mosaic, the
  :class:`~neural_ae_ros.ae.controller.ExposureController` (Eq. 5 EMA with ``mu``, Eq. 6 split,
  simulation limits) gives the exposure of frame 2, which is captured and detected. Both
  values of kappa are run for every scene (the paper draws one of the two with equal
  probability and repeats 12 times: running both is the expectation of that draw without
  its sampling noise).
- AP at IoU 0.5 per class, mAP over the classes with ground truth (COCO 101-point, the
  project's :mod:`.detection_metrics`), over the frames and their horizontal flips.
- Paired bootstrap over scenes: the same resampled scene multiset for every configuration,
  percentile 95 % intervals of differences (e.g. oracle minus ``average`` at each k).

Noise: frame 1 and frame 2 each get one fixed noise seed per scene, the same for every
exposure and method, so configurations differ only by exposure (paired comparison).

The detector dominates the time; :class:`HeadroomRunner` batches it and caches every
scene's detections (``cache_dir/scene_K.npz``, keyed by the settings), so a rerun resumes.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .coco_matching import match_image_class
from .detection_metrics import CLASS_NAMES, hflip_boxes

DEFAULT_EV_SWEEP = tuple(float(v) for v in np.round(np.arange(-3.0, 3.0 + 1e-9, 0.5), 3))
DEFAULT_SHIFTS = (1.5, 4.0, 10.0)
DEFAULT_METHODS = ("average", "gradient")


@dataclass(frozen=True)
class HeadroomSettings:
    """What a headroom run measures. Changing a field other than ``oracle_score_threshold``
    invalidates the detection cache."""

    ev_sweep: tuple = DEFAULT_EV_SWEEP  # EV relative to e_base (frame 1)
    shifts: tuple = DEFAULT_SHIFTS  # k: frame 1 at {1/k, k} x e_base
    methods: tuple = DEFAULT_METHODS
    #: Eq. 5 smoothing for the one step. 0: the step the method asks for is applied, as in
    #: paper 000's training/test simulation (Sec. 5.3: "we simulate a 12-bit capture of the
    #: next frame with this adjusted exposure"); 0.9: the paper's inference-time EMA (Sec. 4.3).
    mu: float = 0.0
    hflip: bool = True
    seed: int = 1234  # noise seeds of the captures
    #: TP - FP of the per-scene oracle counts detections scoring at least this
    oracle_score_threshold: float = 0.5
    detector_score_threshold: float = 0.01
    checkpoint: str = "default"

    def cache_key(self) -> str:
        """Hash of the fields that change what is captured and detected (not how it is scored)."""
        d = asdict(self)
        d.pop("oracle_score_threshold")
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def sweep_key(ev: float) -> str:
    return f"sweep/{ev:+.2f}"


def method_key(method: str, k: float, kappa: float) -> str:
    return f"{method}/k{k:g}/kappa{kappa:.6g}"


# ---------------------------------------------------------------------- per-image evaluation
@dataclass
class ImageEval:
    """One image matched against its ground truth, per class: detection scores and TP flags
    (don't-care matches removed), ground-truth counts; plus TP and FP counts at a threshold."""

    scores: list  # per class: (n,) float64
    tp: list  # per class: (n,) bool
    num_gt: np.ndarray  # (C,)
    tp_at: int = 0
    fp_at: int = 0


def match_image(det: Mapping, gt: Mapping, num_classes: int, score_threshold: float,
                iou_threshold: float = 0.5, max_dets: int = 100) -> ImageEval:
    """COCO matching of one image (the same rules as :func:`.detection_metrics.evaluate_detections`)."""
    db = np.asarray(det["boxes"], np.float64).reshape(-1, 4)
    ds = np.asarray(det["scores"], np.float64).reshape(-1)
    dl = np.asarray(det["labels"], np.int64).reshape(-1)
    gb = np.asarray(gt["boxes"], np.float64).reshape(-1, 4)
    gl = np.asarray(gt["labels"], np.int64).reshape(-1)
    gi = np.zeros(len(gb), bool)
    ib = gt.get("ignore_boxes")
    if ib is not None and len(ib):
        gb = np.concatenate([gb, np.asarray(ib, np.float64).reshape(-1, 4)])
        gl = np.concatenate([gl, np.asarray(gt["ignore_labels"], np.int64).reshape(-1)])
        gi = np.concatenate([gi, np.ones(len(ib), bool)])
    scores, tps = [], []
    num_gt = np.zeros(num_classes, np.int64)
    tp_at = fp_at = 0
    for c in range(num_classes):
        gm, dm = gl == c, dl == c
        num_gt[c] = int((gm & ~gi).sum())
        if not dm.any():
            scores.append(np.zeros(0)); tps.append(np.zeros(0, bool))
            continue
        s, tp, ig = match_image_class(db[dm], ds[dm], gb[gm], gi[gm], iou_threshold, max_dets)
        s, tp = s[~ig], tp[~ig]
        scores.append(s); tps.append(tp)
        hi = s >= score_threshold
        tp_at += int(tp[hi].sum())
        fp_at += int((~tp[hi]).sum())
    return ImageEval(scores, tps, num_gt, tp_at, fp_at)


# -------------------------------------------------------------------------- weighted AP
class PooledConfig:
    """The detections of one configuration over all scenes, ranked once, so that the AP of
    any multiset of scenes (bootstrap weights) is a weighted cumulative sum."""

    def __init__(self, per_scene: Sequence[Sequence[ImageEval]], num_classes: int):
        self.num_classes = num_classes
        self.n_scenes = len(per_scene)
        self.gt = np.zeros((self.n_scenes, num_classes), np.float64)
        self.cls = []
        for c in range(num_classes):
            s_list, t_list, i_list = [], [], []
            for i, evs in enumerate(per_scene):
                for e in evs:
                    s_list.append(e.scores[c]); t_list.append(e.tp[c])
                    i_list.append(np.full(len(e.scores[c]), i, np.int64))
            s = np.concatenate(s_list) if s_list else np.zeros(0)
            t = np.concatenate(t_list) if t_list else np.zeros(0, bool)
            idx = np.concatenate(i_list) if i_list else np.zeros(0, np.int64)
            order = np.argsort(-s, kind="mergesort")
            self.cls.append((t[order].astype(np.float64), idx[order]))
        for i, evs in enumerate(per_scene):
            for e in evs:
                self.gt[i] += e.num_gt

    def ap(self, weights: np.ndarray | None = None) -> np.ndarray:
        """AP per class (NaN without ground truth) for scene weights (default all 1)."""
        w = np.ones(self.n_scenes) if weights is None else np.asarray(weights, np.float64)
        ngt = w @ self.gt
        out = np.full(self.num_classes, np.nan)
        thr = np.linspace(0.0, 1.0, 101)
        for c, (tp, idx) in enumerate(self.cls):
            if ngt[c] <= 0:
                continue
            wd = w[idx]
            keep = wd > 0
            tpw, wd = tp[keep] * wd[keep], wd[keep]
            if not len(wd):
                out[c] = 0.0
                continue
            tps = np.cumsum(tpw)
            fps = np.cumsum(wd - tpw)
            rc = tps / ngt[c]
            pr = tps / (tps + fps + np.spacing(1))
            pr = np.maximum.accumulate(pr[::-1])[::-1]
            j = np.searchsorted(rc, thr, side="left")
            q = np.zeros(len(thr))
            ok = j < len(pr)
            q[ok] = pr[j[ok]]
            out[c] = q.mean()
        return out

    def map(self, weights: np.ndarray | None = None) -> float:
        a = self.ap(weights)
        return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def bootstrap_weights(n_scenes: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n_scenes) multiplicities of scenes drawn with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_scenes, (n_boot, n_scenes))
    return np.stack([np.bincount(d, minlength=n_scenes) for d in draws]).astype(np.float64)


_BOOT_CACHE: dict = {}


def bootstrap_maps(c, weights: np.ndarray) -> np.ndarray:
    """mAP of configuration ``c`` on every resample (row of ``weights``), memoised per
    (configuration, weights) so that each is computed once however many differences use it."""
    key = (id(c), id(weights))
    hit = _BOOT_CACHE.get(key)
    if hit is None or hit[0] is not c or hit[1] is not weights:
        hit = (c, weights, np.array([c.map(w) for w in weights]))
        _BOOT_CACHE[key] = hit
    return hit[2]


def paired_difference(a: PooledConfig, b: PooledConfig, weights: np.ndarray) -> dict:
    """mAP(a) - mAP(b) in points (x100) on all scenes, and its percentile 95 % bootstrap
    interval over the rows of ``weights`` (the same resamples for both: paired)."""
    full = (a.map() - b.map()) * 100
    d = (bootstrap_maps(a, weights) - bootstrap_maps(b, weights)) * 100
    d = d[np.isfinite(d)]
    if not len(d):
        return {"mean": full, "ci95": [float("nan"), float("nan")], "n_boot": 0}
    lo, hi = np.percentile(d, [2.5, 97.5])
    return {"mean": round(float(full), 3), "ci95": [round(float(lo), 3), round(float(hi), 3)],
            "n_boot": int(len(d))}


def oracle_choice(scores: np.ndarray, evs: Sequence[float]) -> np.ndarray:
    """Index of the best exposure per scene: ``scores`` (S, E) TP - FP; ties -> smallest |ev|."""
    scores = np.asarray(scores, np.float64)
    evs = np.asarray(evs, np.float64)
    # lexicographic: max score, then min |ev| (then min ev)
    pref = np.lexsort((evs, np.abs(evs)))  # exposure indices in tie-break preference order
    best = scores[:, pref].argmax(1)  # argmax returns the first maximum -> preferred one
    return pref[best]


class ChoiceView:
    """One image set per scene picked from a pool of ``n_options`` per scene (the sweep):
    ``pool`` is a :class:`PooledConfig` over ``n_scenes * n_options`` virtual scenes
    (scene ``s``, option ``e`` at ``s * n_options + e``), ``choice[s]`` the option used."""

    def __init__(self, pool: PooledConfig, n_options: int, choice: np.ndarray):
        self.pool, self.n_options = pool, n_options
        self.choice = np.asarray(choice, np.int64)
        self.n_scenes = len(self.choice)

    def _expand(self, weights):
        w = np.ones(self.n_scenes) if weights is None else np.asarray(weights, np.float64)
        full = np.zeros(self.n_scenes * self.n_options)
        full[np.arange(self.n_scenes) * self.n_options + self.choice] = w
        return full

    def ap(self, weights=None) -> np.ndarray:
        return self.pool.ap(self._expand(weights))

    def map(self, weights=None) -> float:
        return self.pool.map(self._expand(weights))


def map_oracle_choice(pool: PooledConfig, n_options: int, start: np.ndarray, passes: int = 3,
                      progress: Callable | None = None) -> np.ndarray:
    """Per-scene options that maximise the mAP of the whole set (coordinate ascent from
    ``start``: scene by scene, take the option that raises the set's mAP most; repeat until
    no scene changes or ``passes`` are done). Never below the mAP of ``start``: started from
    the best fixed option it is at least as good as every fixed exposure."""
    choice = np.asarray(start, np.int64).copy()
    n = len(choice)
    view = ChoiceView(pool, n_options, choice)
    best = view.map()
    for _ in range(passes):
        changed = False
        for s in range(n):
            keep = choice[s]
            for e in range(n_options):
                if e == keep:
                    continue
                choice[s] = e
                m = view.map()
                if m > best + 1e-12:
                    best, keep, changed = m, e, True
            choice[s] = keep
            if progress:
                progress()
        if not changed:
            break
    return choice
