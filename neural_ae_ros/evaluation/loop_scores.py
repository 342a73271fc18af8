"""Scores of a closed exposure loop from its per-frame record (no ROS).

* convergence after an illumination event: frames from the event until the mean raw level
  (above black) is back within +-0.5 EV of the target and stays there for ``hold`` frames;
* overshoot: how far the level went past the target on the other side (EV);
* a tunnel darker than the camera can follow: frames until the exposure reached the limit;
* oscillation: sign changes of the frame-to-frame log2 exposure change, and the RMS of that
  change, over settled stretches (away from events), with the number of frames scored.
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


def oscillation(trace: Sequence[TraceRow], exclude_frames: Sequence[int] = (), guard: int = 30) -> Dict:
    """Sign changes per 100 frames and RMS (EV) of the frame-to-frame exposure change on steady
    stretches: the first ``guard`` frames and ``guard`` frames after each excluded frame (events)
    are skipped. ``frames_scored`` says how many frame-to-frame steps were scored; with none,
    both scores are None and ``reason`` says why (never 0.0 over 0 frames)."""
    rows = sorted(trace, key=lambda r: r.frame_index)
    idx = np.array([r.frame_index for r in rows], dtype=np.int64)
    keep = np.ones(len(rows), bool)
    for f in exclude_frames:
        keep &= ~((idx >= f) & (idx < f + guard))
    keep[: min(guard, len(keep))] = False  # start-up transient
    if len(rows) < 2:
        scored = np.zeros(0, bool)
        d = np.zeros(0)
    else:
        log_e = np.log2([r.effective_exposure_s for r in rows])
        consecutive = np.diff(idx) == 1
        scored = keep[1:] & keep[:-1] & consecutive
        d = np.diff(log_e)[scored]
    n = int(scored.sum())
    if n == 0:
        return {"sign_changes_per_100_frames": None, "rms_step_ev": None, "sign_changes": None,
                "frames_scored": 0,
                "reason": f"no steady frames to score: {len(rows)} frames, the first {guard} and {guard} after "
                          f"each of {len(exclude_frames)} events are excluded"}
    moving = d[np.abs(d) > 1e-4]
    signs = np.sign(moving)
    changes = int(np.sum(signs[1:] != signs[:-1])) if len(signs) > 1 else 0
    return {"sign_changes_per_100_frames": 100.0 * changes / n,
            "rms_step_ev": float(np.sqrt(np.mean(d ** 2))),
            "sign_changes": changes,
            "frames_scored": n}


def overshoot_ev(trace: Sequence[TraceRow], event_frame: int, target_level_dn: float, black_level_dn: float,
                 until_frame: Optional[int] = None) -> Optional[float]:
    """How far (EV, >= 0) the level went past the target on the other side after an event: the
    event leaves the level too bright (or dark); overshoot is the largest error of the opposite
    sign from then on (0.0 when it never crossed). None without frames after the event."""
    rows = [r for r in trace if r.frame_index >= event_frame and (until_frame is None or r.frame_index < until_frame)]
    if not rows:
        return None
    rows.sort(key=lambda r: r.frame_index)
    errors = [level_ev_error(r.mean_level_dn, target_level_dn, black_level_dn) for r in rows]
    first = errors[0]
    if first == 0.0:
        return max(abs(e) for e in errors)
    opposite = [-e if first > 0 else e for e in errors]
    return float(max(0.0, max(opposite)))


def frames_to_camera_limit(trace: Sequence[TraceRow], event_frame: int, limits, until_frame: Optional[int] = None,
                           rel_tol: float = 0.01) -> Optional[int]:
    """Frames from ``event_frame`` until the exposure reaches the camera's longest or shortest
    effective exposure (within ``rel_tol``); None if it does not get there."""
    for r in sorted(trace, key=lambda r: r.frame_index):
        if r.frame_index < event_frame or (until_frame is not None and r.frame_index >= until_frame):
            continue
        e = r.effective_exposure_s
        if e >= (1 - rel_tol) * limits.max_effective_exposure_s or e <= (1 + rel_tol) * limits.min_effective_exposure_s:
            return r.frame_index - event_frame
    return None


def step_events(trace: Sequence[TraceRow], events, target_level_dn: Optional[float], black_level_dn: float,
                tolerance_ev: float = 0.5, limits=None, hold: int = 3) -> List[Dict]:
    """One record per illumination event: ``frames_to_converge`` (frames until back within
    +-``tolerance_ev`` of the target for ``hold`` frames), ``overshoot_ev``; when the level does
    not get back and the camera ran out of range, ``limited_by_camera`` and
    ``frames_to_camera_limit`` (frames until the exposure reached the limit).

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
                                                              tolerance_ev, hold=hold, until_frame=until)
        record = {"name": e.kind, "frame_index": e.frame_index, "factor": e.factor,
                  "target_level_dn": target, "frames_to_converge": conv,
                  "overshoot_ev": None if target is None else overshoot_ev(trace, e.frame_index, target,
                                                                            black_level_dn, until)}
        if target is None:
            record["reason"] = "no target level: too few frames before the first event to know the steady level"
        if conv is None and limits is not None:
            n = frames_to_camera_limit(trace, e.frame_index, limits, until)
            record["limited_by_camera"] = n is not None
            record["frames_to_camera_limit"] = n
        out.append(record)
    return out
