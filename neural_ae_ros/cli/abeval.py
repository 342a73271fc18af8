"""``neural-ae ab-eval``: two AE methods side by side on one scene recording, recorded and scored;
``neural-ae evaluate``: score any recording that holds detections and ground truth."""
from __future__ import annotations

import json
from pathlib import Path


def add_commands(subparsers) -> None:
    from neural_ae_ros.ae import available_methods

    p = subparsers.add_parser("ab-eval", help="A/B: two complete pipelines side by side on one scene recording")
    p.add_argument("--a", required=True, choices=available_methods(), help="AE method of side a")
    p.add_argument("--b", required=True, choices=available_methods(), help="AE method of side b")
    p.add_argument("--scene-bag", required=True, type=Path, help="scene recording (neural-ae record-scene)")
    p.add_argument("--out", required=True, type=Path, help="output folder: bags/, logs/, summary.json, report.html")
    p.add_argument("--pace", default="lockstep", choices=("lockstep", "stamps"),
                   help="lockstep: as fast as both sides go; stamps: at the recording's frame rate (neither drops frames)")
    p.add_argument("--frames", type=int, default=None, help="play only the first N frames (default: all)")
    p.add_argument("--latency", type=int, default=None, help="actuation latency in frames (default: config)")
    p.add_argument("--timeout-s", type=float, default=None,
                   help="give up after this many seconds (default: none; a side ends complete or stalled)")
    p.add_argument("--stall-timeout-s", type=float, default=60.0,
                   help="a side from which nothing came for this long ends; its remaining frames are missing")
    p.set_defaults(func=_ab_eval)

    e = subparsers.add_parser("evaluate", help="score a recording holding detections and ground truth (e.g. an "
                                               "ab-eval bag): AP@0.5 per class, missing frames, exposure scores")
    e.add_argument("--bag", required=True, type=Path, help="rosbag2 recording (/scene/boxes + <ns>/detections)")
    e.add_argument("--json", type=Path, default=None, help="write the scores here")
    e.set_defaults(func=_evaluate)


def side_line(side: str, s: dict) -> str:
    m = "n/a (" + s.get("map_reason", "no score") + ")" if s["map"] is None else f"{100 * s['map']:.1f}"
    gap = ""
    if s["frames_missing"]:
        reasons = sorted({g["reason"] for g in s.get("missing", [])})
        gap = f" MISSING {s['frames_missing']} ({'; '.join(reasons)})"
    deaths = "".join(f"; {d['node']} died (exit {d['exit_code']}) after {d['frames_recorded_before']} frames"
                     for d in s.get("node_deaths", []))
    return (f"{side}: {s['method']:>12}: mAP@0.5 {m}, {s['frames_scored']} frames scored{gap}{deaths}")


def _ab_eval(args) -> int:
    from neural_ae_ros.evaluation.ab_report import score_and_report
    from neural_ae_ros.ros.ab_run import run_ab

    args.out.mkdir(parents=True, exist_ok=True)
    result = run_ab(args.a, args.b, args.scene_bag, args.out, pace=args.pace, frames=args.frames,
                    timeout_s=args.timeout_s, stall_timeout_s=args.stall_timeout_s, latency=args.latency)
    summary = score_and_report(result["bags"], args.out, result["run"])
    for side, s in summary.items():
        print(side_line(side, s))
    print(f"report: {args.out / 'report.html'}\nsummary: {args.out / 'summary.json'}")
    return 0


def _evaluate(args) -> int:
    from neural_ae_ros.evaluation.ab_scoring import evaluate_bag

    scores = evaluate_bag(args.bag)
    for ns, s in scores.items():
        print(side_line(ns, s))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(scores, indent=1))
    return 0
