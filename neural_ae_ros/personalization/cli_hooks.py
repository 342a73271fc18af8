"""``neural-ae train --method attention_rl``: maps the train command's options onto
:func:`neural_ae_ros.personalization.training.train_attention_rl` (``--lr-ae`` is the learning
rate, ``--batch-size`` the frames per step; the detector options do not apply)."""
from __future__ import annotations

import sys


def train_command(args) -> int:
    from neural_ae_ros.detector.dataset import SceneDataError

    from .pretrain import SupervisedConfig
    from .training import train_attention_rl

    cfg = SupervisedConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr_ae, seed=args.seed)
    try:
        train_attention_rl(args.scenes, args.out, cfg, val_scenes=args.val_scenes, max_scenes=args.max_scenes,
                           threads=args.threads, max_minutes=args.max_minutes,
                           checkpoint_every=args.checkpoint_every, resume=not args.restart,
                           progress=not args.no_progress)
    except (SceneDataError, ValueError, OSError) as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    return 0
