"""Personalisation by policy gradient (paper 001 Sections 5.2, 5.3, Eq. 11, Fig. 6).

Gaussian policy: the network output ``F_theta(s)`` (normalised units, +-1 = +-2 EV) is the mean,
the variance is a constant ``Sigma = 0.1`` (Sec. 5.2: "take a constant value as its variance
Sigma ... 0.1"), so the standard deviation is sqrt(0.1) = 0.32 normalised = 0.63 EV. REINFORCE
(Eq. 11)::

    grad J ~= -1/N sum_i r(s_i, a_i) Sigma^-1 (F_theta(s_i) - a_i) grad F_theta(s_i)

which is the gradient of the surrogate loss ``1/N sum r (F - a)^2 / (2 Sigma)`` with the
sampled actions held fixed (:func:`reinforce_loss`): minimising it ascends J.

Reward (Fig. 6, delta = 0.1 EV). A user labels one frame ``I`` (under / well / over). A state
``I_t`` is ``I`` re-exposed so that the correction back to ``I`` is ``Y_t`` EV; a sampled
action ``A`` applied to ``I_t`` gives ``I`` re-exposed by ``d = A - Y_t``:

=========  ====================  ==========================  ====================
label       d <= -delta           -delta < d < delta          d >= delta
=========  ====================  ==========================  ====================
well        -1                    +1                          -1
under       -1 (darker still)     -1 (as under-exposed)       ignored (overshoot?)
over        ignored (overshoot?)  -1 (as over-exposed)        -1 (brighter still)
=========  ====================  ==========================  ====================

(The figure itself is not in our copy of the paper; the table follows its text: well ->
positive near Y_t, negative far from it; under -> decreasing exposure is penalised; the case
"A unexpectedly larger than Y_t" of an under-exposed frame, and its mirror, are ignored.)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from .attention_net import EV_RANGE, AttentionExposureNet
from .bank import ReexposureBank
from .experts import LABELS, WELL_TOLERANCE_EV, label_for_offset

#: Fig. 6's delta (EV).
REWARD_DELTA_EV = 0.1
#: Sec. 5.2: the Gaussian policy's constant variance (normalised units).
POLICY_VARIANCE = 0.1
LABEL_CODE = {name: i for i, name in enumerate(LABELS)}  # under 0, well 1, over 2


def fig6_reward(label: str, d_ev: float, delta_ev: float = REWARD_DELTA_EV) -> Optional[float]:
    """Reward of an action that re-exposes the labelled frame by ``d_ev`` EV (Fig. 6); None
    where the paper ignores the case. Unknown labels raise ``ValueError``."""
    if label not in LABEL_CODE:
        raise ValueError(f"unknown exposure label {label!r}; expected one of {list(LABELS)}")
    d = float(d_ev)
    if label == "well":
        return 1.0 if abs(d) < delta_ev else -1.0
    if label == "under":
        return -1.0 if d < delta_ev else None
    return -1.0 if d > -delta_ev else None


def fig6_reward_tensor(label_codes: torch.Tensor, d_ev: torch.Tensor, delta_ev: float = REWARD_DELTA_EV):
    """Vectorised :func:`fig6_reward`: (reward, valid) tensors; label codes 0 under, 1 well, 2 over."""
    well = label_codes == LABEL_CODE["well"]
    under = label_codes == LABEL_CODE["under"]
    over = label_codes == LABEL_CODE["over"]
    near = d_ev.abs() < delta_ev
    reward = torch.where(well & near, torch.ones_like(d_ev), -torch.ones_like(d_ev))
    valid = well | (under & (d_ev < delta_ev)) | (over & (d_ev > -delta_ev))
    return reward, valid


def sample_actions(mean: torch.Tensor, variance: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """a ~ N(mean, variance) (normalised units), no gradient."""
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    return mean.detach() + math.sqrt(variance) * noise


def reinforce_loss(mean: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                   valid: Optional[torch.Tensor] = None, variance: float = POLICY_VARIANCE) -> torch.Tensor:
    """Surrogate of Eq. 11: ``1/N sum r (F - a)^2 / (2 Sigma)`` over valid tuples; its gradient
    is ``-grad J`` of Eq. 11. Zero (with a graph) when no tuple is valid."""
    if valid is None:
        valid = torch.ones_like(rewards, dtype=torch.bool)
    n = int(valid.sum())
    if n == 0:
        return (mean * 0.0).sum()
    r = torch.where(valid, rewards, torch.zeros_like(rewards))
    return (r * (mean - actions.detach()) ** 2).sum() / (2.0 * variance * n)


# ----------------------------------------------------------------------------- training
@dataclass
class RlConfig:
    """Settings of one personalisation run (paper 001 Sec. 7.2: Adam, lr 1e-4, 35 epochs;
    we train for ``steps`` batches with a larger rate to fit a CPU budget)."""

    steps: int = 400
    states_per_batch: int = 32
    refs_per_state: int = 8
    lr: float = 1e-3
    variance: float = POLICY_VARIANCE
    delta_ev: float = REWARD_DELTA_EV
    lr_halve_every: int = 0  # 0: never (paper: every 15 of 35 epochs)
    seed: int = 0


@dataclass
class FeedbackSet:
    """Labelled frames of a bank for one expert: ``labelled`` (S, K) bool, ``codes`` (S, K)
    label codes; ``states`` (S, K) bool: frames the policy acts on."""

    states: np.ndarray
    labelled: np.ndarray
    codes: np.ndarray

    @property
    def num_labels(self) -> int:
        return int(self.labelled.sum())


def expert_feedback(bank: ReexposureBank, expert: str, labels_per_scene: Optional[int] = None,
                    seed: int = 0) -> FeedbackSet:
    """The expert's under / well / over labels on its window of re-exposures (paper 001 Sec. 6.2:
    every re-exposure labelled against the expert's preference); ``labels_per_scene`` keeps a
    random subset per scene (fewer labels)."""
    pref = bank.preference(expert)
    states = bank.window(pref)
    rng = np.random.default_rng(seed)
    labelled = states.copy()
    if labels_per_scene is not None:
        for s in range(bank.num_scenes):
            idx = np.flatnonzero(states[s])
            if len(idx) > labels_per_scene:
                drop = rng.choice(idx, len(idx) - labels_per_scene, replace=False)
                labelled[s, drop] = False
    codes = np.full(states.shape, -1, np.int64)
    for s, k in zip(*np.nonzero(labelled)):
        codes[s, k] = LABEL_CODE[label_for_offset(bank.offsets_ev[k] - pref[s])]
    return FeedbackSet(states, labelled, codes)


def _flip(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    m = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
    x[m] = x[m].flip(-1)
    return x


def train_rl(net: AttentionExposureNet, bank: ReexposureBank, feedback: FeedbackSet, cfg: RlConfig,
             progress: bool = True, desc: str = "rl", on_step: Optional[Callable[[int, Dict], None]] = None
             ) -> List[Dict]:
    """REINFORCE (Eq. 11) on (state, labelled reference, sampled action, Fig. 6 reward) tuples.

    Per step: ``states_per_batch`` state frames (random scene with labels, random frame of its
    window), each paired with ``refs_per_state`` labelled frames of the same scene, each pair
    with its own action drawn from the policy: one forward pass per state. Returns the history
    (per 25 steps: mean reward over valid tuples, fraction ignored)."""
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    scenes = np.flatnonzero(feedback.labelled.any(1) & feedback.states.any(1))
    if len(scenes) == 0:
        raise ValueError("no labelled feedback to learn from (zero labelled frames)")
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_halve_every, 0.5) if cfg.lr_halve_every else None
    offsets = torch.from_numpy(bank.offsets_ev)
    history: List[Dict] = []
    acc = {"reward": 0.0, "valid": 0, "tuples": 0}
    net.train()
    for step in tqdm(range(cfg.steps), desc=desc, unit="step", disable=not progress, leave=False):
        s = rng.choice(scenes, cfg.states_per_batch)
        k = np.array([rng.choice(np.flatnonzero(feedback.states[i])) for i in s])
        refs = np.stack([rng.choice(np.flatnonzero(feedback.labelled[i]), cfg.refs_per_state) for i in s])
        x = _flip(bank.images(s, k), rng)
        mean = net(x)                                          # (B,) normalised
        mean_r = mean[:, None].expand(-1, cfg.refs_per_state)  # (B, R)
        actions = sample_actions(mean_r, cfg.variance, gen)
        y_ev = offsets[refs] - offsets[k][:, None]             # correction back to the labelled frame
        d_ev = EV_RANGE * actions - y_ev
        codes = torch.from_numpy(feedback.codes[s[:, None], refs])
        reward, valid = fig6_reward_tensor(codes, d_ev, cfg.delta_ev)
        loss = reinforce_loss(mean_r, actions, reward, valid, cfg.variance)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        acc["reward"] += float(reward[valid].sum())
        acc["valid"] += int(valid.sum())
        acc["tuples"] += valid.numel()
        if (step + 1) % 25 == 0 or step + 1 == cfg.steps:
            rec = {"step": step + 1, "mean_reward": acc["reward"] / max(acc["valid"], 1),
                   "ignored_fraction": 1.0 - acc["valid"] / max(acc["tuples"], 1)}
            history.append(rec)
            if on_step:
                on_step(step + 1, rec)
            acc = {"reward": 0.0, "valid": 0, "tuples": 0}
    net.eval()
    return history
