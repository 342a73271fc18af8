"""``neural-ae train-detector`` and ``neural-ae detector-eval`` (issue 4)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _input_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from e
    if w % 16 or h % 16:
        raise argparse.ArgumentTypeError("width and height must be multiples of 16")
    return w, h


def _cmd_train(args) -> int:
    import torch

    from neural_ae_ros.detector.checkpoint import CheckpointError
    from neural_ae_ros.detector.dataset import SceneDataError
    from neural_ae_ros.detector.train import TrainConfig, train_detector

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      max_minutes=args.max_minutes, threads=args.threads,
                      exposure_jitter=tuple(args.exposure_jitter), renders_per_scene=args.renders_per_scene,
                      crop_size=args.crop_size, val_every=args.val_every, warmup_steps=args.warmup_steps)
    try:
        train_detector(args.scenes, args.out, val_scenes=args.val_scenes, input_size=args.input_size,
                       train_cfg=cfg, max_scenes=args.max_scenes, progress=not args.no_progress,
                       init_checkpoint=args.init)
    except (SceneDataError, CheckpointError) as e:
        print(f"train-detector: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_eval(args) -> int:
    import torch

    from neural_ae_ros.detector.checkpoint import CheckpointError
    from neural_ae_ros.detector.dataset import SceneDataError
    from neural_ae_ros.detector.evaluate import detector_eval

    torch.set_num_threads(args.threads)
    try:
        detector_eval(args.scenes, args.checkpoint, args.exposure_factors, hflip=not args.no_hflip,
                      seed=args.seed, max_scenes=args.max_scenes, json_out=args.json,
                      progress=not args.no_progress)
    except (CheckpointError, SceneDataError) as e:
        print(f"detector-eval: {e}", file=sys.stderr)
        return 2
    return 0


def add_commands(subparsers) -> None:
    from neural_ae_ros.detector.checkpoint import DEFAULT_CHECKPOINT

    p = _scene_command(
        subparsers, "train-detector", "train",
        help="train the object detector on well-exposed LDR renders of scenes",
        description="Render scenes at e_base (paper 000 Sec. 5.3) through the sensor model and ISP, "
                    "train the detector, write CHECKPOINT.pt + CHECKPOINT.json.")
    p.add_argument("--val-scenes", type=Path, help="optional validation scene directory")
    p.add_argument("--out", type=Path, default=Path("artifacts/detector/detector.pt"),
                   help="checkpoint path (.pt; the .json goes beside it)")
    p.add_argument("--input-size", type=_input_size, default=(640, 384),
                   help="WIDTHxHEIGHT the detector runs at (default 640x384, the scenes' size)")
    p.add_argument("--crop-size", type=_input_size, default=(320, 192),
                   help="WIDTHxHEIGHT of the training crops (default 320x192)")
    p.add_argument("--renders-per-scene", type=int, default=1)
    p.add_argument("--init", type=Path, help="start from this checkpoint (fine-tune / continue) instead of random weights")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--exposure-jitter", type=float, nargs=2, default=[0.71, 1.41], metavar=("LO", "HI"),
                   help="training renders at a factor log-uniform in [LO, HI] x e_base (default +-0.5 EV)")
    p.add_argument("--max-minutes", type=float,
                   help="time budget of the training loop: the cosine LR schedule follows it and training stops at it")
    p.add_argument("--val-every", type=int, default=5, help="validate every N epochs (with --val-scenes)")
    _add_run_options(p, seed=0)
    p.set_defaults(func=_cmd_train)

    e = _scene_command(
        subparsers, "detector-eval", "test",
        help="detector AP@0.5 / mAP on scenes captured at exposure factors of e_base",
        description="Capture every scene at factor x e_base (paper 000 Sec. 5.3), develop with the ISP, "
                    "detect, and print AP@0.5 per class and mAP for each factor.")
    e.add_argument("--checkpoint", type=Path, help=f"detector checkpoint (default {DEFAULT_CHECKPOINT.name} shipped)")
    e.add_argument("--exposure-factors", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    e.add_argument("--json", type=Path, help="write the results here")
    e.add_argument("--no-hflip", action="store_true", help="do not add horizontally flipped images")
    _add_run_options(e, seed=1234)
    e.set_defaults(func=_cmd_eval)


def _scene_command(subparsers, name: str, split: str, help: str, description: str):
    """A detector command reading a scene directory (``--scenes``, made by ``neural-ae scenes``)."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("--scenes", required=True, type=Path, help=f"scene directory (neural-ae scenes --split {split})")
    return p


def _add_run_options(p, seed: int) -> None:
    """Options both detector commands take: scene cap, seed, torch threads, progress bar."""
    p.add_argument("--max-scenes", type=int, help="use at most this many scenes of the directory")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
