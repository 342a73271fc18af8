"""Auto-exposure interface: observations in, exposure adjustment factors out.

An :class:`AutoExposureMethod` looks at one frame (:class:`Observation`) and returns an
:class:`ExposureDecision` whose ``adjustment_factor`` ``u`` is relative to the effective
exposure ``e = K * t`` of *that* frame (paper 000 Eq. 4/5: ``u_t``). The
:class:`ExposureController` owns everything that turns ``u`` into camera settings:
Eq. 5 EMA in the log domain (``mu``), Eq. 6 shutter/gain split and the camera limits.

Methods are created by name through :func:`make_method` (``'average'``, ``'gradient'``,
plus whatever other modules register with :func:`register_method`).
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type

import numpy as np

from neural_ae_ros.imaging.exposure import CameraLimits, ema_log_exposure, sanitize_command, split_exposure
from neural_ae_ros.imaging.histograms import histogram_stack, mean_green_level

__all__ = [
    "Observation",
    "ExposureDecision",
    "AutoExposureMethod",
    "ExposureCommandValues",
    "ExposureController",
    "register_method",
    "make_method",
    "available_methods",
]


@dataclass
class Observation:
    """What an AE method may look at for one frame.

    ``exposure_time_s`` / ``analog_gain`` are the settings the frame was *captured with*
    (not the last command sent: with actuation latency they differ).
    ``mean_level_dn`` is the mean of the first-green plane in DN, black level included.
    """

    frame_index: int
    exposure_time_s: float
    analog_gain: float
    mean_level_dn: Optional[float] = None
    raw: Optional[np.ndarray] = None  # (H, W) RGGB mosaic, DN
    histograms: Optional[np.ndarray] = None  # (59, 256), see histograms.py
    white_level_dn: int = 4095
    black_level_dn: float = 64.0
    stamp_s: Optional[float] = None
    #: source_frame_index of the command the frame was captured with (None: unknown/initial).
    command_source_frame_index: Optional[int] = None

    @property
    def effective_exposure_s(self) -> float:
        return float(self.exposure_time_s) * float(self.analog_gain)

    @classmethod
    def from_raw(
        cls,
        raw: np.ndarray,
        frame_index: int,
        exposure_time_s: float,
        analog_gain: float,
        white_level_dn: int = 4095,
        black_level_dn: float = 64.0,
        compute_histograms: bool = True,
        keep_raw: bool = True,
        stamp_s: Optional[float] = None,
    ) -> "Observation":
        """Observation with histograms and mean green level computed from a raw mosaic."""
        if compute_histograms:
            hist, mean = histogram_stack(raw, white_level_dn, return_mean=True)
        else:
            hist, mean = None, mean_green_level(raw)
        return cls(
            frame_index=int(frame_index),
            exposure_time_s=float(exposure_time_s),
            analog_gain=float(analog_gain),
            mean_level_dn=mean,
            raw=raw if keep_raw else None,
            histograms=hist,
            white_level_dn=int(white_level_dn),
            black_level_dn=float(black_level_dn),
            stamp_s=stamp_s,
        )

    def green_mean_dn(self) -> float:
        """Mean green DN: the given value, else from the raw mosaic, else from histograms."""
        if self.mean_level_dn is not None:
            return float(self.mean_level_dn)
        if self.raw is not None:
            return mean_green_level(self.raw)
        if self.histograms is not None:
            whole = np.asarray(self.histograms[0], dtype=np.float64)
            width = (self.white_level_dn + 1) / whole.size
            centers = (np.arange(whole.size) + 0.5) * width
            return float((whole * centers).sum() / max(whole.sum(), 1.0))
        raise ValueError(
            f"frame {self.frame_index}: observation has no mean_level_dn, raw or histograms"
        )


@dataclass(frozen=True)
class ExposureDecision:
    """``adjustment_factor`` u: next effective exposure = this frame's exposure * u
    (before the controller's EMA, split and clamping). ``info``: diagnostics."""

    adjustment_factor: float
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def delta_ev(self) -> float:
        return math.log2(self.adjustment_factor)


class AutoExposureMethod(abc.ABC):
    """Base class: one AE algorithm. Stateless methods need only ``next_exposure``."""

    name: str = "base"

    @abc.abstractmethod
    def next_exposure(self, obs: Observation) -> ExposureDecision:
        """Exposure adjustment factor for the frame after ``obs``."""

    def reset(self) -> None:
        """Forget any internal state (new sequence)."""


_REGISTRY: Dict[str, Callable[..., AutoExposureMethod]] = {}


def register_method(name: str) -> Callable[[Type[AutoExposureMethod]], Type[AutoExposureMethod]]:
    """Class decorator: make ``cls`` available as ``make_method(name, **params)``."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"AE method name {name!r} already registered by {_REGISTRY[name]}")
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtin() -> None:
    from . import average, gradient  # noqa: F401  (registers 'average' and 'gradient')


def available_methods() -> List[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_method(name: str, **params: Any) -> AutoExposureMethod:
    """Create an AE method by registry name, passing ``params`` to its constructor."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown AE method {name!r}; available: {sorted(_REGISTRY)}") from None
    return factory(**params)


@dataclass(frozen=True)
class ExposureCommandValues:
    """Camera settings to apply, and where they came from."""

    exposure_time_s: float
    analog_gain: float
    effective_exposure_s: float  # exposure_time_s * analog_gain, after clamping
    method: str
    source_frame_index: int  # frame the decision was computed from
    clamped: bool  # the requested exposure was outside the limits
    adjustment_factor: float = 1.0  # u reported by the method (after guarding)
    requested_effective_exposure_s: float = float("nan")  # after EMA, before split/clamp
    problems: Tuple[str, ...] = ()
    #: True when the controller repeated its last command instead of deciding anew (it was
    #: waiting for that command to show up in a frame, ``wait_for_applied_command``).
    held: bool = False


class ExposureController:
    """Eq. 5 EMA + Eq. 6 split + camera limits around an :class:`AutoExposureMethod`.

    ``update(obs)`` computes ``u`` with the method, forms the target ``e_obs * u`` where
    ``e_obs = obs.exposure_time_s * obs.analog_gain`` is the exposure of the observed frame,
    filters it with Eq. 5 (``log e_next = mu log e_prev + (1 - mu) log(e_obs u)``, ``e_prev``
    the previous filter output; equal to ``e_obs`` when there is no actuation latency), splits ``e_next`` into
    exposure time and gain (Eq. 6, ``t_max_s``) and clamps to ``limits``.

    ``max_adjustment`` (optional) bounds ``u`` to ``[1/max_adjustment, max_adjustment]``
    before the EMA (the paper's networks have this bound built in, Eq. 4, M_exp = 10).
    """

    def __init__(
        self,
        method: AutoExposureMethod,
        limits: Optional[CameraLimits] = None,
        t_max_s: float = 0.015,
        mu: float = 0.9,
        max_adjustment: Optional[float] = None,
        wait_for_applied_command: bool = False,
    ) -> None:
        if not (0.0 <= mu <= 1.0):
            raise ValueError(f"mu={mu!r} must be in [0, 1]")
        if not (math.isfinite(t_max_s) and t_max_s > 0):
            raise ValueError(f"t_max_s={t_max_s!r} must be > 0")
        if max_adjustment is not None and not (max_adjustment >= 1.0):
            raise ValueError(f"max_adjustment={max_adjustment!r} must be >= 1")
        self.method = method
        self.limits = limits if limits is not None else CameraLimits()
        self.t_max_s = float(t_max_s)
        self.mu = float(mu)
        self.max_adjustment = max_adjustment
        # Like a driver's "skip frames until the metadata shows the commanded values": with
        # actuation latency, a controller that reacts to frames captured before its last command
        # took effect overshoots (a proportional controller then oscillates).
        self.wait_for_applied_command = bool(wait_for_applied_command)
        self.last_command: Optional[ExposureCommandValues] = None
        self._decided_source_frame_index = -1  # frame the last real (not held) decision came from

    def reset(self) -> None:
        self.method.reset()
        self.last_command = None
        self._decided_source_frame_index = -1

    def update(self, obs: Observation) -> ExposureCommandValues:
        if (self.wait_for_applied_command and self.last_command is not None
                and obs.command_source_frame_index is not None
                and obs.command_source_frame_index < self._decided_source_frame_index):
            return self._hold(obs)
        return self._decide(obs)

    def _hold(self, obs: Observation) -> ExposureCommandValues:
        """Repeat the last decision for frame ``obs`` (that decision has not landed yet)."""
        cmd = replace(self.last_command, source_frame_index=int(obs.frame_index), adjustment_factor=1.0,
                      problems=(), held=True)
        self.last_command = cmd
        return cmd

    def _decide(self, obs: Observation) -> ExposureCommandValues:
        problems: List[str] = []
        try:
            e_obs = obs.effective_exposure_s
        except (TypeError, ValueError):
            e_obs = float("nan")
        if not (math.isfinite(e_obs) and e_obs > 0):
            fallback = (self.last_command.effective_exposure_s if self.last_command
                        else self.limits.min_effective_exposure_s)
            problems.append(
                f"frame {obs.frame_index}: exposure of the observed frame t*K={e_obs!r} is "
                f"invalid; using {fallback:g} s"
            )
            e_obs = fallback
        decision = self.method.next_exposure(obs)
        u = decision.adjustment_factor
        try:
            u = float(u)
        except (TypeError, ValueError):
            u = float("nan")
        if not (math.isfinite(u) and u > 0):
            problems.append(f"method {self.method.name!r} returned u={decision.adjustment_factor!r}; using 1")
            u = 1.0
        if self.max_adjustment is not None:
            u = min(max(u, 1.0 / self.max_adjustment), self.max_adjustment)
        # Eq. 5 filters the sequence of exposure targets e_obs * u in the log domain. Its state
        # e_{t-1} is the previous filter output (the last command). Without actuation latency
        # that equals the observed frame's exposure, as in the paper; with latency the observed
        # frame is older than the last command, and filtering from e_obs instead would slow the
        # loop down by the latency (each target would be discounted against a stale exposure).
        # The clamped command is the state (anti-windup: no run-away beyond the camera limits).
        previous = self.last_command.effective_exposure_s if self.last_command else e_obs
        if not (math.isfinite(previous) and previous > 0):
            previous = e_obs
        e_req = ema_log_exposure(previous, e_obs * u / previous, self.mu)
        t, k, clamped = split_exposure(e_req, self.t_max_s, self.limits)
        t, k, more = sanitize_command(t, k, self.limits)
        problems.extend(more)
        cmd = ExposureCommandValues(
            exposure_time_s=t,
            analog_gain=k,
            effective_exposure_s=t * k,
            method=self.method.name,
            source_frame_index=int(obs.frame_index),
            clamped=bool(clamped or more),
            adjustment_factor=u,
            requested_effective_exposure_s=e_req,
            problems=tuple(problems),
        )
        self.last_command = cmd
        self._decided_source_frame_index = cmd.source_frame_index
        return cmd
