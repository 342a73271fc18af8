"""The one ``main`` every node executable shares: DDS settings, init, spin, clean shutdown."""
from __future__ import annotations

import sys
from typing import Callable, Tuple, Type

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from .dds import configure_middleware


def run_node(factory: Callable[[], Node], args=None,
             fatal_errors: Tuple[Type[BaseException], ...] = ()) -> int:
    """Create the node with ``factory`` and spin it until shutdown (Ctrl-C, SIGINT).

    ``fatal_errors``: exceptions at start-up that end the process with exit code 1 and a log
    line with the reason (e.g. a missing model file), instead of a traceback.
    """
    configure_middleware()
    try:
        with rclpy.init(args=args if args is not None else sys.argv):
            try:
                node = factory()
            except fatal_errors as exc:
                rclpy.logging.get_logger(getattr(factory, "__name__", "node")).fatal(f"cannot start: {exc}")
                return 1
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0
