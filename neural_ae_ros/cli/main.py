"""The ``neural-ae`` command line. Each feature module adds its sub-commands."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from neural_ae_ros import stop_signals
from neural_ae_ros.stop_signals import Terminated

#: Modules that contribute sub-commands through ``add_commands(subparsers)``.
COMMAND_MODULES = (
    "neural_ae_ros.cli.loop",
    "neural_ae_ros.cli.demo",
    "neural_ae_ros.cli.scenes",
    "neural_ae_ros.cli.detector",
    "neural_ae_ros.cli.train",
    "neural_ae_ros.cli.soak",
    "neural_ae_ros.cli.headroom",
    "neural_ae_ros.cli.benchmark",
    "neural_ae_ros.cli.personalize",
    "neural_ae_ros.cli.bringup",
    "neural_ae_ros.cli.abeval",
)


def _stop_exception(name: str) -> BaseException:
    return KeyboardInterrupt() if name == "SIGINT" else Terminated()


def _stopped(command: str, name: str) -> int:
    print(f"neural-ae {command}: {'interrupted' if name == 'SIGINT' else 'terminated'} ({name})", file=sys.stderr)
    return stop_signals.exit_code(name)


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
    # One line, never a traceback, for what a user can cause: Ctrl-C, SIGTERM, bad input
    # (NEURAL_AE_TRACEBACK=1 shows the traceback). The commands' clean-up (stopping node
    # processes, shared memory) runs in their finally blocks before this prints.
    restore = stop_signals.install(_stop_exception)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _stopped(args.command, "SIGINT")
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        # Terminated, or a stop re-wrapped by a C++ extension on its way up (see stop_signals)
        stop = "SIGTERM" if isinstance(exc, Terminated) else stop_signals.received()
        if stop:
            return _stopped(args.command, stop)
        if os.environ.get("NEURAL_AE_TRACEBACK", "") not in ("", "0"):
            traceback.print_exc()
        one_line = " ".join(str(exc).split())  # e.g. a YAML error spans several lines
        print(f"neural-ae {args.command}: error: {type(exc).__name__}: {one_line}", file=sys.stderr)
        return 1
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
