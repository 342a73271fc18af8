"""``neural-ae train --method attention_rl``: supervised pre-training of the paper 001 network
(Sections 5.3 / 6.1, Eq. 2) on re-exposures of a training split, resumable, with a progress bar
and a metadata file; its output is the starting point of every personalisation (the shipped
``neural_ae_ros/data/attention_rl/pretrained.pt``).

Pre-training mimics the native camera: each training scene is captured at -2 .. +2 EV around
``e_base`` in 0.2 EV steps (the re-exposure bank), the target is the correction back to
``e_base``. A resume checkpoint ``<out>.resume.pt`` (weights, optimiser, step, history) is
written every ``checkpoint_every`` steps; a rerun continues from it unless ``restart``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from neural_ae_ros.detector.checkpoint import git_commit

from .attention_net import AttentionExposureNet, save_weights
from .bank import build_bank
from .pretrain import SupervisedConfig, make_optimizer, mae_ev, predict_bank, train_supervised

METHOD = "attention_rl"


def machine_description() -> Dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_1_5_15": [round(x, 2) for x in load] if load else None}


def train_attention_rl(scenes, out, cfg: SupervisedConfig, val_scenes=None, max_scenes: Optional[int] = None,
                       threads: int = 1, max_minutes: Optional[float] = None, checkpoint_every: int = 100,
                       resume: bool = True, progress: bool = True, cache_dir=None, log=print) -> Dict:
    """Pre-train and write ``out`` (+ ``.json`` metadata). Returns the metadata."""
    torch.set_num_threads(max(1, int(threads)))
    out = Path(out)
    resume_path = out.with_name(out.stem + ".resume.pt")
    t0 = time.time()
    machine_start = machine_description()
    bank = build_bank(scenes, max_scenes, seed=cfg.seed, cache_dir=cache_dir, progress=progress)
    torch.manual_seed(cfg.seed)
    net = AttentionExposureNet()
    opt = make_optimizer(net, cfg)
    start, history, wall_before = 0, [], 0.0
    settings = {"config": asdict(cfg), "scenes": str(scenes), "max_scenes": max_scenes}
    if resume and resume_path.is_file():
        blob = torch.load(resume_path, map_location="cpu", weights_only=False)
        if blob.get("settings") != settings:
            raise ValueError(f"{resume_path}: resume checkpoint of other settings ({blob.get('settings')}); "
                             f"pass --restart to start over")
        net.load_state_dict(blob["net"])
        opt.load_state_dict(blob["opt"])
        start, history, wall_before = int(blob["step"]), list(blob["history"]), float(blob.get("wall_s", 0.0))
        log(f"resuming {out} at step {start}/{cfg.steps}")
    state = {"step": start}

    def save_resume(step: int):
        tmp = resume_path.with_name(resume_path.name + ".tmp")
        resume_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "history": history,
                    "settings": settings, "wall_s": wall_before + time.time() - t0}, tmp)
        tmp.replace(resume_path)

    def on_step(step: int, rec: Dict):
        history.append(rec)
        state["step"] = step
        if step % checkpoint_every == 0:
            save_resume(step)

    deadline = None if max_minutes is None else t0 + 60.0 * max_minutes
    train_supervised(net, bank, np.zeros(bank.num_scenes), cfg, progress, "pre-train attention_rl",
                     on_step=on_step, start_step=start, optimizer=opt,
                     should_stop=(lambda: time.time() > deadline) if deadline else None)
    if state["step"] < cfg.steps:
        save_resume(state["step"])
        log(f"stopped at step {state['step']}/{cfg.steps} (time budget); rerun the same command to continue")
        return {"stopped_at": state["step"]}
    meta = {"method": METHOD, "kind": "supervised pre-training (paper 001 Sec. 5.3 / 6.1, Eq. 2)",
            "data": {"scenes": str(scenes), "num_scenes": bank.num_scenes, "offsets_ev": bank.offsets_ev.tolist(),
                     "window_ev": 2.0, "reference": "e_base (paper 000 Sec. 5.3)"},
            "seed": cfg.seed, "commit": git_commit(), "settings": asdict(cfg), "history": history,
            "train_mae_ev": mae_ev(predict_bank(net, bank, bank.window(np.zeros(bank.num_scenes))),
                                   np.zeros(bank.num_scenes), bank),
            "wall_s": round(wall_before + time.time() - t0, 1), "machine": {"start": machine_start,
                                                                           "end": machine_description()}}
    if val_scenes is not None:
        vb = build_bank(val_scenes, None, seed=cfg.seed + 1, cache_dir=cache_dir, progress=progress)
        z = np.zeros(vb.num_scenes)
        meta["val"] = {"scenes": str(val_scenes), "num_scenes": vb.num_scenes,
                       "mae_ev": mae_ev(predict_bank(net, vb, vb.window(z)), z, vb)}
    save_weights(net, out, meta)
    if resume_path.is_file():
        resume_path.unlink()
    log(f"wrote {out} (train MAE {meta['train_mae_ev']:.3f} EV"
        + (f", val MAE {meta['val']['mae_ev']:.3f} EV" if "val" in meta else "") + f", {meta['wall_s']} s)")
    return meta
