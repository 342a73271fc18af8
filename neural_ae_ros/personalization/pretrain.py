"""Supervised training with the Euclidean loss of paper 001 Eq. 2, ``L = 1/N sum (F(I_i) - Y_i)^2``.

Two uses (Sections 5.3, 6.1 and 8.1.3):

* pre-training to mimic the native camera: the re-exposures of every training scene from -2 to
  +2 EV around ``e_base`` (the project's native reference exposure, paper 000 Sec. 5.3), the
  target being the correction back to it, ``Y = -o`` EV;
* the fully supervised upper bound per expert: the re-exposures around the expert's preferred
  exposure ``p``, target ``Y = p - o`` (the expert's exact correction, which RL never sees).

Targets are normalised by ``EV_RANGE`` (Sec. 7.2: labels in [-1, 1]). Paper 001 uses SGD
(momentum 0.9, weight decay 2e-4, lr 0.003) for 35 epochs; a CPU budget gets Adam with a
larger rate for a fixed number of steps (settings recorded in the metadata).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from .attention_net import EV_RANGE, AttentionExposureNet
from .bank import ReexposureBank


@dataclass
class SupervisedConfig:
    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 2e-4
    lr_halve_every: int = 0
    seed: int = 0


def train_supervised(net: AttentionExposureNet, bank: ReexposureBank, centre_ev: np.ndarray, cfg: SupervisedConfig,
                     progress: bool = True, desc: str = "supervised",
                     on_step: Optional[Callable[[int, Dict], None]] = None, start_step: int = 0,
                     optimizer: Optional[torch.optim.Optimizer] = None,
                     should_stop: Optional[Callable[[], bool]] = None) -> List[Dict]:
    """Regress ``Y = centre - o`` (EV) on the frames within 2 EV of ``centre`` (Eq. 2).

    ``centre_ev``: (S,) per-scene reference offsets (zeros: pre-training on e_base; an expert's
    preferences: the supervised upper bound). Returns the history (mean loss per 25 steps)."""
    rng = np.random.default_rng(cfg.seed + start_step)
    centre = np.broadcast_to(np.asarray(centre_ev, np.float64), (bank.num_scenes,))
    states = bank.window(centre)
    pairs = np.argwhere(states)
    if len(pairs) == 0:
        raise ValueError("no frames within the training window (zero training examples)")
    opt = optimizer or make_optimizer(net, cfg)
    if cfg.lr_halve_every:  # paper 001 Sec. 7.2: halved every 15 epochs
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 ** (start_step // cfg.lr_halve_every)
    history: List[Dict] = []
    running, n = 0.0, 0
    net.train()
    for step in tqdm(range(start_step, cfg.steps), desc=desc, unit="step", disable=not progress, leave=False,
                     initial=start_step, total=cfg.steps):
        pick = pairs[rng.integers(0, len(pairs), cfg.batch_size)]
        s, k = pick[:, 0], pick[:, 1]
        x = bank.images(s, k)
        flip = torch.from_numpy(rng.random(len(s)) < 0.5)
        x[flip] = x[flip].flip(-1)
        y = torch.from_numpy((centre[s] - bank.offsets_ev[k]) / EV_RANGE).float()
        loss = ((net(x) - y) ** 2).mean()  # Eq. 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        if cfg.lr_halve_every and (step + 1) % cfg.lr_halve_every == 0:
            for g in opt.param_groups:
                g["lr"] *= 0.5
        running += float(loss.detach())
        n += 1
        if (step + 1) % 25 == 0 or step + 1 == cfg.steps:
            rec = {"step": step + 1, "loss": running / n, "rmse_ev": float(np.sqrt(running / n)) * EV_RANGE}
            history.append(rec)
            if on_step:
                on_step(step + 1, rec)
            running, n = 0.0, 0
            if should_stop is not None and should_stop():
                break
    net.eval()
    return history


def make_optimizer(net: AttentionExposureNet, cfg: SupervisedConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def predict_bank(net: AttentionExposureNet, bank: ReexposureBank, mask: Optional[np.ndarray] = None,
                 batch_size: int = 256) -> np.ndarray:
    """(S, K) predicted corrections in EV (NaN outside ``mask``)."""
    net.eval()
    mask = np.ones(bank.frames.shape[:2], bool) if mask is None else mask
    out = np.full(mask.shape, np.nan)
    idx = np.argwhere(mask)
    for i in range(0, len(idx), batch_size):
        b = idx[i:i + batch_size]
        out[b[:, 0], b[:, 1]] = net(bank.images(b[:, 0], b[:, 1])).numpy() * EV_RANGE
    return out


def mae_ev(pred_ev: np.ndarray, centre_ev: np.ndarray, bank: ReexposureBank) -> float:
    """Paper 001 Eq. 12 (as a mean): ``mean |Delta_EV - Y|`` over the frames within 2 EV of
    ``centre`` (the expert's preference), ``Y = centre - o``. Raises on zero frames."""
    centre = np.broadcast_to(np.asarray(centre_ev, np.float64), (bank.num_scenes,))
    win = bank.window(centre)
    if not win.any():
        raise ValueError("MAE over zero frames is undefined")
    target = centre[:, None] - bank.offsets_ev[None, :]
    err = np.abs(pred_ev - target)[win]
    if np.isnan(err).any():
        raise ValueError("predictions missing for frames of the evaluation window")
    return float(err.mean())
