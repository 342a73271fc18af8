"""The ``neural-ae`` command line. Each feature module adds its sub-commands."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback

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


class Terminated(Exception):
    """SIGTERM arrived: unwind like Ctrl-C (clean-up runs), then exit 143."""


#: The signal that arrived, set by the handlers: an exception raised inside a C++ -> Python call
#: (rclpy's pybind11 callbacks) reaches us re-wrapped as a RuntimeError, and is still a stop.
_RECEIVED = {"signal": None}


def _on_sigterm(signum, frame):
    _RECEIVED["signal"] = "SIGTERM"
    raise Terminated()


def _on_sigint(signum, frame):
    _RECEIVED["signal"] = "SIGINT"
    raise KeyboardInterrupt()


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
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.signal(signal.SIGINT, _on_sigint)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"neural-ae {args.command}: interrupted (SIGINT)", file=sys.stderr)
        return 130
    except Terminated:
        print(f"neural-ae {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        if _RECEIVED["signal"] == "SIGTERM":  # Terminated re-wrapped by a C++ extension on its way up
            print(f"neural-ae {args.command}: terminated (SIGTERM)", file=sys.stderr)
            return 143
        if _RECEIVED["signal"] == "SIGINT":  # likewise KeyboardInterrupt
            print(f"neural-ae {args.command}: interrupted (SIGINT)", file=sys.stderr)
            return 130
        if os.environ.get("NEURAL_AE_TRACEBACK", "") not in ("", "0"):
            traceback.print_exc()
        one_line = " ".join(str(exc).split())  # e.g. a YAML error spans several lines
        print(f"neural-ae {args.command}: error: {type(exc).__name__}: {one_line}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


if __name__ == "__main__":
    sys.exit(main())
