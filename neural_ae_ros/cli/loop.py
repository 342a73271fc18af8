"""``neural-ae loop``: the closed exposure loop as separate ROS 2 processes, recorded and scored."""
from __future__ import annotations

from pathlib import Path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("loop", help="run camera_bridge -> histogram_node -> ae_controller over DDS")
    p.add_argument("--method", default="average", help="AE method (average, gradient)")
    p.add_argument("--frames", type=int, default=300, help="frames to capture")
    p.add_argument("--latency", type=int, default=None, help="actuation latency in frames (0-5; default: config)")
    p.add_argument("--drive", default=None, help="built-in drive (default: config/scene_source.yaml)")
    p.add_argument("--bag", default=None, help="replay a scene recording (neural-ae record-scene) instead of a drive")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--fps", type=float, default=None)
    p.add_argument("--json", type=Path, default=None, help="write the result record here")
    p.add_argument("--log-dir", type=Path, default=None, help="node logs (default: a temp dir)")
    p.set_defaults(func=_run)


def summary_line(result: dict) -> str:
    conv = ", ".join(f"{e['name']}@{e['frame_index']}: {e['frames_to_converge']}" for e in result["step_events"])
    osc = result["oscillation"]
    return (f"{result['method']:>9}: {result['frames_published']} frames ({result['frames_lost']} lost), "
            f"{result['frames_with_command']} from commands, lag {result['command_to_frame_lag']} frames, "
            f"{result['fps']:.1f} fps; convergence [{conv}]; oscillation {osc['sign_changes_per_100_frames']:.1f} "
            f"sign changes/100 frames, rms step {osc['rms_step_ev']:.3f} EV")


def _run(args) -> int:
    from neural_ae_ros.ros.loop import run_loop, write_json

    if args.latency is not None and not 0 <= args.latency <= 5:
        raise SystemExit(f"--latency {args.latency}: must be in 0..5")
    result = run_loop(method=args.method, frames=args.frames, latency=args.latency, width=args.width,
                      height=args.height, fps=args.fps, drive=args.drive, seed=args.seed, log_dir=args.log_dir,
                      bag_path=args.bag)
    if args.json:
        write_json(result, args.json)
    print(summary_line(result))
    shortfall = rate_shortfall_line(result)
    if shortfall:
        print(shortfall)
    return 0


def rate_shortfall_line(result: dict, tolerance: float = 0.2):
    """A warning when the camera delivered clearly fewer frames per second than asked (None if not)."""
    fps, target = result.get("fps") or 0.0, result.get("target_fps") or 0.0
    if target > 0 and fps < (1.0 - tolerance) * target:
        return (f"warning: rate shortfall: {fps:.1f} of the {target:.1f} fps asked ({100 * (1 - fps / target):.0f} % short; "
                f"machine too slow for this size, or lockstep waiting on commands)")
    return None
