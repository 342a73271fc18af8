"""``neural-ae benchmark``: paper 000 Table 1 (Section 6.1) on a scene set, every method with its
own detector, against an oracle ceiling.

Protocol (per scene pair written by ``neural-ae scenes``, frame 2 labelled):

* frame 1 is captured at ``kappa * e_base`` with ``kappa in {1/k, k}`` (paper: equal
  probability), the method looks at frame 1 and picks frame 2's exposure in one step (its
  adjustment applied in full, as in the paper's simulation, Sec. 5.3; Eq. 6 split with
  T_max = 15 ms and uncapped gain so every exposure is realisable), frame 2 is captured
  through the sensor model (IMX249-like) and the ISP and detected by **the method's own
  detector** (Table 2's fairness: each method fine-tunes its detector with its AE in the loop,
  ``neural-ae train --method M``);
* AP@0.5 per class and mAP over the classes with ground truth, over the frames and their
  horizontal flips; ``R`` repeats each draw one ``kappa`` per pair; mean and standard deviation
  over the repeats. Both values of kappa are captured once per pair (cached), so repeats cost
  nothing but the draw;
* ``oracle``: per pair, frame 2 at the exposure of a fine sweep (``--oracle-step`` EV over
  -3..+3 EV around e_base) that maximises TP - FP of the oracle's detector (the shipped
  default) against the ground truth (image + flip): the ceiling no one-step policy choosing
  among those exposures can pass, and the yardstick of how much of the gap to ``average``
  each method closes;
* paired bootstrap 95 % intervals (scenes resampled, both kappa sides pooled = the expectation
  of the draw) of each method's mAP minus ``average``'s.

The detections of every (scene, method) are cached under the settings and the weights' hashes,
so an interrupted run resumes.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from neural_ae_ros.classes import CLASS_NAMES
from neural_ae_ros.config import DATA_DIR
from neural_ae_ros.evaluation.headroom import PooledConfig, bootstrap_weights, oracle_choice, paired_difference
from neural_ae_ros.evaluation.headroom_run import (PairCapture, _commit, _detect_all, _machine, in_shard,
                                                   load_cached, match_scene, save_cached)
from neural_ae_ros.evaluation.reports import write_report

__all__ = ["BenchmarkSettings", "MethodUnderTest", "resolve_methods", "run_benchmark", "summarize_benchmark",
           "CLASSICAL", "LEARNED", "AE_WEIGHTS_DIR", "PAPER_TABLE1", "PAPER_TABLE1_AP", "table1_markdown"]

CLASSICAL = ("average", "gradient")
LEARNED = ("histogram_nn", "semantic_nn", "hybrid_nn")
#: Shipped weights: ``<method>.pt`` (exposure network) and ``<method>_detector.pt`` (its detector).
AE_WEIGHTS_DIR = DATA_DIR / "ae"
#: Paper 000 Table 1 (AP@0.5 %, classes in CLASS_NAMES order, then mAP), for the README table
#: beside ours. Source: /work/shared/seeds/000 (Onzon et al. 2021), Table 1; each block of the
#: table is followed by its caption (k = 1.5, 4, 10), and the classical rows match Table 2's
#: "fine tuned on HDR dataset with AE" rows.
PAPER_TABLE1_AP = {
    "1.5": {"gradient": (17.56, 31.26, 60.70, 28.92, 21.90, 30.07, 31.73),
            "average": (16.01, 29.74, 59.56, 28.85, 21.53, 29.70, 30.90),
            "histogram_nn": (19.87, 33.11, 60.43, 29.55, 22.60, 31.42, 32.83),
            "semantic_nn": (20.19, 34.15, 60.87, 30.21, 23.35, 30.87, 33.27),
            "hybrid_nn": (20.18, 37.06, 61.07, 30.60, 23.98, 31.18, 34.01)},
    "4": {"gradient": (17.02, 25.47, 57.27, 24.93, 20.87, 27.95, 28.92),
          "average": (15.50, 29.09, 58.08, 27.17, 21.29, 28.63, 29.96),
          "histogram_nn": (19.80, 33.99, 60.32, 29.41, 22.69, 31.34, 32.92),
          "semantic_nn": (19.76, 32.55, 60.72, 30.38, 23.50, 31.41, 33.05),
          "hybrid_nn": (20.29, 37.29, 61.22, 30.44, 23.95, 31.28, 34.08)},
    "10": {"gradient": (13.22, 19.81, 48.00, 18.61, 16.18, 21.62, 22.91),
           "average": (12.99, 25.10, 53.83, 23.81, 18.62, 26.30, 26.77),
           "histogram_nn": (18.32, 32.06, 60.39, 28.44, 22.70, 31.12, 32.17),
           "semantic_nn": (17.65, 26.82, 60.19, 28.97, 23.20, 30.75, 31.26),
           "hybrid_nn": (19.42, 35.18, 61.01, 29.81, 23.70, 30.96, 33.35)},
}
#: Paper 000 Table 1 mAP (%) per method and k.
PAPER_TABLE1 = {m: {k: block[m][-1] for k, block in PAPER_TABLE1_AP.items()}
                for m in PAPER_TABLE1_AP["1.5"]}


@dataclass(frozen=True)
class BenchmarkSettings:
    shifts: tuple = (1.5, 4.0, 10.0)
    repeats: int = 12
    seed: int = 0
    hflip: bool = True
    oracle_step_ev: float = 0.25
    oracle_range_ev: float = 3.0
    oracle_score_threshold: float = 0.5
    detector_score_threshold: float = 0.01

    def oracle_evs(self) -> tuple:
        n = int(round(self.oracle_range_ev / self.oracle_step_ev))
        return tuple(round(i * self.oracle_step_ev, 4) for i in range(-n, n + 1))


@dataclass(frozen=True)
class MethodUnderTest:
    """A method and the files it runs with; ``detector`` None = the shipped default detector."""

    name: str
    detector: Optional[str] = None
    ae_checkpoint: Optional[str] = None

    def files_key(self) -> str:
        h = hashlib.sha1(self.name.encode())
        for f in (self.detector, self.ae_checkpoint):
            if f:
                h.update(Path(f).read_bytes())
        return h.hexdigest()[:12]


def resolve_methods(names: Sequence[str], weights_dir=AE_WEIGHTS_DIR, shared_detector: bool = False,
                    log: Callable = print, oracle_detector: Optional[str] = None) -> List[MethodUnderTest]:
    """Each method's files. A learned method without its weights is an error naming the file and
    the command that makes it; a classical method without its fine-tuned detector is an error too
    unless ``shared_detector`` (then the shipped detector is used and the report says so).
    ``oracle_detector``: the method whose detector the oracle's sweep is scored with (None: the
    shipped default detector)."""
    weights_dir = Path(weights_dir)
    out = []
    for name in names:
        if name == "oracle":
            if oracle_detector is None:
                out.append(MethodUnderTest("oracle"))
            else:
                det = weights_dir / f"{oracle_detector}_detector.pt"
                if oracle_detector not in CLASSICAL + LEARNED or not det.is_file():
                    raise FileNotFoundError(f"oracle: detector of {oracle_detector!r} ({det}) is missing")
                out.append(MethodUnderTest("oracle", str(det)))
            continue
        det = weights_dir / f"{name}_detector.pt"
        if name in LEARNED:
            ae = weights_dir / f"{name}.pt"
            for f in (ae, det):
                if not f.is_file():
                    raise FileNotFoundError(f"{name}: {f} is missing; make it with `neural-ae train --method {name} "
                                            f"--scenes TRAIN --out {weights_dir / (name + '.pt')}`")
            out.append(MethodUnderTest(name, str(det), str(ae)))
        elif name in CLASSICAL:
            if det.is_file():
                out.append(MethodUnderTest(name, str(det)))
            elif shared_detector:
                log(f"benchmark: {name}: no fine-tuned detector ({det}); using the shipped default detector "
                    "(not the paper's per-method fairness: said in the report)")
                out.append(MethodUnderTest(name, None))
            else:
                raise FileNotFoundError(f"{name}: its fine-tuned detector {det} is missing; make it with "
                                        f"`neural-ae train --method {name} --scenes TRAIN --out "
                                        f"{weights_dir / (name + '.pt')}` or pass --shared-detector")
        else:
            raise ValueError(f"unknown method {name!r}; expected oracle, {', '.join(CLASSICAL + LEARNED)}")
    return out


# ------------------------------------------------------------------------------ decisions
class MethodPolicy:
    """Any method, classical or learned, deciding frame 2's exposure from frame 1 through the one
    batched AE path (:meth:`~neural_ae_ros.ae.base.AutoExposureMethod.adjustment_factors`): all
    of a pair's frame-1 captures (every shift and kappa side) in one call. Learned methods see
    the 59 x 256 histograms and/or their own detector's conv2 features of the developed frame 1;
    classical ones the raw mosaic and its mean green level. The method's ``u`` is applied in
    full (no Eq. 4 bound on a classical method: its own limits apply)."""

    def __init__(self, method: MethodUnderTest, detector_runtime) -> None:
        from neural_ae_ros.ae import make_method

        self.ae = make_method(method.name, **({"weights": method.ae_checkpoint} if method.name in LEARNED else {}))
        self.detector = detector_runtime

    @torch.no_grad()
    def effective_exposures_s(self, cap: PairCapture, kappas: Sequence[float]) -> List[float]:
        from neural_ae_ros.ae import INPUT_FEATURES, FrameBatch
        from neural_ae_ros.detector.inference import resize_rgb
        from neural_ae_ros.imaging.exposure import FrameExposure
        from neural_ae_ros.imaging.histograms import histogram_stack_torch, mean_green_level

        shots = [cap.raw(1, kappa * cap.e_base_s) for kappa in kappas]
        raws = torch.stack([r for r, _, _ in shots])
        raw_dn = raws.numpy().astype(np.uint16)
        feats = None
        if INPUT_FEATURES in self.ae.inputs:
            rgb = resize_rgb(cap.isp(raws).clamp(0, 1), self.detector.input_size)
            feats = self.detector.model.extract_features(rgb.to(self.detector.device)).cpu()
        batch = FrameBatch([FrameExposure(t, k, frame_index=0) for _, t, k in shots],
                           mean_level_dn=np.array([mean_green_level(r) for r in raw_dn]), raw=raw_dn,
                           histograms=histogram_stack_torch(raws, int(cap.sensor.white_level_dn)), features=feats,
                           white_level_dn=int(cap.sensor.white_level_dn),
                           black_level_dn=float(cap.sensor.black_level_dn))
        u = self.ae.adjustment_factors(batch)
        return [float(e.effective_exposure_s * float(ui)) for e, ui in zip(batch.exposures, u)]


def _frame2_images(cap: PairCapture, exposures: Dict[str, float], input_size) -> list:
    from neural_ae_ros.detector.inference import resize_rgb

    imgs = []
    for e in exposures.values():
        rgb = resize_rgb(cap.frame2_rgb(e)[None], input_size)[0]
        imgs.append((rgb * 255 + 0.5).floor_().div_(255))  # the 8-bit image a camera would send
    return imgs


def _kappa_key(k: float, kappa: float) -> str:
    return f"k{k:g}/kappa{kappa:.6g}"


def _oracle_key(ev: float) -> str:
    return f"ev{ev:+.3f}"


def method_exposures(method: MethodUnderTest, cap: PairCapture, settings: BenchmarkSettings, policy) -> Dict[str, float]:
    """Key -> frame-2 effective exposure (s) for every shift and kappa side (or the oracle sweep)."""
    if method.name == "oracle":
        return {_oracle_key(ev): cap.e_base_s * 2.0 ** ev for ev in settings.oracle_evs()}
    draws = [(k, kappa) for k in settings.shifts for kappa in (1.0 / k, k)]
    exposures = policy.effective_exposures_s(cap, [kappa for _, kappa in draws])
    return {_kappa_key(k, kappa): e for (k, kappa), e in zip(draws, exposures)}


# ------------------------------------------------------------------------------ runner
def run_benchmark(scenes, method_names: Sequence[str], settings: BenchmarkSettings, json_out=None,
                  cache_dir=None, max_scenes: Optional[int] = None, weights_dir=AE_WEIGHTS_DIR,
                  shared_detector: bool = False, batch_size: int = 8, n_boot: int = 1000,
                  progress: bool = True, log: Callable = print, oracle_detector: Optional[str] = None,
                  device: str = "cpu", shard=None) -> dict:
    """Run (or resume) Table 1 on a scene directory; returns and writes the report. ``device``:
    where the detectors run (the simulation stays on the CPU). ``shard`` ``(I, N)``: measure only
    every N-th uncached pair from I and report nothing (N processes fill one cache; a last run
    without a shard reports)."""
    from neural_ae_ros.detector.dataset import SceneDataError, load_scene_index
    from neural_ae_ros.detector.inference import device_label, load_detector

    t_start = time.perf_counter()
    scenes = Path(scenes)
    methods = resolve_methods(method_names, weights_dir, shared_detector, log, oracle_detector)
    runtimes, policies = {}, {}
    for m in methods:
        runtimes[m.name] = load_detector(m.detector, score_threshold=settings.detector_score_threshold).to(device)
        if m.name != "oracle":
            policies[m.name] = MethodPolicy(m, runtimes[m.name])
    records = load_scene_index(scenes)
    if max_scenes:
        records = records[:max_scenes]
    if not records:
        raise SceneDataError(f"{scenes}: no scenes")
    cache_dir = Path(cache_dir) if cache_dir else scenes / "benchmark_cache"
    skey = hashlib.sha1(json.dumps(asdict(settings), sort_keys=True).encode()).hexdigest()[:10]
    keys = {m.name: f"{skey}-{m.files_key()}" for m in methods}
    todo = [(i, r) for i, r in enumerate(records)
            if any(load_cached(cache_dir, f"{r.name}.{m.name}", keys[m.name]) is None for m in methods)]
    todo = [(i, r) for i, r in todo if in_shard(i, shard)]
    per_pair = sum(len(settings.oracle_evs()) if m.name == "oracle" else 2 * len(settings.shifts) for m in methods)
    per_pair *= 2 if settings.hflip else 1
    log(f"benchmark: {len(records)} pairs x {len(methods)} methods ({per_pair} detector images per pair); "
        f"{len(records) - len(todo)} pairs cached in {cache_dir}")
    t0 = time.perf_counter()
    for j, (i, rec) in enumerate(tqdm(todo, desc="benchmark", unit="pair", disable=not progress)):
        rad2 = rec.load_radiance()
        rad1 = replace(rec, frame=0).load_radiance()
        if rec.frame == 0 or rad1.shape != rad2.shape:
            raise SceneDataError(f"{rec.path}: the benchmark needs pairs of frames (frame 1 + labelled frame 2)")
        cap = PairCapture(rad1, rad2, settings.seed * 100_003 + i)
        for m in methods:
            name = f"{rec.name}.{m.name}"
            if load_cached(cache_dir, name, keys[m.name]) is not None:
                continue
            det = runtimes[m.name]
            exposures = method_exposures(m, cap, settings, policies.get(m.name))
            res = _detect_all(det, _frame2_images(cap, exposures, det.input_size), settings.hflip, batch_size)
            ks = list(exposures)
            dets = {k: res[n] for n, k in enumerate(ks)}
            if settings.hflip:
                dets.update({k + "|flip": res[len(ks) + n] for n, k in enumerate(ks)})
            meta = {"e_base_s": cap.e_base_s, "ev": {k: math.log2(v / cap.e_base_s) for k, v in exposures.items()},
                    "settings_key": keys[m.name]}
            save_cached(cache_dir, name, meta, dets)
        if j == 0:
            dt = time.perf_counter() - t0
            log(f"benchmark: first pair took {dt:.1f} s -> about {dt * len(todo) / 60:.1f} min for {len(todo)} pairs; "
                f"the full protocol (400 pairs, 12 repeats: repeats are free) about {dt * 400 / 60:.0f} min "
                f"on this machine ({_machine()}; detectors on {device_label(device)})")
    if shard is not None:
        log(f"benchmark: shard {shard[0]}/{shard[1]} done ({len(todo)} pairs); run again without --shard to report")
        return {}
    results = {m.name: [load_cached(cache_dir, f"{r.name}.{m.name}", keys[m.name]) for r in records] for m in methods}
    report = summarize_benchmark(records, results, methods, settings, runtimes, n_boot=n_boot)
    report.update(scenes=str(scenes.resolve()), commit=_commit(), machine=_machine(),
                  detector_device=device_label(device),
                  wall_s=round(time.perf_counter() - t_start, 1), cache_dir=str(cache_dir))
    log(format_benchmark(report))
    if json_out:
        write_report(report, json_out, log)
    return report


# ------------------------------------------------------------------------------ summary
def summarize_benchmark(records, results: Dict[str, list], methods: Sequence[MethodUnderTest],
                        settings: BenchmarkSettings, runtimes: Dict, n_boot: int = 1000) -> dict:
    """Cached detections -> per method and shift: mAP mean/std over repeats, AP per class, the
    paired bootstrap difference to ``average`` and the share of the average-to-oracle gap closed."""
    nc = len(CLASS_NAMES)
    n = len(records)
    evals: Dict[str, list] = {}
    for m in methods:
        size = runtimes[m.name].input_size
        evals[m.name] = [match_scene(rec, dets, size, nc, settings.oracle_score_threshold)
                         for rec, (meta, dets) in zip(records, results[m.name])]

    def res(pool: PooledConfig) -> tuple:
        ap = pool.ap()
        return float(np.nanmean(ap)) * 100 if np.isfinite(ap).any() else float("nan"), ap * 100

    out: Dict[str, dict] = {}
    pooled_both: Dict[str, Dict[str, PooledConfig]] = {}
    rng = np.random.default_rng(settings.seed)
    draws = rng.integers(0, 2, (settings.repeats, n))  # 0: kappa = 1/k, 1: kappa = k
    for m in methods:
        if m.name == "oracle":
            continue
        out[m.name] = {}
        pooled_both[m.name] = {}
        for k in settings.shifts:
            sides = (_kappa_key(k, 1.0 / k), _kappa_key(k, k))
            maps, aps = [], []
            for r in range(settings.repeats):
                pool = PooledConfig([evals[m.name][i][sides[draws[r, i]]] for i in range(n)], nc)
                mp, ap = res(pool)
                maps.append(mp)
                aps.append(ap)
            aps = np.array(aps)
            out[m.name][f"{k:g}"] = {
                "map_mean": round(float(np.mean(maps)), 3), "map_std": round(float(np.std(maps)), 3),
                "ap": {c: (None if not np.isfinite(aps[:, j]).any() else round(float(np.nanmean(aps[:, j])), 3))
                       for j, c in enumerate(CLASS_NAMES)}}
            pooled_both[m.name][f"{k:g}"] = PooledConfig([evals[m.name][i][sides[0]] + evals[m.name][i][sides[1]]
                                                          for i in range(n)], nc)
    weights = bootstrap_weights(n, n_boot, seed=settings.seed)
    oracle_pool = None
    if any(m.name == "oracle" for m in methods):
        evs = settings.oracle_evs()
        score = np.array([[sum(e.tp_at - e.fp_at for e in evals["oracle"][i][_oracle_key(ev)]) for ev in evs]
                          for i in range(n)], np.float64)
        choice = oracle_choice(score, evs)
        oracle_pool = PooledConfig([evals["oracle"][i][_oracle_key(evs[choice[i]])] for i in range(n)], nc)
        mp, ap = res(oracle_pool)
        out["oracle"] = {f"{k:g}": {"map_mean": round(mp, 3), "map_std": 0.0,
                                    "ap": {c: (None if not np.isfinite(a) else round(float(a), 3))
                                           for c, a in zip(CLASS_NAMES, ap)}} for k in settings.shifts}
    oracle_m = next((m for m in methods if m.name == "oracle"), None)
    oracle_detector_text = (f"the detector {Path(oracle_m.detector).name}" if oracle_m is not None and oracle_m.detector
                            else "the shipped default detector")
    report = {
        "protocol": "paper 000 Sec. 6.1: frame 1 at kappa*e_base, kappa in {1/k, k} drawn per pair and repeat; one "
                    "step (the method's adjustment in full); frame 2 through the IMX249-like sensor model and the "
                    "ISP; each method's own detector; AP@0.5 (COCO 101-point) over frames"
                    + (" and horizontal flips" if settings.hflip else ""),
        "oracle": f"per pair, the exposure of the sweep {settings.oracle_evs()[0]:+g}..{settings.oracle_evs()[-1]:+g} EV "
                  f"(step {settings.oracle_step_ev}) around e_base maximising TP - FP (score >= "
                  f"{settings.oracle_score_threshold}) of {oracle_detector_text}"
                  + (", image + flip" if settings.hflip else "") + "; independent of k",
        "seed": settings.seed, "repeats": settings.repeats, "num_pairs": n,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
        "detectors": {m.name: (m.detector or "shipped default") for m in methods},
        "fair_detectors": all(m.detector for m in methods if m.name != "oracle"),
        "methods": out,
        "paper_table1_map": PAPER_TABLE1,
    }
    if "average" in pooled_both:
        for m in methods:
            if m.name in ("average", "oracle"):
                continue
            report["methods"][m.name]["diff_to_average"] = {
                k: paired_difference(pooled_both[m.name][k], pooled_both["average"][k], weights)
                for k in pooled_both[m.name]}
        if oracle_pool is not None:
            report["methods"]["oracle"]["diff_to_average"] = {
                k: paired_difference(oracle_pool, pooled_both["average"][k], weights) for k in pooled_both["average"]}
            for m in methods:
                if m.name in ("average", "oracle"):
                    continue
                gap = {}
                for k in pooled_both[m.name]:
                    top = report["methods"]["oracle"][k]["map_mean"] - report["methods"]["average"][k]["map_mean"]
                    got = report["methods"][m.name][k]["map_mean"] - report["methods"]["average"][k]["map_mean"]
                    gap[k] = round(got / top, 3) if top > 0 else None
                report["methods"][m.name]["gap_closed"] = gap
    return report


def format_benchmark(r: dict) -> str:
    ks = [f"{k:g}" for k in r["settings"]["shifts"]]
    lines = [f"benchmark on {r['num_pairs']} pairs, {r['repeats']} repeats (mAP@0.5 %, mean +- std; "
             f"detectors: {'each method its own' if r['fair_detectors'] else 'NOT all fine-tuned per method'})",
             f"{'method':14s}" + "".join(f"{'k=' + k:>22s}" for k in ks)]
    for name, row in r["methods"].items():
        cells = []
        for k in ks:
            c = row[k]
            d = row.get("diff_to_average", {}).get(k)
            extra = f" ({d['mean']:+.1f})" if d else ""
            cells.append(f"{c['map_mean']:6.2f} +- {c['map_std']:4.2f}{extra}")
        lines.append(f"{name:14s}" + "".join(f"{s:>22s}" for s in cells))
    return "\n".join(lines)


_ROW_NAMES = {"gradient": "GRADIENT AE", "average": "AVERAGE AE", "histogram_nn": "HISTOGRAM NN",
              "semantic_nn": "SEMANTIC NN", "hybrid_nn": "HYBRID NN", "oracle": "ORACLE (ceiling)"}
_SHIFT_NAMES = {"1.5": "Mild exposure shift", "4": "Moderate exposure shift", "10": "Large exposure shift"}


def _fmt(v, spec: str = ".1f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def table1_markdown(r: dict) -> str:
    """The report in the layout of paper 000 Table 1 (one block per k; AP per class, mAP
    mean +- std over the repeats), with the paired-bootstrap difference to ``average`` [95 %
    interval], the share of the average-to-oracle gap closed, and the paper's mAP beside ours."""
    heads = ["Bike", "Bus & Truck", "Car & Van", "Person", "Traffic Light", "Traffic Sign"]
    lines = [f"{r['num_pairs']} pairs, {r['repeats']} repeats, AP@0.5 %; detectors: "
             + ("each method its own" if r.get("fair_detectors") else "NOT all fine-tuned per method"), ""]
    for k in [f"{x:g}" for x in r["settings"]["shifts"]]:
        lines += [f"**{_SHIFT_NAMES.get(k, 'Exposure shift')} k = {k}**", "",
                  "| Method | " + " | ".join(heads) + " | mAP (ours) | vs AVERAGE [95 % CI] | gap closed | mAP (paper) |",
                  "|---|" + "---:|" * (len(heads) + 4)]
        for name, row in r["methods"].items():
            c = row.get(k)
            if c is None:
                continue
            aps = [_fmt(c["ap"].get(cls)) for cls in CLASS_NAMES]
            d = row.get("diff_to_average", {}).get(k)
            diff = f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" if d else "-"
            gap = row.get("gap_closed", {}).get(k)
            gap_s = f"{100 * gap:.0f} %" if gap is not None else "-"
            paper = PAPER_TABLE1.get(name, {}).get(k)
            mp = f"{c['map_mean']:.1f} +- {c['map_std']:.1f}" if name != "oracle" else f"{c['map_mean']:.1f}"
            lines.append(f"| {_ROW_NAMES.get(name, name)} | " + " | ".join(aps)
                         + f" | {mp} | {diff} | {gap_s} | {_fmt(paper, '.2f') if paper else '-'} |")
        lines.append("")
    return "\n".join(lines)
