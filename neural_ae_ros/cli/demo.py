"""``neural-ae demo``: the main job on built-in data: the closed loop for the classical methods,
a comparison table and a plot of the exposure traces."""
from __future__ import annotations

from pathlib import Path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("demo", help="closed-loop comparison of AE methods on the built-in drive")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--frames", type=int, default=None, help="frames per run (default: config/demo.yaml)")
    p.set_defaults(func=_run)


def _event_cell(e) -> str:
    c = e["frames_to_converge"]
    if c is not None:
        over = e.get("overshoot_ev")
        return f"{c:>3d} fr, over {over:.2f} EV" if over is not None else f"{c:>3d} frames"
    if e.get("limited_by_camera"):
        return f"limit after {e['frames_to_camera_limit']:>3d} fr"
    return "not reached"


def comparison_table(results) -> str:
    events = results[0]["step_events"]
    lines = [f"{'run':>36} | {'frames':>6} | {'lost':>4} | {'fps':>5} | {'lag':>3} | "
             + " | ".join(f"{e['name']:>22}" for e in events) + " | sign chg/100 (frames) | rms step EV"]
    for r in results:
        osc = r["oscillation"]
        if osc["frames_scored"]:
            osc_cells = (f"{osc['sign_changes_per_100_frames']:>12.1f} ({osc['frames_scored']:>3d}) | "
                         f"{osc['rms_step_ev']:>11.3f}")
        else:
            osc_cells = f"{'n/a (0 frames)':>21} | {'n/a':>11}"
        lines.append(f"{r.get('label', r['method']):>36} | {r['frames_published']:>6} | {r['frames_lost']:>4} | "
                     f"{r['fps']:>5.1f} | {','.join(map(str, r['command_to_frame_lag'])):>3} | "
                     + " | ".join(f"{_event_cell(e):>22}" for e in r["step_events"]) + f" | {osc_cells}")
    return "\n".join(lines)


def _run(args) -> int:
    from neural_ae_ros.config import load_config
    from neural_ae_ros.evaluation.plots import plot_exposure_traces
    from neural_ae_ros.ros.loop import run_loop, write_json

    cfg = load_config("demo.yaml")["demo"]
    frames = args.frames or cfg["frames"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, run in enumerate(cfg["runs"]):
        print(f"running the closed loop: {run['label']}: {frames} frames of drive '{cfg['drive']}' "
              f"({cfg['width']}x{cfg['height']}), three ROS 2 processes over DDS ...", flush=True)
        overrides = dict(run.get("ae") or {})
        r = run_loop(method=run["method"], frames=frames, latency=cfg["actuation_latency_frames"], width=cfg["width"],
                     height=cfg["height"], drive=cfg["drive"], seed=cfg["seed"], log_dir=out / f"logs_{i}",
                     extra_ae_params=overrides)
        r["label"] = run["label"]
        write_json(r, out / f"loop_{i}_{run['method']}_{overrides.get('smoothing', 'default')}.json")
        results.append(r)
    cam = results[0]["camera"]
    plot = plot_exposure_traces(results, out / "exposure_traces.png", cam["black_level_dn"], cam["white_level_dn"])
    table = comparison_table(results)
    (out / "comparison.txt").write_text(table + "\n")
    print("\nAfter illumination events: frames until the mean raw level is back within +-0.5 EV of the target "
          "(held 3 frames) and the overshoot past it; 'limit after N fr': the scene is darker than the camera can "
          "follow and the exposure reached the camera's limit after N frames. Oscillation: sign changes of the "
          "exposure step per 100 steady frames (frames scored).\n")
    print(table)
    print(f"\nplot: {plot}\nrecords: {out}/loop_*.json")
    return 0
