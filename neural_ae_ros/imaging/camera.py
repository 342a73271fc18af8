"""The simulated camera behind the camera bridge: exposure scheduling with actuation latency,
clamping to the camera's limits, and capture through the sensor model. No ROS here.

Latency rule (like a real sensor's register pipeline): a command computed from frame ``s`` is
applied to frame ``s + 1 + actuation_latency_frames``, or to the first frame captured after it
arrives if it arrives later than that (then it counts as late). Until the first command, the
initial settings hold.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional

import numpy as np
import torch

from neural_ae_ros.imaging.exposure import ACTUATION_LATENCY_RANGE, CameraLimits, FrameExposure, sanitize_command
from neural_ae_ros.imaging.sensor import SensorParams, capture_realtime

__all__ = ["ExposureScheduler", "CommandRefusal", "SimulatedSensor"]


@dataclass(frozen=True)
class CommandRefusal:
    """Why a command was not scheduled. ``cause`` is a short key for throttled logging
    (``session``, ``ahead``, ``stale``, ``negative``); ``message`` names the frames."""

    cause: str
    message: str


class ExposureScheduler:
    """Holds the settings in force and the commands waiting for their frame (no ROS).

    Commands are :class:`FrameExposure` records. A command is refused (and counted per cause)
    when it belongs to another camera session, was computed from a frame the camera has not
    captured yet (``ahead``: e.g. index 1e6 or an old session's counter), or from a frame older
    than the command in force (``stale``). At most ``max_pending`` commands wait; beyond that the
    oldest is dropped (counted in ``dropped_pending``).
    """

    def __init__(self, limits: CameraLimits, actuation_latency_frames: int,
                 initial_exposure_time_s: float, initial_analog_gain: float,
                 session_id: int = 0, max_pending: int = 16) -> None:
        lo, hi = ACTUATION_LATENCY_RANGE
        if not lo <= int(actuation_latency_frames) <= hi:
            raise ValueError(f"actuation_latency_frames={actuation_latency_frames} must be in {lo}..{hi}")
        if int(max_pending) < 1:
            raise ValueError(f"max_pending={max_pending} must be >= 1")
        self.limits = limits
        self.actuation_latency_frames = int(actuation_latency_frames)
        self.session_id = int(session_id)
        self.max_pending = int(max_pending)
        t, k, problems = sanitize_command(initial_exposure_time_s, initial_analog_gain, limits)
        self._current = FrameExposure(t, k, -1, -1, "initial", bool(problems), self.session_id)
        self._pending: List[FrameExposure] = []
        self.next_frame_index = 0  # the frame settings_for() will be asked for next
        self.late_commands = 0
        self.dropped_pending = 0
        self.refused = {"session": 0, "ahead": 0, "stale": 0, "negative": 0}
        self.newest_source_frame_index = -1  # newest accepted command's source frame
        self.newest_controller_source_frame_index = -1  # the same, AE controller commands only

    @property
    def in_force(self) -> FrameExposure:
        return self._current

    @property
    def pending(self) -> List[FrameExposure]:
        return list(self._pending)

    def due_frame_index(self, command: FrameExposure) -> int:
        """A command computed from frame ``s`` lands on ``s + 1 + actuation_latency_frames``."""
        return command.source_frame_index + 1 + self.actuation_latency_frames

    def submit(self, command: FrameExposure, from_controller: bool = True
               ) -> "tuple[List[str], Optional[CommandRefusal]]":
        """Queue ``command``. Returns ``(problems, refusal)``: ``problems`` lists values that were
        sanitised (the command still counts), ``refusal`` is set when it was not scheduled.

        Session 0 is "not bound to a session" (tools); its index is checked like any other.
        ``from_controller`` False (the camera's own fallback AE) does not reset the age of the
        newest controller command (``command_age_frames``, the watchdog's input)."""
        src = int(command.source_frame_index)
        if command.session_id not in (0, self.session_id):
            return self._refuse("session", f"command from frame {src} of camera session {command.session_id}; "
                                           f"this camera is session {self.session_id}")
        if src < 0:
            return self._refuse("negative", f"source_frame_index={src} is negative")
        if src >= self.next_frame_index:
            return self._refuse("ahead", f"command from frame {src}, but the camera has captured only up to "
                                         f"frame {self.next_frame_index - 1}")
        newest = max(self._current.source_frame_index, self.newest_source_frame_index)
        if src < self._current.source_frame_index:
            return self._refuse("stale", f"command from frame {src} is older than the one in force "
                                         f"(from frame {self._current.source_frame_index})")
        t, k, problems = sanitize_command(command.exposure_time_s, command.analog_gain, self.limits,
                                          fallback_exposure_time_s=self._current.exposure_time_s,
                                          fallback_analog_gain=self._current.analog_gain)
        self._pending.append(replace(command, exposure_time_s=t, analog_gain=k, frame_index=-1,
                                     clamped=bool(command.clamped or problems), session_id=self.session_id))
        if len(self._pending) > self.max_pending:
            self._pending.sort(key=lambda c: c.source_frame_index)
            del self._pending[0]
            self.dropped_pending += 1
        self.newest_source_frame_index = max(newest, src)
        if from_controller:
            self.newest_controller_source_frame_index = max(self.newest_controller_source_frame_index, src)
        return problems, None

    def _refuse(self, cause: str, message: str):
        self.refused[cause] += 1
        return [], CommandRefusal(cause, message + "; command refused")

    def command_expected(self, frame_index: int) -> bool:
        """True if a command computed from frame ``frame_index - 1 - latency`` is still missing."""
        source = frame_index - 1 - self.actuation_latency_frames
        return source >= 0 and self.newest_source_frame_index < source

    def settings_for(self, frame_index: int) -> FrameExposure:
        """Settings for capturing ``frame_index`` (call once per frame, in order)."""
        ready = [c for c in self._pending if self.due_frame_index(c) <= frame_index]
        if ready:
            newest = max(ready, key=lambda c: c.source_frame_index)
            if newest.source_frame_index >= self._current.source_frame_index:
                if self.due_frame_index(newest) < frame_index:
                    self.late_commands += 1
                self._current = newest
            self._pending = [c for c in self._pending if self.due_frame_index(c) > frame_index]
        self.next_frame_index = max(self.next_frame_index, int(frame_index) + 1)
        age = frame_index - self.newest_controller_source_frame_index
        return replace(self._current, frame_index=int(frame_index), command_age_frames=int(age))


class SimulatedSensor:
    """Eq. 1-3 capture of a radiance frame into a 12-bit RGGB mosaic (uint16 DN), at camera
    rate: :func:`neural_ae_ros.imaging.sensor.capture_realtime` (one summed Gaussian per pixel)."""

    def __init__(self, params: SensorParams, seed: int = 0, simulate_noise: bool = True,
                 reuse_output_buffer: bool = False) -> None:
        """``reuse_output_buffer``: every :meth:`capture` without ``out`` returns the same
        array, overwritten by the next frame (a camera that copies the frame into its message
        before the next capture saves a 4.6 MB allocation per 1920 x 1200 frame)."""
        self.params = params
        self.simulate_noise = simulate_noise
        self._generator = torch.Generator().manual_seed(int(seed))
        self._mosaic = None  # reused RGGB sampling buffer for (3, H, W) input
        self._reuse = bool(reuse_output_buffer)
        self._out: Optional[np.ndarray] = None

    def capture(self, radiance_e_per_s: np.ndarray, settings: FrameExposure,
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
        if out is None and self._reuse:
            if self._out is None or self._out.shape != rad.shape:
                self._out = np.empty(rad.shape, np.uint16)
            out = self._out
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
