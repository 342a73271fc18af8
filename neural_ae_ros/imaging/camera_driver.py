"""Exposure control of a real camera through its ROS driver's parameters (no ROS import).

A driver such as spinnaker_camera_driver takes exposure settings as node parameters in its own
units (``exposure_time`` in microseconds, ``gain`` in dB: ros-drivers/flir_camera_driver,
``spinnaker_camera_driver/config/blackfly_s.yaml``) and may report the settings each frame was
captured with in a metadata message (``flir_camera_msgs/ImageMetaData``: ``exposure_time`` in us,
``gain`` in dB). This module holds the two pieces the camera bridge needs for it:

* :class:`DriverUnits`: our (t in s, linear gain K, paper 000 Eq. 2/6) <-> the driver's units,
  gain in dB is ``20 log10 K``.
* :class:`SentCommands`: the commands sent to the driver, which of them a frame's metadata shows
  (so the applied record names the command in force), and which set the driver dropped (sent
  long enough ago, never seen in the metadata: send it again).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Optional

from .exposure import CameraLimits, FrameExposure

#: Exposure time units a driver may use: factor to seconds.
EXPOSURE_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
#: Gain units: ``dB`` (20 log10 K) or ``linear`` (K itself).
GAIN_UNITS = ("dB", "linear")
#: Metadata matches a command when the exposure time is within this fraction or one driver unit
#: (drivers report integer microseconds) and the gain within this many dB (float32 rounding).
EXPOSURE_MATCH_FRACTION = 0.01
GAIN_MATCH_DB = 0.05


@dataclass(frozen=True)
class DriverUnits:
    """Units of the driver's exposure time and gain parameters (and metadata fields)."""

    exposure_unit: str = "us"
    gain_unit: str = "dB"

    def __post_init__(self) -> None:
        if self.exposure_unit not in EXPOSURE_UNITS:
            raise ValueError(f"exposure unit {self.exposure_unit!r} is not one of {', '.join(EXPOSURE_UNITS)}")
        if self.gain_unit not in GAIN_UNITS:
            raise ValueError(f"gain unit {self.gain_unit!r} is not one of {', '.join(GAIN_UNITS)}")

    def exposure_to_driver(self, exposure_time_s: float) -> float:
        return float(exposure_time_s) / EXPOSURE_UNITS[self.exposure_unit]

    def exposure_from_driver(self, value: float) -> float:
        """Seconds."""
        return float(value) * EXPOSURE_UNITS[self.exposure_unit]

    def gain_to_driver(self, analog_gain: float) -> float:
        return 20.0 * math.log10(float(analog_gain)) if self.gain_unit == "dB" else float(analog_gain)

    def gain_from_driver(self, value: float) -> float:
        """Linear K."""
        return 10.0 ** (float(value) / 20.0) if self.gain_unit == "dB" else float(value)


@dataclass
class _Sent:
    command: FrameExposure  # clamped settings, source frame and method of the AE command
    sent_at_frame: int       # the camera's frame counter when the set was sent
    seen: bool = False       # some frame's metadata showed it
    resends: int = 0


class SentCommands:
    """Commands sent to the driver, newest last (at most ``keep``)."""

    def __init__(self, units: DriverUnits, keep: int = 32) -> None:
        self.units = units
        self.keep = int(keep)
        self._sent: List[_Sent] = []
        self.resent = 0

    def sent(self, command: FrameExposure, frame_index: int) -> None:
        self._sent.append(_Sent(command, int(frame_index)))
        del self._sent[:-self.keep]

    def _matches(self, command: FrameExposure, exposure_time_s: float, analog_gain: float) -> bool:
        tolerance_s = max(EXPOSURE_MATCH_FRACTION * command.exposure_time_s, EXPOSURE_UNITS[self.units.exposure_unit])
        gain_db = abs(20.0 * math.log10(analog_gain / command.analog_gain))
        return abs(exposure_time_s - command.exposure_time_s) <= tolerance_s and gain_db <= GAIN_MATCH_DB

    def match(self, exposure_time_s: float, analog_gain: float, frame_index: int) -> Optional[FrameExposure]:
        """The newest command sent before frame ``frame_index`` was processed that a frame captured with (t, K)
        shows, else None. Older sends are then final (the driver moved past them)."""
        for k in range(len(self._sent) - 1, -1, -1):
            entry = self._sent[k]
            if entry.sent_at_frame <= frame_index and self._matches(entry.command, exposure_time_s, analog_gain):
                entry.seen = True
                for older in self._sent[:k]:
                    older.seen = True
                return replace(entry.command)
        return None

    def due_for_resend(self, frame_index: int, latency_frames: int, resend_after_frames: int
                       ) -> Optional[FrameExposure]:
        """The newest command, when it was sent more than ``latency_frames + resend_after_frames``
        frames ago and no frame since showed it (the driver ignored the set). Counts the resend
        and restarts its clock."""
        if not self._sent or resend_after_frames <= 0:
            return None
        newest = self._sent[-1]
        if newest.seen or frame_index - newest.sent_at_frame <= latency_frames + resend_after_frames:
            return None
        newest.sent_at_frame = int(frame_index)
        newest.resends += 1
        self.resent += 1
        return newest.command


def tighten_limits(limits: CameraLimits, units: DriverUnits, exposure_range=None, gain_range=None) -> CameraLimits:
    """``limits`` narrowed to the driver's declared ranges (in driver units; None: not declared).
    A driver range that does not overlap the limits raises ``ValueError`` saying both."""
    t_lo, t_hi = limits.min_exposure_time_s, limits.max_exposure_time_s
    k_lo, k_hi = limits.min_analog_gain, limits.max_analog_gain
    if exposure_range is not None:
        t_lo = max(t_lo, units.exposure_from_driver(exposure_range[0]))
        t_hi = min(t_hi, units.exposure_from_driver(exposure_range[1]))
    if gain_range is not None:
        k_lo = max(k_lo, units.gain_from_driver(gain_range[0]))
        k_hi = min(k_hi, units.gain_from_driver(gain_range[1]))
    if t_lo > t_hi or k_lo > k_hi:
        raise ValueError(f"the driver's ranges (exposure {exposure_range} {units.exposure_unit}, gain {gain_range} "
                         f"{units.gain_unit}) do not overlap the camera limits {limits}")
    return CameraLimits(t_lo, t_hi, k_lo, k_hi)
