"""SIGINT / SIGTERM as exceptions, remembering which signal arrived (no rclpy here).

The ``neural-ae`` command line and every node process stop the same way: the handler raises an
exception wherever Python code runs when the signal lands, so ``finally`` clean-up runs. When
that code is called from C++ (rclpy's pybind11 layer), the exception comes out re-wrapped as
another one (e.g. ``RuntimeError: Unable to convert call argument '0' to Python object``), or a
callback's ``except Exception`` guard swallows it. :func:`received` still says that a stop was
asked for, so the caller reports a stop, not a crash.
"""
from __future__ import annotations

import signal
from typing import Callable, Optional

__all__ = ["Terminated", "install", "received", "exit_code"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(Exception):
    """SIGTERM arrived (the command line's counterpart of KeyboardInterrupt): clean-up runs,
    then the command exits 143."""


_received: Optional[str] = None


def received() -> Optional[str]:
    """Name of the stop signal that arrived since :func:`install` (``"SIGINT"``/``"SIGTERM"``),
    or None."""
    return _received


def install(exception_for: Callable[[str], BaseException]) -> Callable[[], None]:
    """Handle SIGINT and SIGTERM: remember the signal's name, then raise ``exception_for(name)``.
    Forgets an earlier signal. Returns a function that puts the previous handlers back."""
    global _received
    _received = None

    def handler(signum, _frame) -> None:
        global _received
        _received = signal.Signals(signum).name
        raise exception_for(_received)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def exit_code(name: str) -> int:
    """The shell's exit code for a process stopped by signal ``name``: 128 + its number."""
    return 128 + int(signal.Signals[name])
