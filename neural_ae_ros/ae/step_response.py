"""Step response of an exposure controller without ROS: one scene, a brightness step, the camera
scheduler (actuation latency) and the sensor model (Eq. 1-3, clipping at the white level).

Used by the controller tests and ``benchmarks/bench_ae_step_response.py``; the scores come from
:mod:`neural_ae_ros.evaluation.loop_scores`, the same functions that score the ROS loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Dict, List, Optional

import numpy as np

from neural_ae_ros.evaluation.loop_scores import TraceRow, oscillation, step_events
from neural_ae_ros.imaging.camera import ExposureScheduler, SimulatedSensor
from neural_ae_ros.imaging.exposure import CameraExposureInfo, FrameExposure
from neural_ae_ros.imaging.sensor import SensorParams
from neural_ae_ros.scenes.illumination_events import IlluminationEvent

from .base import INPUT_HISTOGRAMS, INPUT_RAW, AutoExposureMethod, ExposureDecision, Observation, make_method
from .controller import ControllerSettings, ExposureController

__all__ = ["textured_scene", "StepRun", "run_step", "NoisyMeanMethod", "steady_dithering"]


def textured_scene(height: int = 96, width: int = 128, mean_e_per_s: float = 2.0e5, seed: int = 0,
                   log_sigma: float = 1.2) -> np.ndarray:
    """An RGGB radiance mosaic (e-/s): smooth log-normal shading times fine texture (a scene
    with ~3 decades between its darkest and brightest 1 %)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, log_sigma, (height // 8 + 1, width // 8 + 1))
    shading = np.kron(coarse, np.ones((8, 8)))[:height, :width]
    texture = rng.normal(0.0, 0.25, (height, width))
    phi = np.exp(shading + texture)
    return (phi * (mean_e_per_s / phi.mean())).astype(np.float32)


@dataclass
class StepRun:
    trace: List[TraceRow]
    event: IlluminationEvent
    step_event: Dict
    oscillation: Dict
    target_level_dn: Optional[float]
    modes: List[str]  # the controller's decision mode per frame (``ExposureController.last_info``)


def run_step(method: str = "average", step_ev: float = 10.0, latency: int = 2, frames: int = 80,
             step_frame: int = 40, settings: Optional[ControllerSettings] = None,
             scene: Optional[np.ndarray] = None, seed: int = 0, noise: bool = True,
             camera: Optional[CameraExposureInfo] = None, dark_before_ev: Optional[float] = None) -> StepRun:
    """Run ``frames`` frames; at ``step_frame`` the scene radiance is multiplied by
    ``2 ** step_ev`` (negative: darker). The scene starts at a brightness the camera can expose
    both before and after the step (the initial exposure is the one the method would settle to
    only after a few frames). ``dark_before_ev``: instead, before the step the scene is this many
    EV darker than the camera can expose at its longest exposure and highest gain (a tunnel).
    Returns the trace and the scores of the step."""
    sensor_params = SensorParams.from_yaml()
    cam = camera or CameraExposureInfo.from_yaml()
    cam = replace(cam, actuation_latency_frames=int(latency))
    phi = textured_scene(seed=seed) if scene is None else scene
    # brightness: the mid-range level at the geometric middle of the exposure range after and before
    lim = cam.limits
    e_mid = math.sqrt(lim.min_effective_exposure_s * lim.max_effective_exposure_s)
    e_before = e_mid * 2.0 ** (step_ev / 2.0)
    if dark_before_ev is not None:
        e_before = lim.max_effective_exposure_s * 2.0 ** dark_before_ev
    half = 0.5 * (sensor_params.white_level_dn - sensor_params.black_level_dn)
    phi = phi * (half / (sensor_params.g1_dn_per_e * e_before * float(phi.mean())))
    e_start = min(e_before, lim.max_effective_exposure_s)
    scheduler = ExposureScheduler(lim, latency, min(e_start, lim.max_exposure_time_s),
                                  max(1.0, e_start / lim.max_exposure_time_s), session_id=cam.session_id)
    sensor = SimulatedSensor(sensor_params, seed=seed, simulate_noise=noise)
    ae = make_method(method)
    ctrl = ExposureController(ae, cam, settings)
    keep_raw = INPUT_RAW in ae.inputs
    trace: List[TraceRow] = []
    modes: List[str] = []
    for f in range(frames):
        exposure = scheduler.settings_for(f)
        radiance = phi * (2.0 ** step_ev if f >= step_frame else 1.0)
        raw = sensor.capture(radiance, exposure)
        obs = Observation.from_raw(raw, exposure, sensor_params.white_level_dn, sensor_params.black_level_dn,
                                   keep_raw=keep_raw)
        trace.append(TraceRow(f, exposure.exposure_time_s, exposure.analog_gain, float(obs.mean_level_dn),
                              exposure.from_command, exposure.source_frame_index))
        scheduler.submit(ctrl.update(obs))
        modes.append(ctrl.last_info["mode"])
    event = IlluminationEvent(step_frame, 2.0 ** step_ev, f"step {step_ev:+g} EV")
    black = sensor_params.black_level_dn
    target = (black + ae.target_fraction * (sensor_params.white_level_dn - black)
              if hasattr(ae, "target_fraction") else None)
    rec = step_events(trace, [event], target, black, limits=lim)[0]
    osc = oscillation([r for r in trace if r.frame_index < step_frame], guard=10)
    return StepRun(trace, event, rec, osc, target, modes)


class NoisyMeanMethod(AutoExposureMethod):
    """Brings the mean level to mid-range, off by seeded Gaussian noise of ``sigma_ev`` (EV) per
    decision: a stand-in for a network deciding from noisy frames (not registered)."""

    name = "noisy_mean"
    inputs = frozenset({INPUT_HISTOGRAMS})

    def __init__(self, sigma_ev: float, seed: int = 0) -> None:
        self.sigma_ev, self.rng = float(sigma_ev), np.random.default_rng(seed)

    def next_exposure(self, obs: Observation) -> ExposureDecision:
        mid = 0.5 * (obs.white_level_dn - obs.black_level_dn)
        u = mid / (obs.mean_level_dn - obs.black_level_dn) * 2.0 ** self.rng.normal(0.0, self.sigma_ev)
        return ExposureDecision(u)


def steady_dithering(sigma_ev: float, settings: Optional[ControllerSettings] = None, frames: int = 1020,
                     seed: int = 0, guard: int = 20) -> Dict:
    """A steady scene at mid-range under :class:`NoisyMeanMethod`, each command applied on the next
    frame, scored by :func:`~neural_ae_ros.evaluation.loop_scores.oscillation` after the first
    ``guard`` frames (``sign_changes``, ``sign_changes_per_100_frames``, ``frames_scored``, ...),
    plus ``worst_ev``, the largest distance (EV) of the exposure from the right one after ``guard``."""
    cam = CameraExposureInfo.from_yaml()
    ctrl = ExposureController(NoisyMeanMethod(sigma_ev, seed), cam, settings)
    black, white = 64.0, 4095.0
    right_s = 0.004
    dn_per_s = 0.5 * (white - black) / right_s  # the scene: mid-range at 4 ms
    exposure = FrameExposure(right_s, 1.0, 0, -1)
    trace: List[TraceRow] = []
    for i in range(frames):
        level = black + min(dn_per_s * exposure.effective_exposure_s, white - black)
        trace.append(TraceRow(i, exposure.exposure_time_s, exposure.analog_gain, level, i > 0,
                              exposure.source_frame_index))
        cmd = ctrl.update(Observation(replace(exposure, frame_index=i), mean_level_dn=level,
                                      white_level_dn=white, black_level_dn=black))
        exposure = replace(cmd, source_frame_index=i)
    worst = max(abs(math.log2(r.effective_exposure_s / right_s)) for r in trace[guard:])
    return {**oscillation(trace, guard=guard), "worst_ev": worst}
