"""``neural-ae soak``: the closed loop for minutes under injected faults, measured."""
from __future__ import annotations

from pathlib import Path

from neural_ae_ros.ros.soak import FAULT_KINDS


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "soak", help="run the loop while killing/restarting nodes and sending bad data; report detection and recovery")
    p.add_argument("--minutes", type=float, default=1.0, help="run length (min)")
    p.add_argument("--faults", default=",".join(FAULT_KINDS),
                   help=f"comma-separated fault kinds (default all: {','.join(FAULT_KINDS)})")
    p.add_argument("--seed", type=int, default=0, help="seeds the fault times and order, and the drive")
    p.add_argument("--drive", default="step_test", help="built-in drive (step_test, tunnel, ...)")
    p.add_argument("--method", default="average", help="AE method")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=200)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--slot", type=float, default=15.0, help="seconds between faults (each gets one slot)")
    p.add_argument("--down", type=float, default=2.0, help="seconds a killed node stays down before its restart")
    p.add_argument("--json", type=Path, default=None, help="write the record here")
    p.add_argument("--log-dir", type=Path, default=None, help="node logs (default: a temp dir)")
    p.set_defaults(func=_run)


def summary_lines(result: dict) -> list:
    lines = [f"soak {result['minutes']} min: {len(result['faults'])} faults, {result['frames_published']} frames "
             f"published, {result['frames_with_command']} with a controller command, {result.get('frames_with_fallback', 0)} under the camera's fallback AE, {result['frames_lost_uncounted']} lost "
             f"uncounted, leaked: {result['leaked_processes']} processes, {result['leaked_shm_segments']} shm segments"]
    for kind, s in result["summary"].items():
        def fmt(v):
            return "-" if v is None else f"{v:.2f}"

        lines.append(f"  {kind:>15}: {s['injected']} injected, {s['detected']} detected (median {fmt(s['detected_after_s_median'])} s,"
                     f" max {fmt(s['detected_after_s_max'])} s), {s['recovered']} recovered (median "
                     f"{fmt(s['recovered_after_s_median'])} s, max {fmt(s['recovered_after_s_max'])} s), "
                     f"{s['frames_lost']} frames lost")
    return lines


def _run(args) -> int:
    from neural_ae_ros.ros.soak import run_soak, write_json

    if args.minutes <= 0:
        raise SystemExit(f"--minutes {args.minutes}: must be positive")
    if args.width % 2 or args.height % 2:
        raise SystemExit(f"--width/--height {args.width}x{args.height}: must be even (RGGB mosaic)")
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    result = run_soak(args.minutes, faults, seed=args.seed, width=args.width, height=args.height, fps=args.fps,
                      drive=args.drive, method=args.method, log_dir=args.log_dir, down_s=args.down, slot_s=args.slot)
    if args.json:
        write_json(result, args.json)
    print("\n".join(summary_lines(result)))
    return 0
