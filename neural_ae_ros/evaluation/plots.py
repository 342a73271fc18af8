"""Plots people would rather look at than read (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_exposure_traces(results: List[Dict], path: Path, black_level_dn: float, white_level_dn: float) -> Path:
    """Effective exposure (log scale), mean raw level and events of several loop runs."""
    fig, (ax_e, ax_l) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for r in results:
        tr = r["exposure_trace"]
        idx = np.array([t["index"] for t in tr])
        eff = np.array([t["exposure_time_s"] * t["gain"] for t in tr])
        lvl = np.array([t["mean_raw_level_dn"] for t in tr])
        label = r.get("label", r["method"])
        ax_e.semilogy(idx, eff * 1e3, label=label)
        ax_l.plot(idx, lvl, label=label)
    events = results[0]["step_events"] if results else []
    for ax in (ax_e, ax_l):
        for e in events:
            ax.axvline(e["frame_index"], color="k", ls=":", lw=1)
    for e in events:
        ax_l.annotate(f"{e['name']} (x{e['factor']:g})", (e["frame_index"], white_level_dn * 0.95), fontsize=8,
                      rotation=90, va="top", ha="right")
    ax_l.axhline(white_level_dn, color="r", lw=0.8, ls="--", label="white level")
    ax_l.axhline(black_level_dn + 0.5 * (white_level_dn - black_level_dn), color="g", lw=0.8, ls="--",
                 label="average-AE target")
    ax_e.set_ylabel("effective exposure K*t (ms)")
    ax_l.set_ylabel("mean raw level (DN)")
    ax_l.set_xlabel("frame")
    ax_e.legend(loc="best")
    ax_l.legend(loc="center right", fontsize=8)
    r0 = results[0] if results else {}
    ax_e.set_title(f"Closed loop over DDS: drive {r0.get('drive')}, latency {r0.get('actuation_latency_frames')} "
                   f"frames, {r0.get('width')}x{r0.get('height')}")
    return save_figure(fig, path, dpi=110)


def save_figure(fig, path, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` (folders created), close it; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
