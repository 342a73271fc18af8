"""``neural-ae demo``: the main job on built-in data: an A/B run (``neural-ae ab-eval``) of the
average AE against the best shipped method on a recorded drive with a tunnel exit, both mAP
figures and the report. ``--loops``: the closed loop for the classical methods, a comparison
table and a plot of the exposure traces."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("demo", help="A/B run of average vs the best shipped method on a built-in drive")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--frames", type=int, default=None, help="frames per run (default: config/demo.yaml)")
    p.add_argument("--loops", action="store_true",
                   help="instead: the closed-loop comparison of the classical methods (config/demo.yaml 'demo')")
    p.set_defaults(func=_run)


def choose_b_method(cfg: dict, data_dir: Optional[Path] = None):
    """(method, why): ``b`` where the method is registered and its weights file
    ``neural_ae_ros/data/ae/<b>.pt`` exists (classical methods need none), else ``b_fallback``."""
    from neural_ae_ros.ae import available_methods

    b, fallback = cfg["b"], cfg["b_fallback"]
    data_dir = data_dir or Path(__file__).resolve().parent.parent / "data" / "ae"
    weights = data_dir / f"{b}.pt"
    if b not in available_methods():
        return fallback, f"'{b}' is not a registered AE method yet (its weights {weights} have not landed)"
    if b not in ("average", "gradient") and not weights.is_file():
        return fallback, f"the weights of '{b}' ({weights}) are not there yet"
    return b, f"config/demo.yaml b: {b}"


def _run(args) -> int:
    return _run_loops(args) if args.loops else _run_ab(args)


def _run_ab(args) -> int:
    from neural_ae_ros.cli.abeval import side_line
    from neural_ae_ros.config import load_config
    from neural_ae_ros.evaluation.ab_report import score_and_report
    from neural_ae_ros.ros.ab_run import run_ab
    from neural_ae_ros.scenes.scene_bag import record_drive

    cfg = load_config("demo.yaml")["ab"]
    frames = args.frames or cfg["frames"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    b, why = choose_b_method(cfg)
    if b != cfg["b"]:
        print(f"B method: {b} instead of {cfg['b']}: {why}", flush=True)
    scene = out / f"scene_{cfg['drive']}_{cfg['seed']}_{frames}f_{cfg['width']}x{cfg['height']}"
    if not scene.exists():
        print(f"recording the scene: {frames} frames of drive '{cfg['drive']}' ({cfg['width']}x{cfg['height']}) "
              f"to {scene} ...", flush=True)
        record_drive(cfg["drive"], frames, cfg["seed"], scene, cfg["width"], cfg["height"], cfg["fps"])
    run_dir = out / f"ab_{cfg['a']}_vs_{b}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    print(f"A/B: {cfg['a']} (a) vs {b} (b): two pipelines (camera, histograms, AE, ISP, detector; ten ROS 2 "
          f"processes over DDS), pace {cfg['pace']} ...", flush=True)
    result = run_ab(cfg["a"], b, scene, run_dir, pace=cfg["pace"], frames=frames)
    summary = score_and_report(result["bags"], run_dir, result["run"])
    print()
    for side, s in summary.items():
        print(side_line(side, s))
    print(f"B method: {b} ({why})")
    print(f"report: {run_dir / 'report.html'}")
    return 0


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


def _run_loops(args) -> int:
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
