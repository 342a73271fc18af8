"""The one ``main`` every node executable shares: DDS settings, init, spin, clean shutdown.

Process life, the same for every node:

- A start-up error (bad parameter, missing model) ends the process with exit code 1 and ONE
  fatal log line naming the reason, never a traceback (``NEURAL_AE_TRACEBACK=1`` shows it).
- SIGINT (Ctrl-C) and SIGTERM stop the node cleanly: one info line, exit code 0, the node and
  the DDS participant destroyed (Fast DDS then removes its shared-memory files).
- An exception escaping a callback (nodes guard their callbacks, so this is a bug) ends the
  node with one fatal line and exit code 1. Once a stop signal has arrived, an exception is the
  stop itself: a signal landing inside a pybind11 call into rclpy comes out as a RuntimeError
  ("Unable to convert call argument"), and that is a clean stop, not a crash.
- A node started by a command (``NEURAL_AE_PARENT_PID`` set, see :mod:`.processes`) stops when
  that command is gone, besides the kernel's parent-death signal.
- Stale Fast DDS shared-memory files of dead processes are removed at start.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from typing import Callable, Optional, Tuple, Type

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from neural_ae_ros import stop_signals

from .dds import clean_stale_shm, configure_middleware
from .processes import parent_is_gone

#: Seconds between checks of the stop flags (signal, parent gone) while spinning.
_SPIN_SLICE_S = 0.2


class StopRequested(BaseException):
    """A signal or the parent's death asked the node to stop (not an error). A BaseException,
    like KeyboardInterrupt: callbacks guarded with ``except Exception`` must not swallow it
    (a signal landing inside a long callback, e.g. the camera's capture, would be lost)."""


def _show_traceback() -> bool:
    return os.environ.get("NEURAL_AE_TRACEBACK", "") not in ("", "0")


def run_node(factory: Callable[[], Node], args=None,
             fatal_errors: Tuple[Type[BaseException], ...] = (Exception,),
             after_start: Optional[Callable[[Node], None]] = None) -> int:
    """Create the node with ``factory`` and spin it until SIGINT/SIGTERM or its parent's death.

    ``fatal_errors``: exceptions at start-up that end the process with exit code 1 and one
    fatal line with the reason. ``after_start(node)``: called once the node exists (e.g. the
    lifecycle auto-start), errors in it are fatal the same way.
    Returns the process exit code.
    """
    configure_middleware()
    clean_stale_shm()
    # One torch thread per node process: the nodes run side by side, and torch's intra-op threads
    # fighting over the same cores made the ISP and detector several times slower under load.
    # NEURAL_AE_TORCH_THREADS overrides (e.g. a node alone on a many-core machine).
    import torch

    torch.set_num_threads(int(os.environ.get("NEURAL_AE_TORCH_THREADS", "1")))
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", getattr(factory, "__name__", "node")).lower()
    stop_signals.install(StopRequested)
    node = None
    code = 0
    logger = rclpy.logging.get_logger(name)  # the node's own once it exists
    try:
        rclpy.init(args=args if args is not None else sys.argv,
                   signal_handler_options=SignalHandlerOptions.NO)
        try:
            node = factory()
            logger = node.get_logger()
            if after_start is not None:
                after_start(node)
        except fatal_errors as exc:
            if _show_traceback():
                traceback.print_exc()
            logger.fatal(f"cannot start: {exc}")
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok():
            executor.spin_once(timeout_sec=_SPIN_SLICE_S)
            if stop_signals.received():  # a stop re-wrapped or swallowed on its way out of rclpy
                raise StopRequested(stop_signals.received())
            if parent_is_gone():
                logger.warning("the process that started this node is gone: stopping")
                break
    except StopRequested as stop:
        logger.info(f"stopping on {stop}")
    except ExternalShutdownException:
        pass
    except Exception as exc:  # noqa: BLE001 - one fatal line, not a traceback
        if stop_signals.received():  # the stop signal, re-wrapped by the C++ layer it crossed
            logger.info(f"stopping on {stop_signals.received()} (it interrupted a call into rclpy: "
                        f"{type(exc).__name__})")
        else:
            if _show_traceback():
                traceback.print_exc()
            logger.fatal(f"stopped by an unexpected error: {type(exc).__name__}: {exc}")
            code = 1
    finally:
        # no second signal may interrupt the clean-up (Fast DDS frees its shared memory here)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if node is not None:
                node.destroy_node()
        except Exception:  # noqa: BLE001
            pass
        rclpy.try_shutdown()
    return code
