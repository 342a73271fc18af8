"""Scores of a closed exposure loop from its per-frame record (no ROS).

* convergence after an illumination event: frames from the event until the mean raw level
  (above black) is back within +-0.5 EV of the target and stays there for ``hold`` frames;
* oscillation: sign changes of the frame-to-frame log2 exposure change, and the RMS of that
  change, over settled stretches (away from events).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class TraceRow:
    frame_index: int
    exposure_time_s: float
    analog_gain: float
    mean_level_dn: float
    from_command: bool
    command_source_frame_index: int

    @property
    def effective_exposure_s(self) -> float:
        return self.exposure_time_s * self.analog_gain


def level_ev_error(mean_level_dn: float, target_level_dn: float, black_level_dn: float) -> float:
    """log2 of (level above black) / (target above black); +inf/-inf guarded to +-20 EV."""
    above = max(mean_level_dn - black_level_dn, 1e-6)
    target = max(target_level_dn - black_level_dn, 1e-6)
    return float(np.clip(math.log2(above / target), -20.0, 20.0))


def settle_target(trace: Sequence[TraceRow], before_frame: int, window: int = 10) -> Optional[float]:
    """Median mean level over the ``window`` frames before ``before_frame`` (None if too few)."""
    rows = [r.mean_level_dn for r in trace if before_frame - window <= r.frame_index < before_frame]
    return float(np.median(rows)) if len(rows) >= max(3, window // 2) else None


def convergence_frames(trace: Sequence[TraceRow], event_frame: int, target_level_dn: float,
                       black_level_dn: float, tolerance_ev: float = 0.5, hold: int = 3,
                       until_frame: Optional[int] = None) -> Optional[int]:
    """Frames after ``event_frame`` until the level is within ``tolerance_ev`` of the target for
    ``hold`` consecutive frames; None if it never gets there before ``until_frame``."""
    rows = sorted((r for r in trace if r.frame_index >= event_frame
                   and (until_frame is None or r.frame_index < until_frame)), key=lambda r: r.frame_index)
    run = 0
    for i, r in enumerate(rows):
        if abs(level_ev_error(r.mean_level_dn, target_level_dn, black_level_dn)) <= tolerance_ev:
            run += 1
            if run >= hold:
                return rows[i - hold + 1].frame_index - event_frame
        else:
            run = 0
    return None


def oscillation(trace: Sequence[TraceRow], exclude_frames: Sequence[int] = (), guard: int = 30) -> Dict[str, float]:
    """Sign changes per 100 frames and RMS (EV) of frame-to-frame exposure change, away from
    events (``guard`` frames after each excluded frame are skipped)."""
    rows = sorted(trace, key=lambda r: r.frame_index)
    log_e = np.array([math.log2(r.effective_exposure_s) for r in rows])
    idx = np.array([r.frame_index for r in rows])
    keep = np.ones(len(rows), bool)
    for f in exclude_frames:
        keep &= ~((idx >= f) & (idx < f + guard))
    keep[: min(guard, len(keep))] = False  # start-up transient
    d = np.diff(log_e)
    k = keep[1:] & keep[:-1]
    d = d[k]
    moving = d[np.abs(d) > 1e-4]
    signs = np.sign(moving)
    changes = int(np.sum(signs[1:] != signs[:-1])) if len(signs) > 1 else 0
    n = max(int(k.sum()), 1)
    return {"sign_changes_per_100_frames": 100.0 * changes / n,
            "rms_step_ev": float(np.sqrt(np.mean(d ** 2))) if len(d) else 0.0,
            "frames_scored": int(k.sum())}


def step_events(trace: Sequence[TraceRow], events, target_level_dn: Optional[float], black_level_dn: float,
                tolerance_ev: float = 0.5, limits=None) -> List[Dict]:
    """One record per illumination event: frames until back within +-tolerance of the target.

    ``target_level_dn`` None (methods without a level target, e.g. gradient AE): the level the
    loop had settled to before the first event (its steady state in the undisturbed scene).
    """
    out = []
    frames = sorted(e.frame_index for e in events)
    reference = settle_target(trace, frames[0]) if frames and target_level_dn is None else None
    for e in sorted(events, key=lambda e: e.frame_index):
        nxt = [f for f in frames if f > e.frame_index]
        until = nxt[0] if nxt else None
        target = target_level_dn if target_level_dn is not None else reference
        conv = None if target is None else convergence_frames(trace, e.frame_index, target, black_level_dn,
                                                              tolerance_ev, until_frame=until)
        record = {"name": e.kind, "frame_index": e.frame_index, "factor": e.factor,
                  "target_level_dn": target, "frames_to_converge": conv}
        if conv is None and limits is not None:
            # did the camera run out of range? (at its longest/shortest exposure at the end)
            seg = [r for r in trace if e.frame_index <= r.frame_index < (until or 1 << 62)]
            if seg:
                e_last = seg[-1].effective_exposure_s
                record["limited_by_camera"] = bool(
                    e_last >= 0.99 * limits.max_effective_exposure_s or e_last <= 1.01 * limits.min_effective_exposure_s)
        out.append(record)
    return out
