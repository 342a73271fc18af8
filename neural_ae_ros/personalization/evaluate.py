"""``neural-ae personalize-eval``: paper 001 Tables 3-5 on the project's scenes.

For every synthetic expert (:mod:`.experts`) on a test split that no training saw:

* ``rl``: REINFORCE from scratch (random backbone, heads N(0, 0.01); Table 3's "RL" starts from
  ImageNet weights we do not have),
* ``rl_pretrained``: REINFORCE after supervised pre-training on the native exposure (Table 3
  "RL+PT", Table 4 "RL"),
* ``supervised``: the pre-trained network regressed on the expert's exact corrections (Table 4
  "FSL", the upper bound),
* ``pretrained``: the pre-trained network before personalisation (a reference row),
* ``cross[i][j]``: the ``rl_pretrained`` model of expert i tested on expert j (Table 5).

MAE in EV over the test frames within 2 EV of each expert's preferred exposure (Eq. 12 as a
mean). Every model is written under ``OUT_DIR/models`` with its settings and reused when the
settings match (a rerun resumes; ``--restart`` retrains). A PNG shows attention and exposure
maps of test frames for two personalised models and the MAE table.
"""
from __future__ import annotations

import copy
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .attention_net import AttentionExposureNet, CheckpointError, load_weights, save_weights
from .bank import ReexposureBank, build_bank
from .experts import EXPERTS
from .policy_gradient import RlConfig, expert_feedback, train_rl
from .pretrain import SupervisedConfig, mae_ev, predict_bank, train_supervised

METHODS = ("rl", "rl_pretrained", "supervised")
#: Paper 001 Tables 3-5 (MIT FiveK), for the README beside ours.
PAPER_TABLE3 = {"RL": [0.3160, 0.2917, 0.3526, 0.3069, 0.3144], "RL+PT": [0.2936, 0.2349, 0.2725, 0.2491, 0.2518]}
PAPER_TABLE4 = {"FSL": [0.2770, 0.2272, 0.2688, 0.2412, 0.2450], "RL": [0.2936, 0.2349, 0.2725, 0.2491, 0.2518]}


@dataclass
class EvalConfig:
    experts: Sequence[str] = tuple(EXPERTS)
    max_train_scenes: Optional[int] = None
    max_test_scenes: Optional[int] = None
    labels_per_scene: Optional[int] = None
    pretrain: SupervisedConfig = field(default_factory=lambda: SupervisedConfig(steps=600))
    supervised: SupervisedConfig = field(default_factory=lambda: SupervisedConfig(steps=300))
    rl: RlConfig = field(default_factory=RlConfig)
    seed: int = 0
    threads: int = 1


def _settings_key(kind: str, cfg, extra: Dict) -> Dict:
    return {"kind": kind, "config": asdict(cfg), **extra}


def _cached_or_train(path: Path, key: Dict, train, restart: bool):
    """Load ``path`` when its metadata carries the same settings ``key``, else train and save."""
    if path.is_file() and not restart:
        try:
            net, meta = load_weights(path)
            if meta.get("settings") == json.loads(json.dumps(key, default=str)):
                return net, meta, True
        except CheckpointError:
            pass  # retrain below; the file is replaced atomically
    t0 = time.time()
    net, history = train()
    meta = {"settings": key, "history": history, "wall_s": round(time.time() - t0, 1)}
    save_weights(net, path, meta)
    return net, json.loads(json.dumps(meta, default=str)), False


def run_personalize_eval(train_dir, test_dir, out_dir, cfg: EvalConfig, restart: bool = False,
                         progress: bool = True, log=print) -> Dict:
    torch.set_num_threads(max(1, int(cfg.threads)))
    out_dir = Path(out_dir)
    models = out_dir / "models"
    t_start = time.time()
    bank_tr = build_bank(train_dir, cfg.max_train_scenes, seed=cfg.seed, cache_dir=out_dir / "cache", progress=progress)
    bank_te = build_bank(test_dir, cfg.max_test_scenes, seed=cfg.seed + 1, cache_dir=out_dir / "cache", progress=progress)
    overlap = set(bank_tr.names) & set(bank_te.names) if Path(train_dir).resolve() == Path(test_dir).resolve() else set()
    if overlap:
        raise ValueError(f"test split {test_dir} is the training split: choose scenes no training saw")
    data = {"train": str(train_dir), "test": str(test_dir), "train_scenes": bank_tr.num_scenes,
            "test_scenes": bank_te.num_scenes}

    def pretrain():
        torch.manual_seed(cfg.seed)
        net = AttentionExposureNet()
        hist = train_supervised(net, bank_tr, np.zeros(bank_tr.num_scenes), cfg.pretrain, progress, "pre-train")
        return net, hist

    pre, pre_meta, cached = _cached_or_train(models / "pretrained.pt", _settings_key("pretrain", cfg.pretrain, data),
                                             pretrain, restart)
    log(f"pre-trained network: {'cached' if cached else 'trained'} ({pre_meta.get('wall_s')} s)")
    result: Dict = {"data": data, "experts": {n: EXPERTS[n].description for n in cfg.experts},
                    "mae_ev": {m: {} for m in METHODS + ("pretrained",)}, "cross": {}, "feedback_labels": {},
                    "wall_s": {}, "settings": {"pretrain": asdict(cfg.pretrain), "supervised": asdict(cfg.supervised),
                                               "rl": asdict(cfg.rl), "labels_per_scene": cfg.labels_per_scene}}
    pred_cache: Dict[str, np.ndarray] = {}
    trained: Dict[str, AttentionExposureNet] = {}
    jobs = [(e, m) for e in cfg.experts for m in METHODS]
    bar = tqdm(jobs, desc="personalise", unit="model", disable=not progress)
    for expert, method in bar:
        bar.set_postfix_str(f"{method} {expert}")
        fb = expert_feedback(bank_tr, expert, cfg.labels_per_scene, seed=cfg.seed)
        result["feedback_labels"][expert] = fb.num_labels
        key = _settings_key(method, cfg.supervised if method == "supervised" else cfg.rl,
                            dict(data, expert=expert, labels_per_scene=cfg.labels_per_scene,
                                 init="scratch" if method == "rl" else pre_meta.get("weights_sha256", "pretrained")))

        def fit(expert=expert, method=method, fb=fb):
            if method == "rl":
                torch.manual_seed(cfg.seed + 1)
                net = AttentionExposureNet()
            else:
                net = copy.deepcopy(pre)
            if method == "supervised":
                hist = train_supervised(net, bank_tr, bank_tr.preference(expert), cfg.supervised, progress,
                                        f"fsl {expert}")
            else:
                hist = train_rl(net, bank_tr, fb, cfg.rl, progress, f"{method} {expert}")
            return net, hist

        net, meta, cached = _cached_or_train(models / f"{method}_{expert}.pt", key, fit, restart)
        result["wall_s"][f"{method}/{expert}"] = meta.get("wall_s")
        trained[f"{method}/{expert}"] = net
        pred = predict_bank(net, bank_te)
        pred_cache[f"{method}/{expert}"] = pred
        result["mae_ev"][method][expert] = mae_ev(pred, bank_te.preference(expert), bank_te)
    pre_pred = predict_bank(pre, bank_te)
    for expert in cfg.experts:
        result["mae_ev"]["pretrained"][expert] = mae_ev(pre_pred, bank_te.preference(expert), bank_te)
        result["cross"][expert] = {j: mae_ev(pred_cache[f"rl_pretrained/{expert}"], bank_te.preference(j), bank_te)
                                   for j in cfg.experts}
    for m, row in result["mae_ev"].items():
        row["mean"] = float(np.mean([row[e] for e in cfg.experts]))
    result["checks"] = {
        "rl_pretrained_beats_rl": {e: result["mae_ev"]["rl_pretrained"][e] < result["mae_ev"]["rl"][e]
                                   for e in cfg.experts},
        "rl_pretrained_minus_supervised_ev": {e: result["mae_ev"]["rl_pretrained"][e] - result["mae_ev"]["supervised"][e]
                                              for e in cfg.experts},
        "cross_diagonal_smallest": {i: min(result["cross"][i], key=result["cross"][i].get) == i for i in cfg.experts},
    }
    result["machine"] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                         "torch_threads": torch.get_num_threads()}
    result["wall_s"]["total"] = round(time.time() - t_start, 1)
    try:
        from .plots import plot_maps_and_table
        result["plot"] = str(plot_maps_and_table(result, bank_te, trained, out_dir / "personalize_eval.png"))
    except ImportError as e:  # matplotlib missing: say so, the numbers stand
        result["plot"] = f"not written: {e}"
    return result


def format_tables(result: Dict) -> str:
    """Tables 3-5 layout (text)."""
    experts = [e for e in result["experts"]]
    head = f"{'':16s}" + "".join(f"{e[:14]:>16s}" for e in experts) + f"{'mean':>10s}"
    lines = ["test MAE (EV)", head]
    for m in ("pretrained", "rl", "rl_pretrained", "supervised"):
        row = result["mae_ev"][m]
        lines.append(f"{m:16s}" + "".join(f"{row[e]:16.3f}" for e in experts) + f"{row['mean']:10.3f}")
    lines += ["", "cross (rows: rl_pretrained model of expert i; columns: tested on expert j)", head[:-10]]
    for i in experts:
        lines.append(f"{i[:16]:16s}" + "".join(f"{result['cross'][i][j]:16.3f}" for j in experts))
    lines.append("feedback labels per expert: " + ", ".join(f"{e} {n}" for e, n in result["feedback_labels"].items()))
    return "\n".join(lines)
