"""The ``neural-ae`` command line. Each feature module adds its sub-commands."""
from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that contribute sub-commands through ``add_commands(subparsers)``.
COMMAND_MODULES = (
    "neural_ae_ros.cli.loop",
    "neural_ae_ros.cli.demo",
    "neural_ae_ros.cli.scenes",
    "neural_ae_ros.cli.detector",
    "neural_ae_ros.cli.train",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-ae",
        description="Learned auto-exposure for automotive cameras: closed loop, data, training, evaluation.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
