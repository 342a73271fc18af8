"""``neural-ae demo``: the main job on built-in data: the closed loop for the classical methods,
a comparison table and a plot of the exposure traces."""
from __future__ import annotations

from pathlib import Path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("demo", help="closed-loop comparison of AE methods on the built-in drive")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--frames", type=int, default=None, help="frames per run (default: config/demo.yaml)")
    p.set_defaults(func=_run)


def comparison_table(results) -> str:
    lines = [f"{'method':>9} | {'frames':>6} | {'lost':>4} | {'fps':>5} | {'lag':>3} | "
             + " | ".join(f"{e['name']:>14}" for e in results[0]["step_events"])
             + " | sign chg/100 | rms step EV"]
    for r in results:
        conv = []
        for e in r["step_events"]:
            c = e["frames_to_converge"]
            conv.append(f"{c:>7d} frames" if c is not None else
                        ("  camera limit" if e.get("limited_by_camera") else "  not reached"))
        osc = r["oscillation"]
        lines.append(f"{r['method']:>9} | {r['frames_published']:>6} | {r['frames_lost']:>4} | {r['fps']:>5.1f} | "
                     f"{','.join(map(str, r['command_to_frame_lag'])):>3} | " + " | ".join(conv)
                     + f" | {osc['sign_changes_per_100_frames']:>12.1f} | {osc['rms_step_ev']:>11.3f}")
    return "\n".join(lines)


def _run(args) -> int:
    from neural_ae_ros.config import load_config
    from neural_ae_ros.evaluation.plots import plot_exposure_traces
    from neural_ae_ros.ros.loop import run_loop, write_json
    from neural_ae_ros.imaging.sensor import SensorParams

    cfg = load_config("demo.yaml")["demo"]
    frames = args.frames or cfg["frames"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for method in cfg["methods"]:
        print(f"running the closed loop with '{method}' AE: {frames} frames of drive '{cfg['drive']}' "
              f"({cfg['width']}x{cfg['height']}), three ROS 2 processes over DDS ...", flush=True)
        overrides = (cfg.get("method_overrides") or {}).get(method) or {}
        r = run_loop(method=method, frames=frames, latency=cfg["actuation_latency_frames"], width=cfg["width"],
                     height=cfg["height"], drive=cfg["drive"], seed=cfg["seed"], log_dir=out / f"logs_{method}",
                     extra_ae_params=overrides)
        r["ae_overrides"] = overrides
        write_json(r, out / f"loop_{method}.json")
        results.append(r)
    sensor = SensorParams.from_yaml()
    plot = plot_exposure_traces(results, out / "exposure_traces.png", sensor.black_level_dn, sensor.white_level_dn)
    table = comparison_table(results)
    (out / "comparison.txt").write_text(table + "\n")
    print("\nConvergence after illumination events (frames until the mean raw level is back within +-0.5 EV of "
          "the target; 'camera limit': the camera ran out of exposure range) and oscillation:\n")
    print(table)
    print(f"\nplot: {plot}\nrecords: {out}/loop_*.json")
    return 0
