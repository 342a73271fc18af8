"""The exposure controller around an AE method: from ``u`` to camera settings (no ROS).

Two smoothings (``ControllerSettings.smoothing``):

* ``paper_ema`` -- paper 000 Eq. 5: ``log e_next = mu log e_prev + (1 - mu) log(e_obs u)``
  (``mu = 0.9``), ``e_prev`` the previous command. Kept for the paper benchmark; after a 10 EV
  step it needs ~70 frames.
* ``fast`` (default of the running loop) -- settles a 10 EV step in ``3 + latency`` frames
  without overshoot. Physics: a command from frame ``t`` lands on ``t + 1 + L``, so with
  ``L >= 2`` every decision landing by frame ``E + 3 + L`` was made from frames captured at
  the old exposure. Hence:

  - *informative* frame (not clipped, no scene step against the reference frame): the method's
    absolute target ``e_obs * u`` (``u`` within the Eq. 4 bound ``[1/M, M]``, ``M = 10``),
    never compounded with commands in flight; changes below ``deadband_ev`` are not sent, and
    changes below ``confirm_below_ev`` only once ``confirm_frames`` consecutive frames asked for
    a change the same way, then to the log-average of their targets (a noisy method, e.g. a
    network on a noisy frame, does not dither on steady scenes; large changes go at once);
  - *clipped* frame (mean above mid-range and a saturated fraction at least ``clip_fraction``
    above the reference's): its estimate is only a bound. Quantile matching of the clipped fraction against the reference
    frame's histogram gives the scene's brightness step where unclipped pixels remain; with no
    usable quantile, the step is blind. Either way the controller pipelines: it steps from the
    command already in flight by at most ``M`` per frame (3.3 EV), down to the estimate, and
    never more than ``M ** blind_steps`` (10 EV) below the last exposure a frame confirmed;
  - *dark* frame or a scene step of at least ``scene_step_ev`` (exposure-normalised mean level
    against the reference): the mean level estimates the step (a point estimate; black frames
    are blind like clipped ones), reached in steps of at most ``M`` from the command in flight.

  Frames captured before the last such event decision landed do not let the method undo it.

Every command is split with Eq. 6 (``t_max_s``) and clamped to the camera's limits here, once;
the camera only sanitises what it receives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, List, Optional

import numpy as np

from neural_ae_ros.imaging.exposure import CameraExposureInfo, FrameExposure, ema_log_exposure, split_exposure

from .base import AutoExposureMethod, Observation

__all__ = ["SMOOTHING_MODES", "ControllerSettings", "ExposureController"]

SMOOTHING_MODES = ("fast", "paper_ema")
#: A confirmed small change goes to the log-average of up to this many times ``confirm_frames``
#: recent targets (since the last event or large change).
AVERAGE_WINDOW_CONFIRMATIONS = 3


@dataclass(frozen=True)
class ControllerSettings:
    """Tunable settings of :class:`ExposureController` (live-changeable, see ``configure``).

    ``t_max_s`` 0 means the camera's announced Eq. 6 T_max. ``max_adjustment`` is Eq. 4's
    ``M_exp`` (per decision). The ``fast``-only settings are described in the module docstring.
    """

    smoothing: str = "fast"
    ema_mu: float = 0.9
    t_max_s: float = 0.0
    max_adjustment: float = 10.0
    deadband_ev: float = 0.1
    confirm_frames: int = 3
    confirm_below_ev: float = 0.5
    blind_steps: int = 3
    clip_fraction: float = 0.1
    scene_step_ev: float = 0.5
    dark_level_fraction: float = 1.0 / 64.0
    wait_for_applied_command: bool = False

    def problems(self) -> List[str]:
        out = []
        if self.smoothing not in SMOOTHING_MODES:
            out.append(f"smoothing={self.smoothing!r} is not one of {', '.join(SMOOTHING_MODES)}")
        if not 0.0 <= self.ema_mu <= 1.0:
            out.append(f"ema_mu={self.ema_mu!r} must be in [0, 1]")
        if not (math.isfinite(self.t_max_s) and self.t_max_s >= 0):
            out.append(f"t_max_s={self.t_max_s!r} must be >= 0 (0: the camera's T_max)")
        if not self.max_adjustment > 1.0:
            out.append(f"max_adjustment={self.max_adjustment!r} must be > 1")
        if not 0.0 <= self.deadband_ev < 0.5:
            out.append(f"deadband_ev={self.deadband_ev!r} must be in [0, 0.5)")
        if not (isinstance(self.confirm_frames, int) and 1 <= self.confirm_frames <= 30):
            out.append(f"confirm_frames={self.confirm_frames!r} must be an integer in 1..30")
        if not 0.0 <= self.confirm_below_ev <= 3.0:
            out.append(f"confirm_below_ev={self.confirm_below_ev!r} must be in [0, 3]")
        if not (isinstance(self.blind_steps, int) and 1 <= self.blind_steps <= 10):
            out.append(f"blind_steps={self.blind_steps!r} must be an integer in 1..10")
        if not 0.0 < self.clip_fraction < 1.0:
            out.append(f"clip_fraction={self.clip_fraction!r} must be in (0, 1)")
        if not self.scene_step_ev > 0.0:
            out.append(f"scene_step_ev={self.scene_step_ev!r} must be > 0")
        if not 0.0 < self.dark_level_fraction < 0.5:
            out.append(f"dark_level_fraction={self.dark_level_fraction!r} must be in (0, 0.5)")
        return out

    @classmethod
    def names(cls) -> List[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class _Reference:
    """The last informative frame: its exposure, level above black (DN), clipped fraction,
    whole-image histogram (or None) and the exposure its scene needs (the decision, or beyond
    it where the Eq. 4 bound or the camera's limit cut the decision short)."""

    exposure_s: float
    level_dn: float
    clip_fraction: float
    histogram: Optional[np.ndarray]
    target_s: float


class ExposureController:
    #: Quantile matching needs the matched reference level at least this far above black
    #: (fraction of the signal range; 1/32 = 5 EV below white).
    min_quantile_level_fraction = 1.0 / 32.0

    """Turns an :class:`AutoExposureMethod`'s ``u`` into commands (:class:`FrameExposure`).

    ``update(obs)`` returns the command computed from frame ``obs``; ``last_info`` holds what
    the decision was based on (``mode``, ``adjustment_factor``, ``requested_effective_exposure_s``,
    ``problems``, ``held``). ``camera`` is what the camera announced (limits, T_max, latency,
    session). ``configure``/``set_method`` change settings or the method live and keep the
    state (last command, reference frame); ``reset`` forgets it (a new camera session).
    """

    def __init__(self, method: AutoExposureMethod, camera: CameraExposureInfo,
                 settings: Optional[ControllerSettings] = None, **overrides: Any) -> None:
        settings = replace(settings or ControllerSettings(), **overrides)
        problems = settings.problems()
        if problems:
            raise ValueError("invalid controller settings: " + "; ".join(problems))
        self.method = method
        self.camera = camera
        self.settings = settings
        self.last_info: Dict[str, Any] = {}
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the loop's state (new camera session or sequence); settings stay."""
        self.method.reset()
        self.last_command: Optional[FrameExposure] = None
        self._decided_source = -1      # frame of the last decision that was not a hold
        self._change_source = -1       # frame of the last command that changed the exposure
        self._change_was_event = False
        self._anchor_s: Optional[float] = None  # newest exposure a frame confirmed (or decided from one)
        self._reference: Optional[_Reference] = None
        self._in_event = False  # the last decision came from the clipped/dark/step path
        self._last_raw_u = 1.0
        self._settled_level: Optional[float] = None  # level above black of the last settled frame
        self._method_info: Dict[str, Any] = {}  # ExposureDecision.info of the last method call
        self._method_held = False
        self._recent_targets: List[float] = []  # log2 of the method's targets, consecutive method frames

    def configure(self, **changes: Any) -> None:
        """Apply new settings in place (validated first; the state is kept)."""
        new = replace(self.settings, **changes)
        problems = new.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.settings = new

    def set_method(self, method: AutoExposureMethod) -> None:
        """Switch the AE method; the exposure state (last command, reference) is kept."""
        self.method = method

    def set_camera(self, camera: CameraExposureInfo) -> None:
        """New camera facts; a different session resets the state (its frame indices restart)."""
        new_session = camera.session_id != self.camera.session_id
        self.camera = camera
        if new_session:
            self.reset()

    @property
    def t_max_s(self) -> float:
        return self.settings.t_max_s or self.camera.t_max_s

    # -- decisions --------------------------------------------------------------------------
    def update(self, obs: Observation) -> FrameExposure:
        s = self.settings
        src = obs.exposure.source_frame_index
        if (s.wait_for_applied_command and self.last_command is not None
                and src < self._decided_source):
            cmd = replace(self.last_command, source_frame_index=obs.frame_index)
            self.last_command = cmd
            self.last_info = {"mode": "held", "adjustment_factor": 1.0, "held": True, "problems": (),
                              "requested_effective_exposure_s": cmd.effective_exposure_s}
            return cmd
        problems: List[str] = []
        e_obs = obs.effective_exposure_s
        if not (math.isfinite(e_obs) and e_obs > 0):
            fallback = (self.last_command.effective_exposure_s if self.last_command
                        else self.camera.limits.min_effective_exposure_s)
            problems.append(f"frame {obs.frame_index}: exposure of the observed frame t*K={e_obs!r} is invalid; "
                            f"using {fallback:g} s")
            e_obs = fallback
        self._method_info = {}
        self._method_held = False
        if s.smoothing == "paper_ema":
            u = self._method_u(obs, problems)
            previous = self.last_command.effective_exposure_s if self.last_command else e_obs
            if self._method_held:  # the method had nothing to decide from: keep the last command
                e_req, mode, event = previous, "held_by_method", False
            else:
                e_req, mode, event = ema_log_exposure(previous, e_obs * u / previous, s.ema_mu), "paper_ema", False
        else:
            e_req, mode, event, u = self._fast(obs, e_obs, problems)
            if mode not in ("method", "held_by_method"):
                self._recent_targets.clear()  # an event: earlier targets were for another scene
            self._in_event = mode in ("clipped", "clipped_estimate", "dark", "scene_step")
        t, k, clamped = split_exposure(e_req, self.t_max_s, self.camera.limits)
        cmd = FrameExposure(t, k, -1, obs.frame_index, self.method.name, bool(clamped), self.camera.session_id)
        previous = self.last_command
        if previous is None or not math.isclose(cmd.effective_exposure_s, previous.effective_exposure_s,
                                                rel_tol=1e-6):
            self._change_source = obs.frame_index
            self._change_was_event = event
        self.last_command = cmd
        self._decided_source = obs.frame_index
        self.last_info = {"mode": mode, "adjustment_factor": u, "requested_effective_exposure_s": e_req,
                          "problems": tuple(problems), "held": self._method_held,
                          "method_info": dict(self._method_info)}
        return cmd

    def _method_u(self, obs: Observation, problems: List[str]) -> float:
        decision = self.method.next_exposure(obs)
        self._method_info = dict(decision.info or {})
        # a method with nothing to decide from (semantic_nn without features) asks to hold
        self._method_held = bool(self._method_info.get("hold", False))
        try:
            u = float(decision.adjustment_factor)
        except (TypeError, ValueError):
            u = float("nan")
        if not (math.isfinite(u) and u > 0):
            problems.append(f"method {self.method.name!r} returned u={decision.adjustment_factor!r}; using 1")
            u = 1.0
        self._last_raw_u = u
        m = self.settings.max_adjustment
        return min(max(u, 1.0 / m), m)

    def _frame_stats(self, obs: Observation):
        """(level above black in DN, clipped fraction, whole-image histogram or None)."""
        black, white = float(obs.black_level_dn), float(obs.white_level_dn)
        level = obs.green_mean_dn() - black
        hist = None
        if obs.histograms is not None:
            hist = np.asarray(obs.histograms[0], dtype=np.float64)
            total = hist.sum()
            clip = float(hist[self._clip_bin(hist.size, white):].sum() / total) if total > 0 else 0.0
        else:  # no histogram: a mean near white is the only sign of clipping
            clip = 1.0 if level >= 0.9 * (white - black) else 0.0
        return level, clip, hist

    def _fast(self, obs: Observation, e_obs: float, problems: List[str]):
        s = self.settings
        m = s.max_adjustment
        black, white = float(obs.black_level_dn), float(obs.white_level_dn)
        signal_range = white - black
        e_fly = self.last_command.effective_exposure_s if self.last_command else e_obs
        seen = obs.exposure.source_frame_index >= self._change_source
        if self._anchor_s is None or (seen and not self._in_event):
            self._anchor_s = e_obs
        level, clip, hist = self._frame_stats(obs)
        ref = self._reference
        if level < 0.5 * signal_range:  # a mean below mid-range is no bound, whatever clips (a sky)
            over = False
        elif ref is not None:  # clearly more saturated than the last informative frame
            over = clip >= ref.clip_fraction + s.clip_fraction
        else:  # start-up: only a frame saturated at large is a bound
            over = clip >= 0.5 or level >= 0.9 * signal_range
        dark = level < s.dark_level_fraction * signal_range
        step = False
        if ref is not None and not over and level > 0 and ref.level_dn > 0:
            step = abs(math.log2((level / e_obs) / (ref.level_dn / ref.exposure_s))) >= s.scene_step_ev
        if (over or (dark and level < 1.0)) and not self._in_event and ref is not None:
            # a blind episode starts: its 10 EV budget counts from the exposure that was right for
            # the scene before the event (the reference's target), which a camera at its limit
            # (a tunnel) could not reach, not from the exposure the frame happened to have
            self._anchor_s = ref.target_s
        if over:
            estimate = self._quantile_estimate(hist, e_obs, black, white)
            floor = self._anchor_s / m ** s.blind_steps
            if seen and e_obs <= 1.01 * floor:  # the budget is spent and still clipped: a new one
                self._anchor_s = e_obs
                floor = e_obs / m ** s.blind_steps
            if estimate is None:  # blind: step on from the command in flight, never back up
                e_req = min(max(floor, e_fly / m), e_fly, e_obs)
            else:
                e_req = min(self._towards(max(estimate, floor), e_obs, e_fly), e_obs)
            return e_req, "clipped" if estimate is None else "clipped_estimate", True, e_req / e_obs
        if dark or step:
            estimate = self._mean_estimate(level, e_obs, signal_range)
            ceiling = self._anchor_s * m ** s.blind_steps
            if seen and e_obs >= ceiling / 1.01:
                self._anchor_s = e_obs
                ceiling = e_obs * m ** s.blind_steps
            if estimate is None:  # black frame: blind steps up from the command in flight
                e_req = max(min(ceiling, e_fly * m), e_fly, e_obs)
            else:
                estimate = min(estimate, ceiling)
                e_req = self._towards(estimate, e_obs, e_fly)
                if not dark:  # a well-exposed frame of a changed scene is the new reference
                    self._reference = _Reference(e_obs, level, clip, hist, estimate)
            return e_req, "dark" if dark else "scene_step", True, e_req / e_obs
        if self._change_was_event and not seen and ref is not None:
            # captured before the last event decision landed: the method must not undo it; go on
            # towards the exposure the event asked for (pipelined, Eq. 4 bound per frame)
            e_req = self._towards(ref.target_s, e_obs, e_fly)
            return e_req, "wait_event", e_req != e_fly, e_req / e_obs
        u = self._method_u(obs, problems)
        if self._method_held:  # keep the command in flight; this frame is no new reference
            return e_fly, "held_by_method", False, e_fly / e_obs
        e_req = self._confirmed(e_obs * u, e_fly)
        # the exposure this scene needs, beyond the Eq. 4 step and the camera's reach (a tunnel
        # darker than the camera can follow: there the mean level says how far short it is)
        needed = e_obs * self._last_raw_u
        at_limit = e_obs >= 0.99 * self.camera.limits.max_effective_exposure_s
        if not at_limit and abs(math.log2(u)) < 2 * s.deadband_ev:
            self._settled_level = level  # the level this method settles to (gradient: its own choice)
        if at_limit and level > 0:
            wanted = self._settled_level if self._settled_level is not None else 0.5 * signal_range
            needed = max(needed, e_obs * wanted / level)
        self._reference = _Reference(e_obs, level, clip, hist, needed if needed != e_obs * u else e_req)
        return e_req, "method", False, u

    def _confirmed(self, target: float, e_fly: float) -> float:
        """The command for the method's absolute ``target`` (s): the command in flight within the
        deadband; a change below ``confirm_below_ev`` only when the last ``confirm_frames``
        targets all ask for it the same way (beyond the deadband), then their log-average."""
        s = self.settings
        recent = self._recent_targets
        recent.append(math.log2(target))
        del recent[:-AVERAGE_WINDOW_CONFIRMATIONS * s.confirm_frames]
        change_ev = recent[-1] - math.log2(e_fly)
        if abs(change_ev) < s.deadband_ev:
            return e_fly
        if abs(change_ev) >= s.confirm_below_ev or s.confirm_frames == 1:
            del recent[:-1]  # a large change: the earlier targets were for another exposure need
            return target
        last = recent[-s.confirm_frames:]
        if len(last) < s.confirm_frames:
            return e_fly
        offsets = [t - math.log2(e_fly) for t in last]
        if all(o >= s.deadband_ev for o in offsets) or all(o <= -s.deadband_ev for o in offsets):
            # the average over a longer window: the confirming targets alone are a biased pick
            return 2.0 ** (sum(recent) / len(recent))
        return e_fly

    def _towards(self, estimate: float, e_obs: float, e_fly: float) -> float:
        """A point estimate, at most ``M`` beyond both the observed frame's exposure and the
        command in flight (Eq. 4 per decision; pipelined from the command in flight)."""
        m = self.settings.max_adjustment
        return min(max(estimate, min(e_obs, e_fly) / m), max(e_obs, e_fly) * m)

    def _clip_bin(self, num_bins: int, white: float) -> int:
        """First histogram bin counted as clipped: the bin just below the camera's saturation level."""
        bin_width = (white + 1.0) / num_bins
        return int(min(max(self.camera.saturation_level_dn // bin_width - 1, 0), num_bins - 1))

    def _mean_estimate(self, level: float, e_obs: float, signal_range: float) -> Optional[float]:
        """Exposure that brings the scene back to the reference's level (or mid-range without
        a reference), from the exposure-normalised mean; None when the frame is black."""
        if not level >= 1.0:  # below 1 DN above black: no usable signal
            return None
        ref = self._reference
        if ref is None or ref.level_dn <= 0:
            return e_obs * 0.5 * signal_range / level
        scene_ratio = (level / e_obs) / (ref.level_dn / ref.exposure_s)
        return ref.target_s / scene_ratio

    def _quantile_estimate(self, hist: Optional[np.ndarray], e_obs: float, black: float,
                           white: float) -> Optional[float]:
        """Scene brightness step from the clipped fraction: the reference level ``l*`` above
        which the same fraction of the reference frame lies saturates at ``e_obs``, so the scene
        is ``(W e_ref) / (l* e_obs)`` times brighter. None without a reference histogram or when
        ``l*`` lies within ``min_quantile_level_fraction`` of the range above black (the darkest
        pixels' levels are mostly read noise and quantisation: too coarse to trust)."""
        ref = self._reference
        if hist is None or ref is None or ref.histogram is None or hist.sum() <= 0:
            return None
        first_clipped = self._clip_bin(hist.size, white)
        clip = hist[first_clipped:].sum() / hist.sum()
        r = ref.histogram / max(ref.histogram.sum(), 1.0)
        bin_width = (white + 1.0) / r.size
        tail = np.cumsum(r[::-1])[::-1]  # tail[b]: fraction of reference pixels in bins >= b
        above = np.nonzero(tail >= clip)[0]
        if above.size == 0:
            return None
        b = int(above[-1])  # highest bin whose tail still holds the clipped fraction
        inside = (clip - (tail[b + 1] if b + 1 < r.size else 0.0)) / max(r[b], 1e-12)
        level_star = (b + 1 - min(max(inside, 0.0), 1.0)) * bin_width - black
        if level_star < self.min_quantile_level_fraction * (white - black) or clip > 0.98:
            return None
        clip_level = first_clipped * bin_width - black
        scene_ratio = clip_level * ref.exposure_s / (level_star * e_obs)
        return ref.target_s / scene_ratio
