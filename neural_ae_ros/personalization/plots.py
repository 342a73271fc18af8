"""Figures for paper 001: attention (AM) and exposure (EM) maps of test frames (as Fig. 8/10)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .attention_net import EV_RANGE  # noqa: E402
from neural_ae_ros.evaluation.plots import save_figure  # noqa: E402


def plot_maps_and_table(result: Dict, bank, models: Dict, path: Path, frames: int = 4) -> Path:
    """Rows: test frames (each at its grid offset closest to e_base - 1 EV, a typical dark start);
    columns: the frame, then EM (red: reduce exposure, green: increase) and AM of the
    ``rl_pretrained`` models of the first two experts, with predicted and true Delta_EV."""
    experts = list(result["experts"])[:2]
    keys = [f"rl_pretrained/{e}" for e in experts if f"rl_pretrained/{e}" in models]
    rng = np.random.default_rng(0)
    scenes = rng.choice(bank.num_scenes, min(frames, bank.num_scenes), replace=False)
    k = int(np.argmin(np.abs(bank.offsets_ev + 1.0)))
    fig, axes = plt.subplots(len(scenes), 1 + 2 * len(keys), figsize=(3 * (1 + 2 * len(keys)), 2.6 * len(scenes)),
                             squeeze=False)
    for r, s in enumerate(scenes):
        img = bank.frames[s, k].transpose(1, 2, 0)
        axes[r, 0].imshow(img)
        axes[r, 0].set_title(f"{bank.names[s]} @ {bank.offsets_ev[k]:+.1f} EV", fontsize=8)
        x = bank.images(np.array([s]), np.array([k]))
        for c, key in enumerate(keys):
            net = models[key].eval()
            with torch.no_grad():
                d, em, am = net.maps(x)
            expert = key.split("/")[1]
            truth = bank.preference(expert)[s] - bank.offsets_ev[k]
            a = axes[r, 1 + 2 * c]
            a.imshow(em[0].numpy(), cmap="RdYlGn", vmin=-1, vmax=1)
            a.set_title(f"EM {expert}\npred {float(d) * EV_RANGE:+.2f} / true {truth:+.2f} EV", fontsize=8)
            b = axes[r, 2 + 2 * c]
            b.imshow(am[0].numpy(), cmap="gray", vmin=0, vmax=1)
            b.set_title(f"AM {expert}", fontsize=8)
    for a in axes.ravel():
        a.set_xticks([]); a.set_yticks([])
    return save_figure(fig, path, dpi=90)


def plot_frame_maps(frame: np.ndarray, exposure_map: np.ndarray, attention_map: np.ndarray, delta_ev: float,
                    path: Path, title: str = "") -> Path:
    """One frame of the running product (a maps request of personalization_node): the network
    input (3, H, W) float [0, 1], EM (red: reduce exposure, green: increase; [-1, 1]) and AM
    ((0, 1), white: attended), with Delta_EV = EV_RANGE * mean(EM * AM) (Eq. 1) in the title."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(np.clip(np.asarray(frame).transpose(1, 2, 0), 0, 1))
    axes[0].set_title(title or "frame (network input)", fontsize=8)
    im = axes[1].imshow(exposure_map, cmap="RdYlGn", vmin=-1, vmax=1)
    axes[1].set_title(f"exposure map EM\nDelta_EV {delta_ev:+.2f} EV (Eq. 1)", fontsize=8)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    im = axes[2].imshow(attention_map, cmap="gray", vmin=0, vmax=1)
    axes[2].set_title("attention map AM", fontsize=8)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for a in axes:
        a.set_xticks([]); a.set_yticks([])
    return save_figure(fig, path, dpi=90)
