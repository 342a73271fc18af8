"""Live personalisation from under / well / over feedback (paper 001 Sections 5.1, 5.3), no ROS.

A :class:`FeedbackSession` remembers the recent frames it was shown (stamp -> downsampled RGB),
accepts feedback for them, refuses bad feedback with a reason, and after ``batch_size`` accepted
labels of one profile fine-tunes that profile's network by REINFORCE (Eq. 11, Fig. 6 reward)
and writes the weights atomically (``<profile_dir>/<profile>.pt``), checked before they are
offered to the controller. The ROS node is a thin shell around it.

States for the policy come from the labelled frame itself re-exposed synthetically as in paper
001 Section 5.3: linearise with gamma 2.2, scale by ``2**Y``, re-apply ``1/2.2``
(:func:`synthetic_reexposure`), ``Y`` from -2 to +2 EV in 0.2 EV steps.

Refusals (:class:`FeedbackRefused`, ``reason`` names the stamp and the giver): unknown label, a
stamp never seen (or no longer held), the same frame labelled twice by the same giver, a
giver sending more than ``max_per_minute`` labels (a flood), an empty giver or profile name.
"""
from __future__ import annotations

import copy
import math
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np
import torch

from .attention_net import EV_RANGE, AttentionExposureNet, load_weights, prepare_input, save_weights
from .experts import LABELS
from .policy_gradient import LABEL_CODE, POLICY_VARIANCE, fig6_reward_tensor, reinforce_loss, sample_actions

_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class FeedbackRefused(ValueError):
    """Feedback that was not accepted; the message says why (names stamp and giver); ``kind``
    names the rule (unknown_label, bad_name, unknown_stamp, duplicate, flood, fine_tune)."""

    def __init__(self, message: str, kind: str = "refused") -> None:
        super().__init__(message)
        self.kind = kind


def synthetic_reexposure(rgb: torch.Tensor, delta_ev: float, gamma: float = 2.2) -> torch.Tensor:
    """Paper 001 Sec. 5.3: ``((rgb ** gamma) * 2 ** delta_ev).clip(0, 1) ** (1 / gamma)``."""
    return ((rgb.clamp(0, 1) ** gamma) * (2.0 ** delta_ev)).clamp_(0, 1) ** (1.0 / gamma)


@dataclass
class Feedback:
    stamp_ns: int
    label: str
    giver: str
    profile: str


@dataclass
class FineTuneResult:
    profile: str
    path: Path
    labels: int
    mean_reward: float


@dataclass
class FeedbackSession:
    net: AttentionExposureNet
    profile_dir: Path
    frames_held: int = 300
    batch_size: int = 16
    max_per_minute: float = 60.0
    steps: int = 40
    lr: float = 1e-4  # paper 001 Sec. 7.2: Adam, 1e-4
    variance: float = POLICY_VARIANCE
    seed: int = 0
    #: False: a completed batch is not trained inside :meth:`submit` but queued for
    #: :meth:`take_ready` / :meth:`fine_tune` (a node trains it on a worker thread).
    fine_tune_inline: bool = True
    _ready: Deque[Tuple[str, List[Feedback], Dict[int, torch.Tensor]]] = field(default_factory=deque)
    _frames: "OrderedDict[int, torch.Tensor]" = field(default_factory=OrderedDict)
    _pending: Dict[str, List[Feedback]] = field(default_factory=dict)
    _seen: Dict[Tuple[int, str], bool] = field(default_factory=dict)
    _times: Dict[str, Deque[float]] = field(default_factory=dict)
    _nets: Dict[str, AttentionExposureNet] = field(default_factory=dict)

    def frame_seen(self, stamp_ns: int, rgb) -> None:
        """Remember a frame (ISP RGB, uint8 (H, W, 3) or float (3, H, W)) for later feedback."""
        from neural_ae_ros.ae.attention_rl import _as_tensor

        self._frames[int(stamp_ns)] = prepare_input(_as_tensor(rgb))[0]
        while len(self._frames) > self.frames_held:
            self._frames.popitem(last=False)

    def submit(self, stamp_ns: int, label: str, giver: str, profile: str, now_s: Optional[float] = None
               ) -> Optional[FineTuneResult]:
        """Accept one label or raise :class:`FeedbackRefused`; returns the fine-tune result when
        this label completed a batch of the profile."""
        now = time.monotonic() if now_s is None else float(now_s)
        where = f"feedback for frame stamp {stamp_ns} ns from {giver!r}"
        if label not in LABEL_CODE:
            raise FeedbackRefused(f"{where}: unknown label {label!r}; expected one of {list(LABELS)}",
                                  "unknown_label")
        if not _NAME.match(giver or ""):
            raise FeedbackRefused(f"{where}: giver must be 1-64 letters, digits, '_' or '-'", "bad_name")
        if not _NAME.match(profile or ""):
            raise FeedbackRefused(f"{where}: profile {profile!r} must be 1-64 letters, digits, '_' or '-'", "bad_name")
        if int(stamp_ns) not in self._frames:
            raise FeedbackRefused(f"{where}: no such frame (never seen, or older than the last "
                                  f"{self.frames_held} frames)", "unknown_stamp")
        if (int(stamp_ns), giver) in self._seen:
            raise FeedbackRefused(f"{where}: this giver already labelled that frame", "duplicate")
        times = self._times.setdefault(giver, deque())
        while times and now - times[0] > 60.0:
            times.popleft()
        if len(times) >= self.max_per_minute:
            raise FeedbackRefused(f"{where}: flood: more than {self.max_per_minute:g} labels in the last minute", "flood")
        times.append(now)
        self._seen[(int(stamp_ns), giver)] = True
        batch = self._pending.setdefault(profile, [])
        batch.append(Feedback(int(stamp_ns), label, giver, profile))
        if len(batch) >= self.batch_size:
            self._pending[profile] = []
            if not self.fine_tune_inline:  # the frames travel with the batch: later evictions cannot touch it
                self._ready.append((profile, batch, {f.stamp_ns: self._frames[f.stamp_ns] for f in batch}))
                return None
            return self.fine_tune(profile, batch)
        return None

    def take_ready(self) -> Optional[Tuple[str, List[Feedback], Dict[int, torch.Tensor]]]:
        """The oldest completed batch waiting for :meth:`fine_tune` (``fine_tune_inline`` False), or None."""
        return self._ready.popleft() if self._ready else None

    def profile_path(self, profile: str) -> Path:
        return Path(self.profile_dir) / f"{profile}.pt"

    def fine_tune(self, profile: str, batch: List[Feedback],
                  frames: Optional[Dict[int, torch.Tensor]] = None) -> FineTuneResult:
        """REINFORCE on the batch (Fig. 6 reward against each labelled frame, states its
        synthetic re-exposures); writes ``<profile>.pt`` only when every weight is finite.
        ``frames``: stamp -> frame of the batch (default: the frames held now)."""
        frames = self._frames if frames is None else frames
        net = self._nets.get(profile)
        if net is None:
            path = self.profile_path(profile)
            net = load_weights(path)[0] if path.is_file() else copy.deepcopy(self.net)
        work = copy.deepcopy(net)
        gen = torch.Generator().manual_seed(self.seed + len(batch))
        rng = np.random.default_rng(self.seed)
        grid = np.round(np.arange(-10, 11) * 0.2, 6)
        opt = torch.optim.Adam(work.parameters(), lr=self.lr)
        codes_all = torch.tensor([LABEL_CODE[f.label] for f in batch])
        rewards = []
        work.train()
        for _ in range(self.steps):
            ys = rng.choice(grid, len(batch))  # state = labelled frame re-exposed by -Y: Y brings it back
            x = torch.stack([synthetic_reexposure(frames[f.stamp_ns], -float(y)) for f, y in zip(batch, ys)])
            mean = work(x)
            a = sample_actions(mean, self.variance, gen)
            d_ev = EV_RANGE * a - torch.from_numpy(ys).float()
            r, valid = fig6_reward_tensor(codes_all, d_ev)
            loss = reinforce_loss(mean, a, r, valid, self.variance)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if valid.any():
                rewards.append(float(r[valid].mean()))
        work.eval()
        if not all(torch.isfinite(p).all() for p in work.state_dict().values()):
            raise FeedbackRefused(f"profile {profile!r}: fine-tuning gave non-finite weights; kept the previous ones",
                                  "fine_tune")
        path = save_weights(work, self.profile_path(profile),
                            {"profile": profile, "labels": len(batch), "givers": sorted({f.giver for f in batch}),
                             "method": "attention_rl", "kind": "REINFORCE fine-tune (paper 001 Eq. 11, Fig. 6)"})
        load_weights(path)  # the file the controller will read must load
        self._nets[profile] = work
        return FineTuneResult(profile, path, len(batch), float(np.mean(rewards)) if rewards else math.nan)

    # -- what the node asks besides feedback ------------------------------------------------
    def pending(self, profile: str) -> int:
        """Accepted labels of ``profile`` waiting for the next batch."""
        return len(self._pending.get(profile, []))

    def network(self, profile: str) -> AttentionExposureNet:
        """The network ``profile`` runs now: its last fine-tune, else its saved file, else the base."""
        net = self._nets.get(profile)
        if net is None:
            path = self.profile_path(profile)
            net = load_weights(path)[0] if path.is_file() else self.net
        return net

    def maps(self, stamp_ns: int, profile: str) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """(Delta_EV in EV, EM (h, w) in [-1, 1], AM (h, w) in (0, 1), the network input (3, 64, 64))
        of a remembered frame under ``profile``'s network (paper 001 Eq. 1); FeedbackRefused
        (kind unknown_stamp / bad_name) otherwise."""
        from .attention_net import predict_ev

        where = f"maps request for frame stamp {stamp_ns} ns"
        if not _NAME.match(profile or ""):
            raise FeedbackRefused(f"{where}: profile {profile!r} must be 1-64 letters, digits, '_' or '-'", "bad_name")
        frame = self._frames.get(int(stamp_ns))
        if frame is None:
            raise FeedbackRefused(f"{where}: no such frame (never seen, or older than the last "
                                  f"{self.frames_held} frames)", "unknown_stamp")
        d, em, am = predict_ev(self.network(profile), frame)
        return d, em.numpy(), am.numpy(), frame.numpy()
