"""``neural-ae personalize-eval``: personalised exposure control by policy gradient (paper 001),
evaluated as its Tables 3-5 on a test split that no training saw."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _positive(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return v


def cmd_personalize_eval(args) -> int:
    from neural_ae_ros.detector.dataset import SceneDataError
    from neural_ae_ros.personalization.evaluate import EvalConfig, format_tables, run_personalize_eval
    from neural_ae_ros.personalization.experts import EXPERTS
    from neural_ae_ros.personalization.policy_gradient import RlConfig
    from neural_ae_ros.personalization.pretrain import SupervisedConfig

    experts = args.experts.split(",") if args.experts else list(EXPERTS)
    unknown = [e for e in experts if e not in EXPERTS]
    if unknown:
        print(f"personalize-eval: unknown expert(s) {unknown}; expected some of {sorted(EXPERTS)}", file=sys.stderr)
        return 2
    cfg = EvalConfig(experts=experts, max_train_scenes=args.max_train_scenes, max_test_scenes=args.max_test_scenes,
                     labels_per_scene=args.labels_per_scene,
                     pretrain=SupervisedConfig(steps=args.pretrain_steps, lr=3e-3, seed=args.seed),
                     supervised=SupervisedConfig(steps=args.supervised_steps, batch_size=args.supervised_batch_size,
                                                 seed=args.seed),
                     rl=RlConfig(steps=args.rl_steps, states_per_batch=args.rl_states_per_batch, lr=args.rl_lr,
                                 variance=args.policy_variance, seed=args.seed),
                     seed=args.seed, threads=args.threads)
    try:
        result = run_personalize_eval(args.train_scenes, args.test_scenes, args.out_dir, cfg, restart=args.restart,
                                      progress=not args.no_progress)
    except (SceneDataError, ValueError, OSError) as e:
        print(f"personalize-eval: {e}", file=sys.stderr)
        return 2
    print(format_tables(result))
    print(f"maps: {result.get('plot')}; total {result['wall_s']['total']} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("personalize-eval", help="paper 001 Tables 3-5: RL personalisation per synthetic expert",
                              description=__doc__)
    p.add_argument("--train-scenes", required=True, type=Path, help="training split (`neural-ae scenes --split train`)")
    p.add_argument("--test-scenes", required=True, type=Path, help="test split no training saw (another seed)")
    p.add_argument("--out-dir", type=Path, default=Path("out/personalize"),
                   help="models, re-exposure cache and the maps PNG (reused by a rerun with the same settings)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--experts", default=None, help="comma-separated subset of the experts (default: all)")
    p.add_argument("--max-train-scenes", type=_positive, default=None)
    p.add_argument("--max-test-scenes", type=_positive, default=None)
    p.add_argument("--labels-per-scene", type=_positive, default=None,
                   help="feedback labels per training scene (default: every re-exposure in the window, as Sec. 6.2)")
    p.add_argument("--pretrain-steps", type=_positive, default=1500)
    p.add_argument("--supervised-steps", type=_positive, default=250)
    p.add_argument("--supervised-batch-size", type=_positive, default=32)
    p.add_argument("--rl-steps", type=_positive, default=300)
    p.add_argument("--rl-states-per-batch", type=_positive, default=16,
                   help="frames per RL step, each with 8 labelled references: 128 tuples (the paper's batch)")
    p.add_argument("--rl-lr", type=float, default=1e-3)
    p.add_argument("--policy-variance", type=float, default=0.1, help="Sigma of the Gaussian policy (Sec. 5.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--restart", action="store_true", help="retrain every model even when cached")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_personalize_eval)
