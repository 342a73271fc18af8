"""``neural-ae benchmark``: paper 000 Table 1 protocol, every method with its own detector, oracle ceiling."""
from __future__ import annotations

import sys


def _cmd(args) -> int:
    from neural_ae_ros.detector.checkpoint import CheckpointError
    from neural_ae_ros.detector.dataset import SceneDataError
    from neural_ae_ros.evaluation.benchmark import BenchmarkSettings, run_benchmark, table1_markdown

    import torch

    torch.set_num_threads(args.threads)
    settings = BenchmarkSettings(shifts=tuple(args.shifts), repeats=args.repeats, seed=args.seed,
                                 hflip=not args.no_hflip, oracle_step_ev=args.oracle_step)
    try:
        report = run_benchmark(args.scenes, args.methods, settings, json_out=args.json, cache_dir=args.cache_dir,
                      max_scenes=args.max_scenes, weights_dir=args.weights_dir,
                      shared_detector=args.shared_detector, progress=not args.no_progress,
                      oracle_detector=args.oracle_detector, device=args.device, shard=args.shard)
    except (FileNotFoundError, ValueError, SceneDataError, CheckpointError) as e:
        print(f"benchmark: {e}", file=sys.stderr)
        return 2
    if args.markdown and report:  # a --shard run reports nothing
        from pathlib import Path

        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table1_markdown(report) + "\n")
        print(f"wrote {args.markdown}")
    return 0


def add_commands(subparsers) -> None:
    from neural_ae_ros.cli.headroom import add_device_arguments
    from neural_ae_ros.evaluation.benchmark import AE_WEIGHTS_DIR, CLASSICAL, LEARNED

    p = subparsers.add_parser("benchmark", help="paper 000 Table 1: one-step AE from shifted exposures, AP@0.5, "
                              "each method with its own detector, oracle ceiling", description=__doc__)
    p.add_argument("--scenes", required=True, help="a test split written by `neural-ae scenes` (pairs)")
    p.add_argument("--methods", nargs="+", default=["average", "gradient", *LEARNED, "oracle"],
                   choices=[*CLASSICAL, *LEARNED, "oracle"])
    p.add_argument("--shifts", type=float, nargs="+", default=[1.5, 4.0, 10.0], help="k: frame 1 at {1/k, k} x e_base")
    p.add_argument("--repeats", type=int, default=12, help="draws of kappa per pair (paper: 12)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--oracle-step", type=float, default=0.25, help="EV step of the oracle's sweep over -3..+3 EV")
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--oracle-detector", default=None, choices=[*CLASSICAL, *LEARNED],
                   help="score the oracle's sweep with this method's detector (default: the shipped one); a method "
                        "whose fine-tuned detector is better than the shipped one can pass a shipped-detector oracle")
    p.add_argument("--markdown", default=None, help="also write the table in paper 000 Table 1's layout (Markdown)")
    p.add_argument("--cache-dir", default=None, help="per-pair detection cache (default: SCENES/benchmark_cache)")
    p.add_argument("--weights-dir", default=str(AE_WEIGHTS_DIR), help="where <method>.pt and <method>_detector.pt are")
    p.add_argument("--shared-detector", action="store_true",
                   help="classical methods without a fine-tuned detector use the shipped one (reported)")
    p.add_argument("--max-scenes", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    add_device_arguments(p, "pair")
    p.add_argument("--no-hflip", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd)
