"""Annotated HDR scene sets: splits, seeds, pairs of consecutive frames, ``index.json``.

``generate_split(out, split, count, seed)`` writes, per scene ``k``:

- ``scene_{k:05d}.npz``: ``radiance`` (F, 3, H, W) and ``radiance_scale`` (F,) float32, and
  ``instance_map`` (F, H, W) int16 (0 = background, ``i`` = the object with ``id == i`` in
  the boxes file). F = 2 (two consecutive frames 1/fps apart, paper 000 Section 5.3: the
  boxes of the second frame are the training target) or 1 with ``pairs=False``.
  Storage ``float16_scaled`` (default): ``radiance = radiance.astype(float32) * radiance_scale[:,
  None, None, None]`` with the scale chosen per frame so that the brightest pixel is 60000;
  float16's normal range then covers 180 dB below the peak at 0.05 % relative precision
  (plain float16 tops out at 65504, which is why a scale is needed). Storage ``float32``
  stores e-/s directly (``radiance_scale`` = 1).
- ``scene_{k:05d}.json``: per frame ``boxes`` (labels), ``ignored`` (heavily occluded or
  truncated (< 40 % visible) or tiny objects, don't-care), time, and scene metadata.

and ``index.json``: split, seed, sizes, unit, storage, classes, and per scene the files,
scene kind, background (panorama name / heading / pitch / fov, or procedural kind and
place), dynamic range in dB (1st-99.9th percentile of luminance, per frame and of the
labelled frame), class counts; plus split totals (class counts, DR median and by kind).

Determinism: scene ``k`` of split ``s`` with seed ``S`` is drawn from
``numpy.random.default_rng(SeedSequence([S, split_id(s), k]))``: the same triple gives the
same scene on any machine and any number of workers; other seeds give new scenes from the
same distribution. Backgrounds never repeat across splits: panorama crops come from
disjoint heading sectors (:mod:`.panorama`), procedural worlds from disjoint random streams.
"""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np

from . import drives as dv
from ..classes import CLASS_NAMES
from .radiometry import dynamic_range_db

SPLITS = ("train", "val", "test")
SPLIT_ID = {s: i for i, s in enumerate(SPLITS)}
FORMAT = "neural_ae_ros.scenes/1"
RADIANCE_UNIT = "photo-electrons per second at the photosite (e-/s), linear RGB, target sensor IMX249-like; 1 cd/m^2 = 2300 e-/s"
STORAGES = ("float16_scaled", "float32")
F16_PEAK = 60000.0

#: Scene kinds and their probabilities. Like paper 000's data (50 % day, 20 % dusk, 30 % night),
#: weighted toward the edge cases AE must handle (tunnels, low sun, night lights):
#: procedural day 40 % (day 5, day_sun 12, overcast 2, bridge 6, tunnel 15 (a quarter approaching
#: the portal, half inside toward the exit, a fifth at the exit)), real panoramas 12 % (day, low
#: sun and night ones), dusk 18 %, night 30 % (street-lit 19, rural 11).
SCENE_MIX = (
    ("day", 0.05), ("day_sun", 0.12), ("overcast", 0.02), ("bridge", 0.06), ("tunnel", 0.15),
    ("panorama", 0.12), ("dusk", 0.18), ("night", 0.19), ("night_rural", 0.11),
)


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    if split not in SPLIT_ID:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_ID[split], int(index)]))


#: Scene mixes ``neural-ae scenes --mix`` knows: the default one above, and ``hdr_driving``
#: (:mod:`.hard_cases`: paper 000's day / dusk / night shares filled with HDR edge cases).
MIXES = ("default", "hdr_driving")


def make_stage(split: str, seed: int, index: int, width: int, height: int, kind: Optional[str] = None,
               mix: str = "default"):
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if mix == "hdr_driving":
        from .hard_cases import make_hdr_stage

        scene_rng(seed, split, index)  # validates the split
        return make_hdr_stage(seed, SPLIT_ID[split], index, width, height, case=kind)
    rng = scene_rng(seed, split, index)
    kinds = [k for k, _ in SCENE_MIX]
    p = np.array([w for _, w in SCENE_MIX])
    drawn = str(rng.choice(kinds, p=p / p.sum()))
    kind = kind or drawn
    if kind == "panorama":
        return dv.panorama_stage(rng, width, height, split=split)
    return dv.procedural_stage(rng, kind, width, height)


def make_scene(split: str, seed: int, index: int, width: int = 640, height: int = 384,
               pairs: bool = True, fps: float = 30.0, kind: Optional[str] = None, mix: str = "default") -> dict:
    """Render scene ``index`` of a split: ``dict(frames=[SceneFrame...], meta=...)``."""
    stage = make_stage(split, seed, index, width, height, kind, mix)
    times = [0.0, 1.0 / fps] if pairs else [0.0]
    frames = [stage.render(t) for t in times]
    meta = dict(stage.meta)
    meta.update(split=split, seed=int(seed), index=int(index), fps=float(fps), mix=mix)
    if meta.get("source") == "panorama":
        meta["kind"] = "panorama"
    return dict(frames=frames, meta=meta)


# ---------------------------------------------------------------------------------- I/O
def _write_npz(path: Path, arrays: dict, level: int = 1) -> None:
    tmp = path.with_suffix(".npz.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(name + ".npy", buf.getvalue())
    os.replace(tmp, path)


def encode_radiance(rad: np.ndarray, storage: str = "float16_scaled"):
    """(F,3,H,W) float32 e-/s -> (stored array, per-frame scale (F,))."""
    rad = np.asarray(rad, np.float32)
    if storage == "float32":
        return rad, np.ones(rad.shape[0], np.float32)
    if storage != "float16_scaled":
        raise ValueError(f"storage must be one of {STORAGES}")
    peak = rad.reshape(rad.shape[0], -1).max(1)
    scale = np.maximum(peak / F16_PEAK, 1e-30).astype(np.float32)
    return (rad / scale[:, None, None, None]).astype(np.float16), scale


def decode_radiance(stored: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) * np.asarray(scale, np.float32)[:, None, None, None]


def save_scene(out_dir: Path, index: int, scene: dict, storage: str = "float16_scaled") -> dict:
    out_dir = Path(out_dir)
    stem = f"scene_{index:05d}"
    frames = scene["frames"]
    rad = np.stack([f.radiance for f in frames])
    stored, scale = encode_radiance(rad, storage)
    inst = np.stack([f.instance_map for f in frames]).astype(np.int16)
    _write_npz(out_dir / f"{stem}.npz", dict(radiance=stored, radiance_scale=scale, instance_map=inst))
    labels = dict(meta=scene["meta"], classes=list(CLASS_NAMES), frames=[
        dict(time_s=f.time_s, boxes=f.boxes, ignored=f.ignored) for f in frames])
    with open(out_dir / f"{stem}.json", "w", encoding="utf-8") as fh:
        json.dump(labels, fh, indent=1, default=_json_default)
    drs = [round(dynamic_range_db(f.radiance), 3) for f in frames]
    counts = Counter(b["cls"] for b in frames[-1].boxes)
    meta = scene["meta"]
    bgd = {k: meta[k] for k in ("panorama", "heading_deg", "pitch_deg", "hfov_deg", "kind", "place") if k in meta}
    return dict(index=index, file=f"{stem}.npz", labels=f"{stem}.json", kind=meta.get("kind"),
                source=meta.get("source"), background=bgd, dynamic_range_db=drs[-1],
                dynamic_range_db_frames=drs, class_counts={c: int(counts.get(c, 0)) for c in CLASS_NAMES},
                num_boxes=len(frames[-1].boxes), num_ignored=len(frames[-1].ignored))


def _json_default(o):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def load_scene(path) -> dict:
    """Read a scene written by :func:`save_scene`: radiance (F,3,H,W) float32 e-/s, masks, labels."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    with np.load(path) as z:
        rad = decode_radiance(z["radiance"], z["radiance_scale"])
        inst = z["instance_map"]
    with open(path.with_suffix(".json"), encoding="utf-8") as fh:
        labels = json.load(fh)
    return dict(radiance=rad, instance_map=inst, frames=labels["frames"], meta=labels["meta"], classes=labels["classes"])


# ------------------------------------------------------------------------------ driver
def _work(args):
    split, seed, index, width, height, pairs, out, storage, mix = args
    scene = make_scene(split, seed, index, width, height, pairs, mix=mix)
    return save_scene(Path(out), index, scene, storage)


def generate_split(out, split: str, count: int, seed: int = 0, width: int = 640, height: int = 384,
                   pairs: bool = True, workers: int = 1, storage: str = "float16_scaled",
                   progress: bool = True, start: int = 0, mix: str = "default") -> dict:
    """Generate ``count`` scenes of ``split`` into ``out``; returns (and writes) the index."""
    if split not in SPLIT_ID:
        raise ValueError(f"split must be one of {SPLITS}")
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}")
    if count < 0:
        raise ValueError("count must be >= 0")
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(split, seed, k, width, height, pairs, str(out), storage, mix) for k in range(start, start + count)]
    t0 = time.perf_counter()
    rows = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=f"scenes[{split}]", unit="scene")
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn" if os.name == "nt" else "fork")
        with ctx.Pool(workers) as pool:
            for r in pool.imap(_work, jobs, chunksize=1):
                rows.append(r)
                if bar:
                    bar.update(1)
    else:
        for j in jobs:
            rows.append(_work(j))
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    elapsed = time.perf_counter() - t0
    index = build_index(rows, split=split, seed=seed, width=width, height=height, pairs=pairs, storage=storage)
    index["mix"] = mix
    index["generation"] = dict(seconds=round(elapsed, 3), workers=workers,
                               frames_per_second=round(len(rows) * (2 if pairs else 1) / max(elapsed, 1e-9), 3))
    with open(out / "index.json", "w", encoding="utf-8") as fh:
        json.dump(index, fh, indent=1)
    return index


def build_index(rows: list, split: str, seed: int, width: int, height: int, pairs: bool, storage: str) -> dict:
    drs = np.array([r["dynamic_range_db"] for r in rows], np.float64)
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r["dynamic_range_db"])
    totals = Counter()
    for r in rows:
        totals.update(r["class_counts"])
    return dict(
        format=FORMAT, split=split, seed=int(seed), count=len(rows), width=int(width), height=int(height),
        frames_per_scene=2 if pairs else 1, labelled_frame=1 if pairs else 0,
        radiance_unit=RADIANCE_UNIT, storage=storage,
        dynamic_range_definition="20*log10(P99.9/P1) of luminance Y = 0.2126 R + 0.7152 G + 0.0722 B, labelled frame",
        classes=list(CLASS_NAMES),
        occlusion_rule="objects < 40 % visible (occlusion or truncation) or < 6 px high are not labels; listed as 'ignored'",
        class_counts={c: int(totals.get(c, 0)) for c in CLASS_NAMES},
        dynamic_range_db=dict(
            median=float(np.median(drs)) if drs.size else None,
            p10=float(np.percentile(drs, 10)) if drs.size else None,
            p90=float(np.percentile(drs, 90)) if drs.size else None,
            by_kind={k: dict(n=len(v), median=float(np.median(v))) for k, v in sorted(by_kind.items())},
        ),
        scenes=rows,
    )
