"""The simulated camera behind the camera bridge: exposure scheduling with actuation latency,
clamping to the camera's limits, and capture through the sensor model. No ROS here.

Latency rule (like a real sensor's register pipeline): a command computed from frame ``s`` is
applied to frame ``s + 1 + actuation_latency_frames``, or to the first frame captured after it
arrives if it arrives later than that (then it counts as late). Until the first command, the
initial settings hold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from neural_ae_ros.imaging.exposure import CameraLimits, sanitize_command
from neural_ae_ros.imaging.sensor import SensorParams, capture_realtime


@dataclass(frozen=True)
class AppliedSettings:
    """Exposure applied to one frame (seconds, linear gain)."""

    frame_index: int
    exposure_time_s: float
    analog_gain: float
    from_command: bool
    command_source_frame_index: int
    command_method: str
    clamped: bool

    @property
    def effective_exposure_s(self) -> float:
        return self.exposure_time_s * self.analog_gain


@dataclass
class _Pending:
    source_frame_index: int
    due_frame_index: int
    exposure_time_s: float
    analog_gain: float
    method: str
    clamped: bool


class ExposureScheduler:
    """Holds the settings in force and the commands waiting for their frame."""

    def __init__(self, limits: CameraLimits, actuation_latency_frames: int,
                 initial_exposure_time_s: float, initial_analog_gain: float) -> None:
        if not 0 <= int(actuation_latency_frames) <= 5:
            raise ValueError(f"actuation_latency_frames={actuation_latency_frames} must be in 0..5")
        self.limits = limits
        self.actuation_latency_frames = int(actuation_latency_frames)
        t, k, problems = sanitize_command(initial_exposure_time_s, initial_analog_gain, limits)
        self._current = AppliedSettings(-1, t, k, False, 0, "initial", bool(problems))
        self._pending: List[_Pending] = []
        self.late_commands = 0
        self.rejected_commands = 0
        self.newest_source_frame_index = -1

    def submit(self, source_frame_index: int, exposure_time_s: float, analog_gain: float,
               method: str = "") -> List[str]:
        """Queue a command; returns the problems found (empty if none). Bad values are clamped."""
        t, k, problems = sanitize_command(exposure_time_s, analog_gain, self.limits,
                                          fallback_exposure_time_s=self._current.exposure_time_s,
                                          fallback_analog_gain=self._current.analog_gain)
        if source_frame_index < 0:
            problems.append(f"source_frame_index={source_frame_index} is negative; command dropped")
            self.rejected_commands += 1
            return problems
        due = source_frame_index + 1 + self.actuation_latency_frames
        self.newest_source_frame_index = max(self.newest_source_frame_index, int(source_frame_index))
        self._pending.append(_Pending(source_frame_index, due, t, k, method, bool(problems)))
        return problems

    def command_expected(self, frame_index: int) -> bool:
        """True if a command computed from frame ``frame_index - 1 - latency`` is still missing."""
        source = frame_index - 1 - self.actuation_latency_frames
        return source >= 0 and self.newest_source_frame_index < source

    def settings_for(self, frame_index: int) -> AppliedSettings:
        """Settings for capturing ``frame_index`` (call once per frame, in order)."""
        ready = [p for p in self._pending if p.due_frame_index <= frame_index]
        if ready:
            newest = max(ready, key=lambda p: p.source_frame_index)
            if newest.source_frame_index >= self._current.command_source_frame_index or not self._current.from_command:
                if newest.due_frame_index < frame_index:
                    self.late_commands += 1
                self._current = AppliedSettings(frame_index, newest.exposure_time_s, newest.analog_gain, True,
                                                newest.source_frame_index, newest.method, newest.clamped)
            self._pending = [p for p in self._pending if p.due_frame_index > frame_index]
        cur = self._current
        return AppliedSettings(frame_index, cur.exposure_time_s, cur.analog_gain, cur.from_command,
                               cur.command_source_frame_index, cur.command_method, cur.clamped)


class SimulatedSensor:
    """Eq. 1-3 capture of a radiance frame into a 12-bit RGGB mosaic (uint16 DN), at camera
    rate: :func:`neural_ae_ros.imaging.sensor.capture_realtime` (one summed Gaussian per pixel)."""

    def __init__(self, params: SensorParams, seed: int = 0, simulate_noise: bool = True) -> None:
        self.params = params
        self.simulate_noise = simulate_noise
        self._generator = torch.Generator().manual_seed(int(seed))
        self._mosaic = None  # reused RGGB sampling buffer for (3, H, W) input

    def capture(self, radiance_e_per_s: np.ndarray, settings: AppliedSettings,
                out: Optional[np.ndarray] = None) -> np.ndarray:
        """``radiance_e_per_s``: (3, H, W) linear RGB or (H, W) RGGB mosaic, e-/s.

        ``out``: optional uint16 (H, W) array to write the frame into (reused per frame by
        the camera bridge); a new array otherwise.
        """
        rad = np.asarray(radiance_e_per_s)
        if rad.ndim == 3:
            rad = self._bayer(rad)
        if rad.ndim != 2:
            raise ValueError(f"radiance must be (3, H, W) or (H, W), got {tuple(radiance_e_per_s.shape)}")
        return capture_realtime(rad, settings.exposure_time_s, settings.analog_gain, self.params,
                                generator=self._generator, noise=self.simulate_noise, out=out)

    def _bayer(self, rgb: np.ndarray) -> np.ndarray:
        """RGGB sampling of (3, H, W) into a reused float32 buffer (as ``bayer_sample_rggb``)."""
        if rgb.shape[0] != 3:
            raise ValueError(f"radiance must be (3, H, W) or (H, W), got {tuple(rgb.shape)}")
        shape = rgb.shape[1:]
        if self._mosaic is None or self._mosaic.shape != shape:
            self._mosaic = np.empty(shape, np.float32)
        m = self._mosaic
        m[...] = rgb[1]
        m[0::2, 0::2] = rgb[0, 0::2, 0::2]
        m[1::2, 1::2] = rgb[2, 1::2, 1::2]
        return m
