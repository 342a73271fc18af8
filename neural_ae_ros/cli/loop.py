"""``neural-ae loop``: the closed exposure loop as separate ROS 2 processes, recorded and scored."""
from __future__ import annotations

from pathlib import Path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("loop", help="run camera_bridge -> histogram_node (+ isp_node -> detector_node for "
                                          "semantic methods) -> ae_controller over DDS")
    from neural_ae_ros.ae import SMOOTHING_MODES, available_methods

    p.add_argument("--method", default="average", choices=available_methods(), help="AE method")
    p.add_argument("--smoothing", default=None, choices=SMOOTHING_MODES,
                   help="fast (settles a 10 EV step in 3 + latency frames) or paper_ema (paper 000 Eq. 5); "
                        "default: config/ae.yaml")
    p.add_argument("--frames", type=int, default=None,
                   help="frames to capture (default: 300 on a drive, the whole recording with --bag)")
    p.add_argument("--latency", type=int, default=None, help="actuation latency in frames (0-5; default: config)")
    p.add_argument("--drive", default=None, help="built-in drive (default: config/scene_source.yaml)")
    p.add_argument("--bag", default=None, help="replay a scene recording (neural-ae record-scene) instead of a drive")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--fps", type=float, default=None)
    p.add_argument("--timeout-s", type=float, default=None,
                   help="give up after this many seconds (default: 60 s + 3x the run's real-time length)")
    p.add_argument("--network-weights", default=None,
                   help="learned methods: exposure-network weights (default: neural_ae_ros/data/ae/<method>.pt)")
    p.add_argument("--detector", default=None,
                   help="semantic methods: the method's own detector (default: <weights stem>_detector.pt beside "
                        "the weights)")
    p.add_argument("--features-timeout-s", type=float, default=None,
                   help="semantic methods: wait at most this long (s, 0-5) for a frame's features before deciding "
                        "without them (default: config/ae.yaml)")
    p.add_argument("--json", type=Path, default=None, help="write the result record here")
    p.add_argument("--log-dir", type=Path, default=None, help="node logs (default: a temp dir)")
    p.set_defaults(func=_run)


def summary_line(result: dict) -> str:
    def event(e):
        c = e["frames_to_converge"]
        if c is not None:
            return f"{e['name']}@{e['frame_index']}: {c} frames, overshoot {e['overshoot_ev']:.2f} EV"
        if e.get("limited_by_camera"):
            return f"{e['name']}@{e['frame_index']}: camera limit reached after {e['frames_to_camera_limit']} frames"
        return f"{e['name']}@{e['frame_index']}: not reached"

    osc = result["oscillation"]
    osc_text = (f"{osc['sign_changes_per_100_frames']:.1f} sign changes/100 frames over {osc['frames_scored']} "
                f"frames, rms step {osc['rms_step_ev']:.3f} EV" if osc["frames_scored"] else f"n/a ({osc['reason']})")
    incomplete = (f" INCOMPLETE: {result['incomplete']};" if result.get("incomplete") else "")
    return (f"{result['method']:>9} ({result.get('smoothing')}):{incomplete} {result['frames_published']} frames "
            f"({result['frames_lost']} lost), {result['frames_with_command']} from commands, lag "
            f"{result['command_to_frame_lag']} frames, {result['fps']:.1f} fps; events [{'; '.join(map(event, result['step_events']))}]; "
            f"oscillation {osc_text}")


def _run(args) -> int:
    from neural_ae_ros.ros.loop import run_loop, write_json

    if args.latency is not None and not 0 <= args.latency <= 5:
        raise SystemExit(f"--latency {args.latency}: must be in 0..5")
    result = run_loop(method=args.method, frames=args.frames, latency=args.latency, width=args.width,
                      height=args.height, fps=args.fps, drive=args.drive, seed=args.seed, log_dir=args.log_dir,
                      bag_path=args.bag, timeout_s=args.timeout_s, extra_ae_params=_ae_overrides(args),
                      network_weights=args.network_weights, detector_checkpoint=args.detector)
    if args.json:
        write_json(result, args.json)
    print(summary_line(result))
    shortfall = rate_shortfall_line(result)
    if shortfall:
        print(shortfall)
    return 0


def _ae_overrides(args):
    out = {}
    if args.smoothing:
        out["smoothing"] = args.smoothing
    if args.features_timeout_s is not None:
        if not 0.0 <= args.features_timeout_s <= 5.0:
            raise SystemExit(f"--features-timeout-s {args.features_timeout_s}: must be in 0..5 s")
        out["features_timeout_s"] = float(args.features_timeout_s)
    return out or None


def rate_shortfall_line(result: dict, tolerance: float = 0.2):
    """A warning when the camera delivered clearly fewer frames per second than asked (None if not)."""
    fps, target = result.get("fps") or 0.0, result.get("target_fps") or 0.0
    if target > 0 and fps < (1.0 - tolerance) * target:
        return (f"warning: rate shortfall: {fps:.1f} of the {target:.1f} fps asked ({100 * (1 - fps / target):.0f} % short; "
                f"machine too slow for this size, or lockstep waiting on commands)")
    return None
