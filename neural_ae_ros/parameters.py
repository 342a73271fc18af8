"""Every node parameter declared once: type, range, read-only flag, description, default.

Defaults come from the YAML files in ``config/`` (one file per concern); ranges and meaning live
here. The ROS layer (``neural_ae_ros.ros.params``) turns a spec into ``ParameterDescriptor``s
and an on-set callback that refuses bad values with a reason; the command line and the tests
use the same specs through :func:`validate`. No rclpy import here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from neural_ae_ros.config import load_config

__all__ = ["ParamSpec", "NODE_PARAMETERS", "node_defaults", "validate", "AE_METHODS"]

from neural_ae_ros.ae.base import available_methods, method_class
from neural_ae_ros.ae.controller import SMOOTHING_MODES

#: Method names as users type them (docs/design.md), from the AE method registry.
AE_METHODS = tuple(available_methods())


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter.

    ``config`` is ``(file, section, key)`` in ``config/`` that holds the default; ``default`` is
    used when ``config`` is None. ``low``/``high`` bound numbers (inclusive); ``choices`` bounds
    strings; ``read_only`` parameters can only be set at start-up.
    """

    name: str
    type: type
    description: str
    config: Optional[Tuple[str, str, str]] = None
    default: Any = None
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Optional[Sequence[str]] = None
    read_only: bool = False
    multiple_of: Optional[int] = None


def _cam(key):
    return ("camera.yaml", "camera", key)


def _lim(key):
    return ("camera.yaml", "limits", key)


def _src(key):
    return ("scene_source.yaml", "source", key)


def _ae(key):
    return ("ae.yaml", "ae", key)


def _pers(key):
    return ("personalization.yaml", "personalization", key)


def _wd(key):
    return ("camera.yaml", "watchdog", key)


def _method_parameters() -> List["ParamSpec"]:
    """Each registered AE method's own constants (``MethodParameter``), defaults in ae.yaml."""
    out: Dict[str, ParamSpec] = {}
    for name in AE_METHODS:
        for p in method_class(name).parameters:
            spec = ParamSpec(p.name, p.type, f"[{name}] {p.description}", _ae(p.name), low=p.low, high=p.high)
            if p.name in out and out[p.name] != spec:
                raise ValueError(f"AE parameter {p.name!r} declared differently by two methods")
            out[p.name] = spec
    return list(out.values())


#: The camera's hard limits (config/camera.yaml 'limits'): read-only wherever they are declared.
CAMERA_LIMIT_PARAMETERS = (
    ParamSpec("min_exposure_time_s", float, "Camera limit: shortest exposure time (s).",
              _lim("min_exposure_time_s"), low=1e-7, high=1.0, read_only=True),
    ParamSpec("max_exposure_time_s", float, "Camera limit: longest exposure time (s).",
              _lim("max_exposure_time_s"), low=1e-6, high=1.0, read_only=True),
    ParamSpec("min_analog_gain", float, "Camera limit: lowest analog gain K.", _lim("min_analog_gain"),
              low=1.0, high=1000.0, read_only=True),
    ParamSpec("max_analog_gain", float, "Camera limit: highest analog gain K.", _lim("max_analog_gain"),
              low=1.0, high=1000.0, read_only=True),
)

NODE_PARAMETERS: Dict[str, List[ParamSpec]] = {
    "camera_bridge": [
        ParamSpec("frame_rate_hz", float, "Frames per second produced (Hz).", _cam("frame_rate_hz"), low=1.0, high=120.0),
        ParamSpec("actuation_latency_frames", int,
                  "Frames between the frame a command was computed from and the first frame after it that "
                  "uses it: a command from frame t is applied to frame t + 1 + latency.",
                  _cam("actuation_latency_frames"), low=0, high=5),
        ParamSpec("initial_exposure_time_s", float, "Exposure time before the first command (s).",
                  _cam("initial_exposure_time_s"), low=1e-6, high=1.0),
        ParamSpec("initial_analog_gain", float, "Analog gain K before the first command (1 = ISO 100).",
                  _cam("initial_analog_gain"), low=1.0, high=1000.0),
        *CAMERA_LIMIT_PARAMETERS,
        ParamSpec("source", str, "Radiance source: 'drive' (built-in drive) or 'bag' (scene recording).",
                  _src("source"), choices=("drive", "bag"), read_only=True),
        ParamSpec("drive", str, "Built-in drive name (source 'drive').", _src("drive"), read_only=True),
        ParamSpec("bag_path", str, "Scene recording to replay (source 'bag').", _src("bag_path"), read_only=True),
        ParamSpec("seed", int, "Seed of the built-in drive.", _src("seed"), low=0, high=2**31 - 1, read_only=True),
        ParamSpec("width", int, "Image width (pixels, even).", _src("width"), low=64, high=4096, read_only=True,
                  multiple_of=2),
        ParamSpec("height", int, "Image height (pixels, even).", _src("height"), low=64, high=4096, read_only=True,
                  multiple_of=2),
        ParamSpec("max_frames", int, "Stop after this many frames (0: run until shut down).", _src("max_frames"),
                  low=0, high=10**9),
        ParamSpec("simulate_noise", bool, "Simulate sensor noise (Eq. 1-2); off gives the noiseless mean.",
                  _cam("simulate_noise")),
        ParamSpec("frame_id", str, "frame_id of published images.", _cam("frame_id"), read_only=True),
        ParamSpec("lockstep_timeout_s", float,
                  "0: free-running like a real camera (a late command lands on a later frame). > 0: before "
                  "capturing frame f, wait up to this long for the command from frame f - 1 - latency, so "
                  "every command lands exactly on its frame (deterministic simulation and A/B runs).",
                  _cam("lockstep_timeout_s"), low=0.0, high=10.0),
        ParamSpec("wait_for_image_subscribers", int,
                  "Hold the first frame until image_raw has this many subscribers (0: start at once).",
                  _cam("wait_for_image_subscribers"), low=0, high=64, read_only=True),
        ParamSpec("wait_for_exposure_subscribers", int,
                  "Hold the first frame until exposure has this many subscribers (0: start at once).",
                  _cam("wait_for_exposure_subscribers"), low=0, high=64, read_only=True),
        ParamSpec("wait_timeout_s", float, "Longest wait for those subscribers before starting anyway (s).",
                  _cam("wait_timeout_s"), low=0.0, high=600.0, read_only=True),
        ParamSpec("t_max_s", float, "Eq. 6 T_max announced to the AE controller (s).", _cam("t_max_s"),
                  low=1e-5, high=1.0, read_only=True),
        ParamSpec("command_age_warn_frames", int,
                  "Watchdog: WARN on /diagnostics when the newest command is this many frames old.",
                  _wd("command_age_warn_frames"), low=1, high=10**6),
        ParamSpec("command_age_error_frames", int, "Watchdog: ERROR at this command age (frames).",
                  _wd("command_age_error_frames"), low=1, high=10**6),
        ParamSpec("fallback_after_frames", int,
                  "Watchdog: at this command age the camera runs its built-in mean-level AE until commands return "
                  "(0: never).", _wd("fallback_after_frames"), low=0, high=10**6),
    ],
    "histogram_node": [
        ParamSpec("grid_sizes", str, "Tile grids of the histogram stack, comma separated (paper 000: 1,3,7).",
                  ("histograms.yaml", "histograms", "grid_sizes"), read_only=True),
        ParamSpec("num_bins", int, "Bins per histogram (paper 000: 256).", ("histograms.yaml", "histograms", "num_bins"),
                  low=256, high=256, read_only=True),
    ],
    "isp_node": [
        ParamSpec("autostart", bool, "Configure and activate at start (no lifecycle manager needed); false: wait "
                  "for configure/activate from a lifecycle manager.", default=True, read_only=True),
        ParamSpec("demosaic", str, "Demosaicing method.", ("isp.yaml", "isp", "demosaic"), choices=("bilinear", "malvar")),
        ParamSpec("binning", bool, "2x2 quad binning to half resolution instead of demosaicing (fast path).",
                  ("isp.yaml", "isp", "binning")),
        ParamSpec("digital_gain", float, "Linear gain before the tone curve.", ("isp.yaml", "isp", "digital_gain"),
                  low=0.01, high=100.0),
        ParamSpec("gamma", float, "Tone curve exponent (2.4: sRGB).", ("isp.yaml", "isp", "gamma"), low=1.0, high=4.0),
    ],
    "detector_node": [
        ParamSpec("autostart", bool, "Configure and activate at start (no lifecycle manager needed); false: wait "
                  "for configure/activate from a lifecycle manager.", default=True, read_only=True),
        ParamSpec("checkpoint", str, "Detector checkpoint (.pt with its .json); empty: the shipped default.",
                  ("detector.yaml", "detector", "checkpoint")),
        ParamSpec("score_threshold", float, "Detections below this score are not published.",
                  ("detector.yaml", "detector", "score_threshold"), low=0.0, high=1.0),
        ParamSpec("nms_iou", float, "IoU above which lower-scoring boxes of a class are suppressed.",
                  ("detector.yaml", "detector", "nms_iou"), low=0.05, high=1.0),
        ParamSpec("max_detections", int, "At most this many detections per frame.",
                  ("detector.yaml", "detector", "max_detections"), low=1, high=1000),
    ],
    "personalization_node": [
        ParamSpec("profile_dir", str, "Directory of the per-profile weights (<profile>.pt + .json); empty: "
                  "$ROS_HOME/neural_ae_ros/profiles.", _pers("profile_dir"), read_only=True),
        ParamSpec("base_weights", str, "attention_rl weights every profile starts from; empty: the shipped ones.",
                  _pers("base_weights"), read_only=True),
        ParamSpec("active_profile", str, "Profile whose fine-tuned weights are announced to ae_controller "
                  "(1-64 of A-Z a-z 0-9 _ -).", _pers("active_profile")),
        ParamSpec("frames_held", int, "Recent image_rgb frames remembered for feedback and map requests.",
                  _pers("frames_held"), low=1, high=100000, read_only=True),
        ParamSpec("batch_size", int, "Accepted labels of one profile per fine-tuning batch.", _pers("batch_size"),
                  low=1, high=4096),
        ParamSpec("max_feedback_per_minute", float, "Labels one giver may send per minute (more: refused as a "
                  "flood).", _pers("max_feedback_per_minute"), low=1.0, high=100000.0),
        ParamSpec("fine_tune_steps", int, "REINFORCE steps (paper 001 Eq. 11) per batch.", _pers("fine_tune_steps"),
                  low=1, high=10000),
        ParamSpec("learning_rate", float, "Adam learning rate of the fine-tune (paper 001: 1e-4).",
                  _pers("learning_rate"), low=1e-7, high=0.1),
        ParamSpec("maps_plot_dir", str, "Also write a PNG (frame, EM, AM) per maps request here; empty: none.",
                  _pers("maps_plot_dir")),
    ],
    "ae_controller": [
        ParamSpec("method", str, "AE method (the registry in neural_ae_ros.ae).", _ae("method"), choices=AE_METHODS),
        ParamSpec("smoothing", str,
                  "fast: settles a 10 EV step in 3 + latency frames (absolute targets, pipelined Eq. 4 steps "
                  "while frames are clipped); paper_ema: paper 000 Eq. 5 EMA of log exposure.",
                  _ae("smoothing"), choices=SMOOTHING_MODES),
        ParamSpec("ema_mu", float, "Eq. 5 smoothing of log exposure (smoothing paper_ema; 0: none).", _ae("ema_mu"),
                  low=0.0, high=0.99),
        ParamSpec("max_adjustment", float, "Eq. 4 M_exp: largest change per decision (factor; 10 = 3.3 EV).",
                  _ae("max_adjustment"), low=1.01, high=1000.0),
        ParamSpec("deadband_ev", float, "fast: changes smaller than this are not sent (EV; no dithering).",
                  _ae("deadband_ev"), low=0.0, high=0.49),
        ParamSpec("blind_steps", int, "fast: Eq. 4 steps taken on fully clipped frames before one confirms them.",
                  _ae("blind_steps"), low=1, high=10),
        ParamSpec("clip_fraction", float,
                  "fast: a frame with this much more of its pixels saturated than the reference frame is clipped.",
                  _ae("clip_fraction"), low=0.01, high=0.99),
        ParamSpec("scene_step_ev", float,
                  "fast: an exposure-normalised mean level this far (EV) from the reference is a scene step.",
                  _ae("scene_step_ev"), low=0.1, high=10.0),
        ParamSpec("dark_level_fraction", float,
                  "fast: a mean level above black below this fraction of the signal range is a dark frame.",
                  _ae("dark_level_fraction"), low=0.001, high=0.49),
        ParamSpec("wait_for_applied_command", bool,
                  "Decide only on frames captured with the last decided command; repeat it meanwhile.",
                  _ae("wait_for_applied_command")),
        ParamSpec("t_max_s", float, "Eq. 6 longest exposure time before gain is raised (s); 0: the camera's "
                  "announced T_max (camera_exposure_info).", _ae("t_max_s"), low=0.0, high=0.1),
        *_method_parameters(),
    ],
}


def node_defaults(node: str, config_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Default value of every parameter of ``node``, read from ``config/``."""
    cache: Dict[str, Mapping[str, Any]] = {}
    out: Dict[str, Any] = {}
    for spec in NODE_PARAMETERS[node]:
        if spec.config is None:
            out[spec.name] = spec.default
            continue
        file_name, section, key = spec.config
        if file_name not in cache:
            cache[file_name] = load_config(file_name, config_dir)
        try:
            value = cache[file_name][section][key]
        except (KeyError, TypeError) as exc:
            raise KeyError(f"config/{file_name}: missing '{section}.{key}' (default of {node}.{spec.name})") from exc
        out[spec.name] = _coerce(spec, value)
        reason = validate(spec, out[spec.name])
        if reason:
            raise ValueError(f"config/{file_name} '{section}.{key}': {reason}")
    return out


def _coerce(spec: ParamSpec, value: Any) -> Any:
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if spec.type is str and value is None:
        return ""
    return value


def validate(spec: ParamSpec, value: Any) -> Optional[str]:
    """None if ``value`` is acceptable for ``spec``, else the reason it is refused."""
    if spec.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{spec.name} must be a number, got {value!r}"
        if not math.isfinite(float(value)):
            return f"{spec.name} must be finite, got {value!r}"
    elif spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{spec.name} must be an integer, got {value!r}"
    elif not isinstance(value, spec.type):
        return f"{spec.name} must be {spec.type.__name__}, got {value!r}"
    if spec.low is not None and value < spec.low:
        return f"{spec.name}={value} is below its minimum {spec.low}"
    if spec.high is not None and value > spec.high:
        return f"{spec.name}={value} is above its maximum {spec.high}"
    if spec.multiple_of and value % spec.multiple_of:
        return (f"{spec.name}={value} must be a multiple of {spec.multiple_of}"
                + (" (an RGGB mosaic is made of 2x2 quads)" if spec.multiple_of == 2 else ""))
    if spec.choices is not None and value not in spec.choices:
        return f"{spec.name}={value!r} is not one of {', '.join(spec.choices)}"
    return None


def spec_by_name(node: str) -> Dict[str, ParamSpec]:
    return {s.name: s for s in NODE_PARAMETERS[node]}
