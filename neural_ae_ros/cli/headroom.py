"""``neural-ae headroom``: could any auto-exposure beat ``average`` on this scene set? (issue 7)."""
from __future__ import annotations

import sys
from pathlib import Path


def _cmd_headroom(args) -> int:
    import torch

    from neural_ae_ros.detector.checkpoint import CheckpointError
    from neural_ae_ros.detector.dataset import SceneDataError
    from neural_ae_ros.evaluation.headroom import HeadroomSettings
    from neural_ae_ros.evaluation.headroom_run import run_headroom

    torch.set_num_threads(args.threads)
    if not args.ev_sweep or any(abs(v) > 8 for v in args.ev_sweep):
        print("headroom: --ev-sweep needs values within +-8 EV", file=sys.stderr)
        return 2
    if any(k <= 1 for k in args.shifts):
        print("headroom: --shifts must be > 1 (frame 1 is taken at 1/k and k times e_base)", file=sys.stderr)
        return 2
    settings = HeadroomSettings(ev_sweep=tuple(sorted(args.ev_sweep)), shifts=tuple(args.shifts),
                                methods=tuple(args.methods), mu=args.mu, hflip=not args.no_hflip, seed=args.seed,
                                oracle_score_threshold=args.oracle_score_threshold,
                                checkpoint=str(args.checkpoint.resolve()) if args.checkpoint else "default")
    try:
        run_headroom(args.scenes, settings, cache_dir=args.cache, json_out=args.json, max_scenes=args.max_scenes,
                     n_boot=args.bootstrap, batch_size=args.batch_size, progress=not args.no_progress,
                     cached_only=args.cached_only, device=args.device, shard=args.shard)
    except (CheckpointError, SceneDataError, ValueError) as e:
        print(f"headroom: {e}", file=sys.stderr)
        return 2
    return 0


def add_commands(subparsers) -> None:
    from neural_ae_ros.evaluation.headroom import DEFAULT_EV_SWEEP, DEFAULT_METHODS, DEFAULT_SHIFTS

    p = subparsers.add_parser(
        "headroom",
        help="mAP at fixed exposures, the per-scene oracle and one step of classical AE (paper 000 protocol)",
        description="On two-frame scene pairs: frame 2 at fixed exposures -3..+3 EV around e_base, the per-scene "
                    "oracle (best TP - FP of that sweep), and one step of each AE method from frame 1 at "
                    "{1/k, k} x e_base (paper 000 Sec. 5.3 / 6.1); paired bootstrap 95 %% intervals of "
                    "oracle minus each method. Detections are cached per scene: a rerun resumes.")
    p.add_argument("--scenes", required=True, type=Path, help="scene directory written by `neural-ae scenes` (pairs)")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--cache", type=Path, help="detection cache directory (default SCENES/headroom_cache)")
    p.add_argument("--checkpoint", type=Path, help="detector checkpoint (default: the shipped one)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--shifts", type=float, nargs="+", default=list(DEFAULT_SHIFTS), metavar="K")
    p.add_argument("--ev-sweep", type=float, nargs="+", default=list(DEFAULT_EV_SWEEP), metavar="EV")
    p.add_argument("--mu", type=float, default=0.0,
                   help="Eq. 5 EMA for the one step (default 0: the step applied in full, as in the paper's "
                        "simulation protocol; 0.9 is the paper's inference-time smoothing)")
    p.add_argument("--oracle-score-threshold", type=float, default=0.5,
                   help="the per-scene oracle maximises TP - FP among detections scoring at least this (default 0.5)")
    p.add_argument("--no-hflip", action="store_true", help="do not add mirror images (the paper adds them)")
    p.add_argument("--max-scenes", type=int)
    p.add_argument("--cached-only", action="store_true",
                   help="measure nothing: report on the scenes already in the cache (a long run still going)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=1234, help="noise seed of the captures")
    p.add_argument("--threads", type=int, default=2)
    add_device_arguments(p, "scene")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_headroom)


def shard_spec(text: str):
    """``I/N`` -> (I, N), for ``--shard``."""
    import argparse

    from neural_ae_ros.evaluation.headroom_run import check_shard

    try:
        shard = tuple(int(v) for v in text.split("/"))
        if len(shard) != 2:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected I/N, e.g. 0/4") from None
    try:
        check_shard(shard)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return shard


def add_device_arguments(p, unit: str) -> None:
    """``--device`` and ``--shard``, shared by headroom and benchmark."""
    p.add_argument("--device", default="cpu",
                   help="where the detector runs: cpu (default) or cuda; the sensor and ISP simulation stays on "
                        "the CPU, so the noise draws are the same either way")
    p.add_argument("--shard", type=shard_spec, default=None, metavar="I/N",
                   help=f"measure only every N-th uncached {unit} from I and report nothing: N processes fill "
                        f"one cache in parallel; run once more without --shard for the report")
