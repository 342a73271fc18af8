"""The one ``main`` every node executable shares: DDS settings, init, spin, clean shutdown."""
from __future__ import annotations

import os
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
    # One torch thread per node process: the nodes run side by side, and torch's intra-op threads
    # fighting over the same cores made the ISP and detector several times slower under load.
    # NEURAL_AE_TORCH_THREADS overrides (e.g. a node alone on a many-core machine).
    import torch

    torch.set_num_threads(int(os.environ.get("NEURAL_AE_TORCH_THREADS", "1")))
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
