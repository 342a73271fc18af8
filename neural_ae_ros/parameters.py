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

from neural_ae_ros.config import load_node_parameters

__all__ = ["ParamSpec", "NODE_PARAMETERS", "node_defaults", "node_config_files", "validate", "AE_METHODS"]

from neural_ae_ros.ae.base import available_methods, method_class
from neural_ae_ros.ae.controller import SMOOTHING_MODES
from neural_ae_ros.imaging.camera_driver import EXPOSURE_UNITS, GAIN_UNITS

#: Method names as users type them (docs/design.md), from the AE method registry.
AE_METHODS = tuple(available_methods())


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter.

    ``config`` is ``(file, node, key)``: the default is ``key`` of ``node``'s ``ros__parameters``
    in ``config/<file>`` (entry ``/**/<node>``); ``default`` is used when ``config`` is None. ``low``/``high`` bound numbers (inclusive); ``choices`` bounds
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
    return ("camera.yaml", "camera_bridge", key)


def _lim(key):
    return ("camera.yaml", "camera_bridge", key)


def _src(key):
    return ("scene_source.yaml", "camera_bridge", key)


def _ae(key):
    return ("ae.yaml", "ae_controller", key)


def _pers(key):
    return ("personalization.yaml", "personalization_node", key)


def _wd(key):
    return ("camera.yaml", "camera_bridge", key)


def _method_parameters() -> List["ParamSpec"]:
    """Each registered AE method's own constants (``MethodParameter``), defaults in ae.yaml."""
    out: Dict[str, ParamSpec] = {}
    for name in AE_METHODS:
        for p in method_class(name).parameters:
            spec = ParamSpec(p.name, p.type, f"[{name}] {p.description}", _ae(p.name), low=p.low, high=p.high)
            if p.name in out:  # shared by several methods (same meaning): one spec naming them all
                known = out[p.name]
                if (known.type, known.low, known.high) != (p.type, p.low, p.high):
                    raise ValueError(f"AE parameter {p.name!r} declared differently by two methods")
                tag, rest = known.description.split("] ", 1)
                spec = ParamSpec(p.name, p.type, f"{tag}, {name}] {rest}", _ae(p.name), low=p.low, high=p.high)
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

#: Where the camera bridge's frames come from (scene_source.yaml ``source``).
CAMERA_SOURCES = ("drive", "bag", "driver")


def _drv(key):
    return ("camera_driver.yaml", "camera_bridge", key)


def _standin(key):
    return ("standin_camera_driver.yaml", "standin_camera_driver", key)


#: The camera bridge in front of a real driver (config/camera_driver.yaml; source 'driver').
DRIVER_FRONT_PARAMETERS = (
    ParamSpec("driver_node", str, "Fully qualified name of the camera driver node whose parameters take our "
              "exposure (source 'driver').", _drv("driver_node"), read_only=True),
    ParamSpec("driver_exposure_parameter", str, "The driver's exposure time parameter.",
              _drv("driver_exposure_parameter"), read_only=True),
    ParamSpec("driver_exposure_unit", str, "Unit of the driver's exposure time (parameter and metadata).",
              _drv("driver_exposure_unit"), choices=tuple(EXPOSURE_UNITS), read_only=True),
    ParamSpec("driver_gain_parameter", str, "The driver's analog gain parameter.", _drv("driver_gain_parameter"),
              read_only=True),
    ParamSpec("driver_gain_unit", str, "Unit of the driver's gain: dB (20 log10 K) or linear K.",
              _drv("driver_gain_unit"), choices=GAIN_UNITS, read_only=True),
    ParamSpec("driver_manual_parameters", str, "name=value pairs (comma separated) set once at start, e.g. "
              "the driver's own auto exposure off.", _drv("driver_manual_parameters"), read_only=True),
    ParamSpec("driver_metadata_type", str, "The driver's per-frame metadata message (pkg/msg/Type) on "
              "driver_meta; empty: none, applied settings assumed after actuation_latency_frames.",
              _drv("driver_metadata_type"), read_only=True),
    ParamSpec("driver_metadata_exposure_field", str, "Metadata field with the exposure time (driver unit).",
              _drv("driver_metadata_exposure_field"), read_only=True),
    ParamSpec("driver_metadata_gain_field", str, "Metadata field with the gain (driver unit).",
              _drv("driver_metadata_gain_field"), read_only=True),
    ParamSpec("driver_resend_after_frames", int, "Send a set again when the metadata has not shown it this many "
              "frames after its latency (0: never).", _drv("driver_resend_after_frames"), low=0, high=1000),
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
        ParamSpec("source", str, "Radiance source: 'drive' (built-in drive), 'bag' (scene recording) or 'driver' "
                  "(front a real camera driver: its images, our exposure through its parameters).",
                  _src("source"), choices=CAMERA_SOURCES, read_only=True),
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
        ParamSpec("pace", str,
                  "frame_rate: capture on a timer at frame_rate_hz (the recording's pace); pipeline: capture as "
                  "soon as the gates (lockstep command, frames in flight) open, as fast as the graph goes "
                  "(frame_rate_hz still sets the exposure limit 1/frame_rate_hz).",
                  _cam("pace"), choices=("frame_rate", "pipeline"), read_only=True),
        ParamSpec("max_frames_in_flight", int,
                  "0: off. N > 0: capture frame f only once detections of frame f - N came back on "
                  "'detections' (no frame is dropped by a slower ISP/detector; A/B runs).",
                  _cam("max_frames_in_flight"), low=0, high=3),
        ParamSpec("in_flight_timeout_s", float,
                  "Longest wait for those detections (s); past it the camera goes on without waiting until "
                  "detections return (a dead detector never stalls the camera).",
                  _cam("in_flight_timeout_s"), low=0.1, high=60.0),
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
        *DRIVER_FRONT_PARAMETERS,
    ],
    "histogram_node": [
        ParamSpec("grid_sizes", str, "Tile grids of the histogram stack, comma separated (paper 000: 1,3,7).",
                  ("histograms.yaml", "histogram_node", "grid_sizes"), read_only=True),
        ParamSpec("num_bins", int, "Bins per histogram (paper 000: 256).", ("histograms.yaml", "histogram_node", "num_bins"),
                  low=256, high=256, read_only=True),
    ],
    "isp_node": [
        ParamSpec("autostart", bool, "Configure and activate at start (no lifecycle manager needed); false: wait "
                  "for configure/activate from a lifecycle manager.", default=True, read_only=True),
        ParamSpec("demosaic", str, "Demosaicing method.", ("isp.yaml", "isp_node", "demosaic"), choices=("bilinear", "malvar")),
        ParamSpec("binning", bool, "2x2 quad binning to half resolution instead of demosaicing (fast path).",
                  ("isp.yaml", "isp_node", "binning")),
        ParamSpec("digital_gain", float, "Linear gain before the tone curve.", ("isp.yaml", "isp_node", "digital_gain"),
                  low=0.01, high=100.0),
        ParamSpec("gamma", float, "Tone curve exponent (2.4: sRGB).", ("isp.yaml", "isp_node", "gamma"), low=1.0, high=4.0),
    ],
    "detector_node": [
        ParamSpec("autostart", bool, "Configure and activate at start (no lifecycle manager needed); false: wait "
                  "for configure/activate from a lifecycle manager.", default=True, read_only=True),
        ParamSpec("checkpoint", str, "Detector checkpoint (.pt with its .json); empty: the shipped default.",
                  ("detector.yaml", "detector_node", "checkpoint")),
        ParamSpec("score_threshold", float, "Detections below this score are not published.",
                  ("detector.yaml", "detector_node", "score_threshold"), low=0.0, high=1.0),
        ParamSpec("nms_iou", float, "IoU above which lower-scoring boxes of a class are suppressed.",
                  ("detector.yaml", "detector_node", "nms_iou"), low=0.05, high=1.0),
        ParamSpec("max_detections", int, "At most this many detections per frame.",
                  ("detector.yaml", "detector_node", "max_detections"), low=1, high=1000),
        ParamSpec("ae_checkpoint", str,
                  "Exposure-network checkpoint (semantic_nn / hybrid_nn .pt) whose channel compression and pyramid "
                  "pooling this node runs on the conv2 map, publishing the pooled vector (~18 KB/frame) on "
                  "'semantic_features'; empty: none published.", default=""),
    ],
    "standin_camera_driver": [
        ParamSpec("frame_rate_hz", float, "Frames per second (Hz).", _standin("frame_rate_hz"), low=1.0, high=120.0),
        ParamSpec("drive", str, "Built-in drive rendered as the camera's scene.", _standin("drive"), read_only=True),
        ParamSpec("seed", int, "Seed of the drive and the sensor noise.", _standin("seed"), low=0, high=2**31 - 1,
                  read_only=True),
        ParamSpec("width", int, "Image width (pixels, even).", _standin("width"), low=16, high=4096, read_only=True,
                  multiple_of=2),
        ParamSpec("height", int, "Image height (pixels, even).", _standin("height"), low=16, high=4096,
                  read_only=True, multiple_of=2),
        ParamSpec("actuation_latency_frames", int, "A set received while frame f is captured lands on frame "
                  "f + 1 + this.", _standin("actuation_latency_frames"), low=0, high=5),
        ParamSpec("ignore_every_nth_set", int, "Drop every n-th exposure set silently (accepted, not applied); "
                  "0: none.", _standin("ignore_every_nth_set"), low=0, high=1000),
        ParamSpec("publish_metadata", bool, "Publish ~/meta (exposure us, gain dB per frame).",
                  _standin("publish_metadata"), read_only=True),
        ParamSpec("min_exposure_time_us", float, "Lower end of the exposure_time range (us).",
                  _standin("min_exposure_time_us"), low=1.0, high=1e6, read_only=True),
        ParamSpec("max_exposure_time_us", float, "Upper end of the exposure_time range (us).",
                  _standin("max_exposure_time_us"), low=1.0, high=1e6, read_only=True),
        ParamSpec("max_gain_db", float, "Upper end of the gain range (dB; the lower end is 0 dB).",
                  _standin("max_gain_db"), low=0.0, high=60.0, read_only=True),
        ParamSpec("initial_exposure_time_us", float, "Exposure time at start (us).",
                  _standin("initial_exposure_time_us"), low=1.0, high=1e6, read_only=True),
        ParamSpec("initial_gain_db", float, "Gain at start (dB).", _standin("initial_gain_db"), low=0.0, high=60.0,
                  read_only=True),
        ParamSpec("frame_id", str, "frame_id of published images.", _standin("frame_id"), read_only=True),
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
        ParamSpec("confirm_frames", int,
                  "fast: a change below confirm_below_ev is sent only when this many consecutive frames ask "
                  "for it the same way (then their average; 1: at once). Stops a noisy method dithering.",
                  _ae("confirm_frames"), low=1, high=30),
        ParamSpec("confirm_below_ev", float, "fast: changes at least this large (EV) are sent at once.",
                  _ae("confirm_below_ev"), low=0.0, high=3.0),
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
        ParamSpec("network_weights", str,
                  "Learned methods (histogram_nn, semantic_nn, hybrid_nn): exposure-network weights (.pt); empty: "
                  "the shipped neural_ae_ros/data/ae/<method>.pt.", _ae("network_weights")),
        *_method_parameters(),
    ],
}


def node_defaults(node: str, config_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Default value of every parameter of ``node``, read from the ``ros__parameters`` files in
    ``config/`` (the same files ``--params-file`` and launch pass to the node)."""
    cache: Dict[Tuple[str, str], Mapping[str, Any]] = {}
    out: Dict[str, Any] = {}
    for spec in NODE_PARAMETERS[node]:
        if spec.config is None:
            out[spec.name] = spec.default
            continue
        file_name, section, key = spec.config
        if (file_name, section) not in cache:
            cache[(file_name, section)] = load_node_parameters(file_name, section, config_dir)
        try:
            value = cache[(file_name, section)][key]
        except (KeyError, TypeError) as exc:
            raise KeyError(f"config/{file_name}: missing '/**/{section}: ros__parameters: {key}' "
                           f"(default of {node}.{spec.name})") from exc
        out[spec.name] = _coerce(spec, value)
        reason = validate(spec, out[spec.name])
        if reason:
            raise ValueError(f"config/{file_name} '{section}.{key}': {reason}")
    return out


def node_config_files(node: str) -> List[str]:
    """The ``config/`` files (``ros__parameters`` form) that hold ``node``'s defaults, in the order
    a launch file or ``--params-file`` list passes them."""
    files: List[str] = []
    for spec in NODE_PARAMETERS[node]:
        if spec.config is not None and spec.config[0] not in files:
            files.append(spec.config[0])
    return files


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
