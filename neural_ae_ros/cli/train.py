"""``neural-ae train``: an exposure policy trained end to end with its own detector (paper 000
Section 5.3; classical methods get the fairness fine-tune of Table 2)."""
from __future__ import annotations

import argparse
import sys


def _size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from e
    if w % 16 or h % 16 or w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text}: width and height must be positive multiples of 16")
    return w, h


def _cmd_train(args) -> int:
    if args.method == "attention_rl":  # paper 001: its own pre-training (neural_ae_ros.personalization)
        from neural_ae_ros.personalization.cli_hooks import train_command

        return train_command(args)
    from neural_ae_ros.ae.training import AeTrainConfig, train_ae
    from neural_ae_ros.detector.checkpoint import CheckpointError
    from neural_ae_ros.detector.dataset import SceneDataError

    cfg = AeTrainConfig(method=args.method, steps=args.steps, batch_size=args.batch_size, lr_ae=args.lr_ae,
                        lr_detector=args.lr_detector, l2_weight=args.l2_weight, crop_size=args.crop_size,
                        seed=args.seed, max_minutes=args.max_minutes, threads=args.threads,
                        checkpoint_every=args.checkpoint_every)
    try:
        train_ae(args.scenes, args.out, cfg, val_scenes=args.val_scenes, detector_init=args.detector_init,
                 max_scenes=args.max_scenes, progress=not args.no_progress, resume=not args.restart)
    except (SceneDataError, CheckpointError, ValueError, OSError) as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    return 0


def add_commands(subparsers) -> None:
    from neural_ae_ros.ae.training import TRAINABLE_METHODS

    p = subparsers.add_parser("train", help="train an exposure policy end to end with its detector (paper 000 Sec. 5.3)",
                              description=__doc__)
    p.add_argument("--method", required=True, choices=tuple(TRAINABLE_METHODS) + ("attention_rl",))
    p.add_argument("--scenes", required=True, help="training split written by `neural-ae scenes` (two frames per scene)")
    p.add_argument("--val-scenes", default=None, help="validation split (recorded in the metadata)")
    p.add_argument("--out", required=True, help="output .pt (AE weights; its detector goes to <stem>_detector.pt)")
    p.add_argument("--detector-init", default=None, help="detector to start from (default: the shipped one)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=6)
    p.add_argument("--lr-ae", type=float, default=1e-3)
    p.add_argument("--lr-detector", type=float, default=1e-4)
    p.add_argument("--l2-weight", type=float, default=1e-4, help="weight of the L2 penalty on the AE weights")
    p.add_argument("--crop-size", type=_size, default=(320, 192), help="frame-2 crop WIDTHxHEIGHT (multiples of 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time (resumable)")
    p.add_argument("--max-scenes", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between resume checkpoints")
    p.add_argument("--restart", action="store_true", help="ignore an existing resume checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train)
