"""Exposure bookkeeping: camera limits, Eq. 5 EMA, Eq. 6 shutter/gain split, sanitising.

Paper 000:

* Eq. 5 (Section 4.3): ``log e_t = mu log e_{t-1} + (1 - mu) log(e_{t-1} u_t)``, i.e.
  ``e_t = e_{t-1} * u_t ** (1 - mu)`` with ``mu = 0.9``. ``e_{t-1}`` is the effective
  exposure of the frame the adjustment ``u_t`` was computed from.
* Eq. 6 (Section 4.4): ``K = max(1, e / T_max)``, ``t = e / K`` (longest exposure time
  first because it maximises SNR; gain only beyond ``T_max``), ``T_max = 15 ms``.

Effective exposure ``e = K * t`` is in seconds (docs/design.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple, Union

from neural_ae_ros.config import config_path, is_ros_parameters_file, load_yaml, ros_parameters

__all__ = [
    "FrameExposure",
    "CameraExposureInfo",
    "CameraLimits",
    "CameraConfig",
    "split_exposure",
    "base_exposure_s",
    "SIMULATION_LIMITS",
    "ema_log_exposure",
    "sanitize_command",
    "ACTUATION_LATENCY_RANGE",
]

DEFAULT_CAMERA_YAML = "camera.yaml"
ACTUATION_LATENCY_RANGE = (0, 5)
# Anything beyond this is treated as garbage, not as "very long" (sanitize_command).
_ABSURD_EXPOSURE_S = 1.0e3
_ABSURD_GAIN = 1.0e6


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: The node whose entry of a ``ros__parameters`` file holds the camera settings and limits.
CAMERA_NODE_NAME = "camera_bridge"
_LIMIT_KEYS = ("min_exposure_time_s", "max_exposure_time_s", "min_analog_gain", "max_analog_gain")


def _load_yaml(path: Optional[Union[str, Path]]) -> Mapping[str, Any]:
    """``path`` or ``config/camera.yaml`` (:func:`neural_ae_ros.config.load_yaml`) as
    ``{"camera": {...}, "limits": {...}}``. A ``ros__parameters`` file (``/**/camera_bridge``
    entry, the form of ``config/camera.yaml``) gives its flat parameters to both sections."""
    path = path if path is not None else config_path(DEFAULT_CAMERA_YAML)
    data = load_yaml(path)
    if is_ros_parameters_file(data):
        flat = ros_parameters(data, CAMERA_NODE_NAME, path)
        return {"camera": flat, "limits": {k: flat[k] for k in _LIMIT_KEYS if k in flat}}
    return data


@dataclass(frozen=True)
class FrameExposure:
    """The one record of an exposure: the settings a frame was captured with, or a command for one.

    The camera scheduler, the AE controller and the message conversions (``ros/convert.py``:
    ``AppliedExposure``, ``ExposureCommand``) all use this record.

    * ``exposure_time_s`` (s) and ``analog_gain`` (linear K, 1 at ISO 100); ``effective_exposure_s``
      is ``e = K * t`` (s, paper 000 Eq. 6).
    * ``frame_index``: the frame captured with these settings (-1 for a command not applied yet).
    * ``source_frame_index``: the frame the command was computed from (-1: the camera's initial
      settings, no command).
    * ``session_id``: the camera session the frame indices belong to (a restarted camera starts a
      new session and counts from 0 again).
    * ``command_age_frames``: on applied records, frames since the newest controller command was
      computed (``frame_index - source``; grows while no command arrives: the camera's watchdog).
    """

    exposure_time_s: float
    analog_gain: float
    frame_index: int = -1
    source_frame_index: int = -1
    method: str = "initial"
    clamped: bool = False
    session_id: int = 0
    command_age_frames: int = 0

    @property
    def effective_exposure_s(self) -> float:
        return float(self.exposure_time_s) * float(self.analog_gain)

    @property
    def from_command(self) -> bool:
        return self.source_frame_index >= 0


@dataclass(frozen=True)
class CameraLimits:
    """Hard limits of the camera's exposure time (s) and analog gain (linear K). No defaults:
    the numbers live in ``config/camera.yaml`` (``from_yaml``) and reach other nodes through the
    camera's ``camera_exposure_info``."""

    min_exposure_time_s: float
    max_exposure_time_s: float
    min_analog_gain: float
    max_analog_gain: float

    def __post_init__(self) -> None:
        problems = []
        for name in ("min_exposure_time_s", "max_exposure_time_s", "min_analog_gain", "max_analog_gain"):
            v = getattr(self, name)
            if not (_is_num(v) and math.isfinite(v) and v > 0):
                problems.append(f"{name}={v!r} must be a finite number > 0")
        if not problems:
            if self.min_exposure_time_s > self.max_exposure_time_s:
                problems.append(
                    f"min_exposure_time_s={self.min_exposure_time_s} > "
                    f"max_exposure_time_s={self.max_exposure_time_s}"
                )
            if self.min_analog_gain > self.max_analog_gain:
                problems.append(
                    f"min_analog_gain={self.min_analog_gain} > max_analog_gain={self.max_analog_gain}"
                )
            if self.min_analog_gain < 1.0:
                problems.append(
                    f"min_analog_gain={self.min_analog_gain} < 1 (K = 1 is ISO 100, the lowest "
                    "analog gain of the sensor model)"
                )
        if problems:
            raise ValueError("invalid CameraLimits: " + "; ".join(problems))

    @property
    def min_effective_exposure_s(self) -> float:
        return self.min_exposure_time_s * self.min_analog_gain

    @property
    def max_effective_exposure_s(self) -> float:
        return self.max_exposure_time_s * self.max_analog_gain

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CameraLimits":
        if "limits" in d and isinstance(d["limits"], Mapping):
            d = d["limits"]
        known = ("min_exposure_time_s", "max_exposure_time_s", "min_analog_gain", "max_analog_gain")
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown camera limit(s) {unknown}; expected {list(known)}")
        missing = [k for k in known if k not in d]
        if missing:
            raise ValueError(f"camera limits: missing {missing}")
        try:
            kw = {k: float(v) for k, v in d.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"camera limits must be numbers: {dict(d)!r}") from exc
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: Optional[Union[str, Path]] = None) -> "CameraLimits":
        """Read the ``limits:`` section of ``config/camera.yaml`` (or ``path``)."""
        return cls.from_dict(_load_yaml(path).get("limits", {}))


@dataclass(frozen=True)
class CameraConfig:
    """Everything in ``config/camera.yaml``: limits plus stream settings."""

    limits: CameraLimits
    frame_rate_hz: float
    actuation_latency_frames: int
    initial_exposure_time_s: float
    initial_analog_gain: float
    t_max_s: float

    def __post_init__(self) -> None:
        problems = []
        if not (_is_num(self.frame_rate_hz) and math.isfinite(self.frame_rate_hz) and self.frame_rate_hz > 0):
            problems.append(f"frame_rate_hz={self.frame_rate_hz!r} must be > 0")
        elif self.limits.max_exposure_time_s > 1.0 / self.frame_rate_hz:
            problems.append(
                f"max_exposure_time_s={self.limits.max_exposure_time_s} exceeds the frame period "
                f"1/frame_rate_hz={1.0 / self.frame_rate_hz:.6f} s"
            )
        lo, hi = ACTUATION_LATENCY_RANGE
        lat = self.actuation_latency_frames
        if not (isinstance(lat, int) and not isinstance(lat, bool) and lo <= lat <= hi):
            problems.append(f"actuation_latency_frames={lat!r} must be an integer in [{lo}, {hi}]")
        if not (_is_num(self.t_max_s) and math.isfinite(self.t_max_s) and self.t_max_s > 0):
            problems.append(f"t_max_s={self.t_max_s!r} must be > 0")
        lim = self.limits
        t0, k0 = self.initial_exposure_time_s, self.initial_analog_gain
        if not (_is_num(t0) and lim.min_exposure_time_s <= t0 <= lim.max_exposure_time_s):
            problems.append(
                f"initial_exposure_time_s={t0!r} outside [{lim.min_exposure_time_s}, {lim.max_exposure_time_s}]"
            )
        if not (_is_num(k0) and lim.min_analog_gain <= k0 <= lim.max_analog_gain):
            problems.append(
                f"initial_analog_gain={k0!r} outside [{lim.min_analog_gain}, {lim.max_analog_gain}]"
            )
        if problems:
            raise ValueError("invalid camera config: " + "; ".join(problems))

    @property
    def initial_effective_exposure_s(self) -> float:
        return self.initial_exposure_time_s * self.initial_analog_gain

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CameraConfig":
        """``camera:`` keys other than this class's fields belong to the ROS nodes (e.g.
        ``frame_id``) and are ignored here; the ``limits:`` section is checked strictly."""
        cam = dict(d.get("camera", {}) or {})
        known = {"frame_rate_hz", "actuation_latency_frames", "initial_exposure_time_s",
                 "initial_analog_gain", "t_max_s"}
        kw: dict = {}
        for k, v in cam.items():
            if k not in known:
                continue
            if k == "actuation_latency_frames":
                if not _is_num(v) or float(v) != int(v):
                    raise ValueError(f"actuation_latency_frames={v!r} must be an integer")
                kw[k] = int(v)
            else:
                kw[k] = float(v)
        missing = sorted(known - set(kw))
        if missing:
            raise ValueError(f"camera config: 'camera' section misses {missing}")
        return cls(limits=CameraLimits.from_dict(d.get("limits", {}) or {}), **kw)

    @classmethod
    def from_yaml(cls, path: Optional[Union[str, Path]] = None) -> "CameraConfig":
        return cls.from_dict(_load_yaml(path))


@dataclass(frozen=True)
class CameraExposureInfo:
    """What the camera announces about its exposure control (the ``camera_exposure_info``
    topic, latched): everyone else reads these instead of keeping copies.

    Limits (s, linear K), Eq. 6 ``t_max_s`` (s), black/white level (DN), the saturation level
    (DN: the lowest level at which a pixel can clip, the full well at the lowest gain or the white
    level), the actuation latency (a command from frame t lands on t + 1 + latency), the frame
    rate (Hz) and the session id the camera's frame indices belong to.
    """

    limits: CameraLimits
    t_max_s: float
    black_level_dn: float
    white_level_dn: int
    actuation_latency_frames: int
    frame_rate_hz: float
    saturation_level_dn: float
    session_id: int = 0

    @classmethod
    def from_config(cls, config: "CameraConfig", sensor, session_id: int = 0) -> "CameraExposureInfo":
        """``sensor``: :class:`~neural_ae_ros.imaging.sensor.SensorParams` (levels, full well, g1)."""
        black, white = float(sensor.black_level_dn), int(sensor.white_level_dn)
        saturation = min(float(white), black + sensor.full_well_e * sensor.g1_dn_per_e * config.limits.min_analog_gain)
        return cls(config.limits, config.t_max_s, black, white, config.actuation_latency_frames,
                   config.frame_rate_hz, saturation, int(session_id))

    @classmethod
    def from_yaml(cls, session_id: int = 0) -> "CameraExposureInfo":
        """``config/camera.yaml`` plus the sensor's black/white level (``config/sensor_*.yaml``)."""
        from neural_ae_ros.imaging.sensor import SensorParams

        return cls.from_config(CameraConfig.from_yaml(), SensorParams.from_yaml(), session_id)


#: Limits for simulated captures that must realise any requested exposure exactly (training and
#: evaluation shifts of paper 000 Section 5.3/6.1): Eq. 6 split with T_max = 15 ms, gain uncapped.
SIMULATION_LIMITS = CameraLimits(min_exposure_time_s=1e-9, max_exposure_time_s=0.015,
                                 min_analog_gain=1.0, max_analog_gain=1e6)


def split_exposure(
    effective_exposure_s: float, t_max_s: float, limits: CameraLimits
) -> Tuple[float, float, bool]:
    """Eq. 6: ``K = max(K_min, e / T), t = e / K``, then clamp to the limits.

    ``T = min(t_max_s, limits.max_exposure_time_s)`` (so a ``t_max_s`` beyond what the
    camera allows hands over to gain instead of being clipped). With ``K_min = 1`` this is
    exactly the paper's ``K = max(1, e / T_max)``.

    Returns ``(exposure_time_s, analog_gain, clamped)``; ``clamped`` is True when the
    requested effective exposure could not be realised within the limits (or was not a
    finite positive number, in which case the shortest exposure at minimum gain is used).
    """
    if not (_is_num(t_max_s) and math.isfinite(t_max_s) and t_max_s > 0):
        raise ValueError(f"t_max_s={t_max_s!r} must be a finite number > 0")
    e = float(effective_exposure_s)
    if not (math.isfinite(e) and e > 0):
        if e == math.inf:
            return limits.max_exposure_time_s, limits.max_analog_gain, True
        return limits.min_exposure_time_s, limits.min_analog_gain, True
    t_cap = min(t_max_s, limits.max_exposure_time_s)
    k = max(limits.min_analog_gain, e / t_cap)
    t = e / k
    k_c = min(max(k, limits.min_analog_gain), limits.max_analog_gain)
    t_c = min(max(t, limits.min_exposure_time_s), limits.max_exposure_time_s)
    if k_c != k:  # gain saturated: give the remainder back to the exposure time
        t_c = min(max(e / k_c, limits.min_exposure_time_s), limits.max_exposure_time_s)
    clamped = not math.isclose(t_c * k_c, e, rel_tol=1e-9)
    return t_c, k_c, clamped


def base_exposure_s(radiance_e_per_s, g1_dn_per_e: float, white_level_dn: float, analog_gain: float = 1.0) -> float:
    """Paper 000 Section 5.3 ``e_base = 0.5 M_white / (gamma * mean(I_hdr))`` in our units (s).

    With radiance ``phi = gamma * I_hdr`` in e-/s, the mean raw level ``g1 K t mean(phi)`` reaches
    half the white level at ``t = 0.5 M_white / (g1 K mean(phi))``. Accepts numpy or torch.
    """
    if hasattr(radiance_e_per_s, "double"):  # torch
        m = float(radiance_e_per_s.double().mean())
    else:
        import numpy as np

        m = float(np.mean(np.asarray(radiance_e_per_s, np.float64)))
    if not (math.isfinite(m) and m > 0):
        raise ValueError(f"radiance mean {m!r} must be > 0 (an all-black scene has no base exposure)")
    return 0.5 * float(white_level_dn) / (float(g1_dn_per_e) * float(analog_gain) * m)


def ema_log_exposure(previous_effective_exposure_s, adjustment_factor, mu: float = 0.9):
    """Eq. 5: ``e_t = e_{t-1} * u_t ** (1 - mu)`` (EMA of log exposure).

    Works on python floats, numpy arrays and torch tensors (differentiable). Python floats
    are validated: ``e_{t-1} > 0``, ``u > 0`` finite, ``0 <= mu <= 1``.
    """
    if not (_is_num(mu) and 0.0 <= mu <= 1.0):
        raise ValueError(f"mu={mu!r} must be in [0, 1]")
    if _is_num(previous_effective_exposure_s) and not (
        math.isfinite(previous_effective_exposure_s) and previous_effective_exposure_s > 0
    ):
        raise ValueError(f"previous_effective_exposure_s={previous_effective_exposure_s!r} must be finite > 0")
    if _is_num(adjustment_factor) and not (math.isfinite(adjustment_factor) and adjustment_factor > 0):
        raise ValueError(f"adjustment_factor={adjustment_factor!r} must be finite > 0")
    return previous_effective_exposure_s * adjustment_factor ** (1.0 - mu)


def sanitize_command(
    exposure_time_s: Any,
    analog_gain: Any,
    limits: CameraLimits,
    fallback_exposure_time_s: Optional[float] = None,
    fallback_analog_gain: Optional[float] = None,
) -> Tuple[float, float, List[str]]:
    """Turn any requested (t, K) into values the camera accepts, and say what was wrong.

    * not a number / NaN / absurd (t > 1000 s, K > 1e6) -> fallback (default: the
      shortest exposure time and the minimum gain, the safe "don't blind anything" choice)
    * +inf or above the maximum -> maximum; zero, negative or below the minimum -> minimum

    Returns ``(t, K, problems)`` with ``problems`` empty when the input was already valid.
    """
    problems: List[str] = []

    def fix(v: Any, name: str, lo: float, hi: float, absurd: float, fallback: Optional[float]) -> float:
        fb = lo if fallback is None else min(max(float(fallback), lo), hi)
        try:
            x = float(v)
        except (TypeError, ValueError):
            problems.append(f"{name}={v!r} is not a number; using {fb:g}")
            return fb
        if math.isnan(x):
            problems.append(f"{name}=nan; using {fb:g}")
            return fb
        if x == math.inf:
            problems.append(f"{name}=inf; using the maximum {hi:g}")
            return hi
        if x == -math.inf or x <= 0:
            problems.append(f"{name}={x:g} is not positive; using the minimum {lo:g}")
            return lo
        if x > absurd:
            problems.append(f"{name}={x:g} is absurdly large; using {fb:g}")
            return fb
        if x > hi:
            problems.append(f"{name}={x:g} above the maximum {hi:g}; clamped")
            return hi
        if x < lo:
            problems.append(f"{name}={x:g} below the minimum {lo:g}; clamped")
            return lo
        return x

    t = fix(exposure_time_s, "exposure_time_s", limits.min_exposure_time_s,
            limits.max_exposure_time_s, _ABSURD_EXPOSURE_S, fallback_exposure_time_s)
    k = fix(analog_gain, "analog_gain", limits.min_analog_gain, limits.max_analog_gain,
            _ABSURD_GAIN, fallback_analog_gain)
    return t, k, problems
