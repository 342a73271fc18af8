"""``neural-ae bringup``: the vehicle graph of launch/vehicle.launch.py as separate processes,
without ``ros2 launch``.

Same description (:func:`neural_ae_ros.graph.vehicle`), same files: every node gets the
package's ``ros__parameters`` files for its concerns, then the user's ``--params-file`` files
(checked first: a bad value is one error line naming file, node and reason, before anything
starts), then the command's overrides. Each node's output is forwarded line by line, prefixed
``[node]``. Ctrl-C / SIGTERM / ``--duration-s`` stop every node with SIGINT (they shut down
cleanly) and wait for them; the last line says whether every node exited cleanly, and the
exit code is 0 (duration), 130 (SIGINT) or 143 (SIGTERM). A node that ends on its own is reported with its name, exit code and
last log lines, the others are stopped, and the command exits 1.
"""
from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path
from typing import Deque, Dict, List, Optional, Sequence, TextIO

from neural_ae_ros.stop_signals import Terminated, exit_code

#: Log lines kept per node for the report of a node that died.
LAST_LINES = 15
#: Seconds each node gets to stop after SIGINT before it is killed.
STOP_TIMEOUT_S = 15.0


def add_commands(subparsers) -> None:
    from neural_ae_ros.graph import BRINGUP_SOURCES
    from neural_ae_ros.parameters import AE_METHODS

    p = subparsers.add_parser("bringup", help="start the vehicle graph (as vehicle.launch.py) as processes")
    p.add_argument("--method", required=True, choices=AE_METHODS, help="AE method")
    p.add_argument("--source", default="", choices=BRINGUP_SOURCES,
                   help="camera source (default: config/scene_source.yaml): drive, bag, a running driver, or "
                        "our stand-in driver started with the graph")
    p.add_argument("--params-file", action="append", default=[], type=Path, metavar="YAML",
                   help="ros__parameters file applied after the package's (repeatable; later files win)")
    p.add_argument("--namespace", default="", help="namespace of the graph")
    p.add_argument("--drive", default=None, help="built-in drive (source drive)")
    p.add_argument("--bag", default=None, help="scene recording (source bag)")
    p.add_argument("--driver-node", default=None, help="driver node (source driver; default config/camera_driver.yaml)")
    p.add_argument("--driver-image-topic", default=None, help="the driver's raw image topic (source driver)")
    p.add_argument("--driver-meta-topic", default=None, help="the driver's metadata topic (source driver)")
    p.add_argument("--detector-checkpoint", default=None, help="detector model (.pt with its .json)")
    p.add_argument("--no-perception", action="store_true", help="leave out isp_node and detector_node")
    p.add_argument("--dds-profile", default=None, type=Path, help="Fast DDS profile XML (default: shared memory)")
    p.add_argument("--duration-s", type=float, default=None, help="stop after this many seconds (default: run "
                   "until Ctrl-C / SIGTERM)")
    p.add_argument("--log-dir", type=Path, default=None, help="also write each node's output to <dir>/<node>.log")
    p.set_defaults(func=_run)


def build_graph(args) -> List:
    from neural_ae_ros.graph import DRIVER_IMAGE_TOPIC, DRIVER_META_TOPIC, vehicle

    camera: Dict[str, object] = {}
    if args.drive:
        camera["drive"] = args.drive
    if args.bag:
        camera.update(bag_path=str(Path(args.bag).resolve()))
    if args.driver_node:
        camera["driver_node"] = args.driver_node
    detector = {"checkpoint": str(Path(args.detector_checkpoint).resolve())} if args.detector_checkpoint else {}
    return vehicle(args.method, namespace=args.namespace, source=args.source or ("bag" if args.bag else ""),
                   camera=camera, detector=detector, perception=not args.no_perception,
                   driver_image_topic=args.driver_image_topic or DRIVER_IMAGE_TOPIC,
                   driver_meta_topic=args.driver_meta_topic or DRIVER_META_TOPIC)


def check_params_files(paths: Sequence[Path], nodes: Sequence[str]) -> List[str]:
    """Read each user file with the package's loader; raise ``ValueError`` naming file, node and
    reason for a value a node would refuse. Returns warnings (parameters no node declares)."""
    from neural_ae_ros.config import (ROS_PARAMETERS_KEY, is_ros_parameters_file, load_yaml, node_keys,
                                      ros_parameters)
    from neural_ae_ros.parameters import spec_by_name, validate

    warnings = []
    for path in paths:
        data = load_yaml(path)
        if not is_ros_parameters_file(data):
            raise ValueError(f"{path}: not a ros__parameters file (expected '<node or /**>: ros__parameters: "
                             "{name: value}' entries)")
        for node in nodes:
            specs = spec_by_name(node)
            own = set()  # names in the node's own entries ('/**' ones may be meant for other nodes)
            for key in node_keys(node)[:-1]:
                if isinstance(data.get(key), dict):
                    own |= set(data[key].get(ROS_PARAMETERS_KEY) or {})
            for name, value in ros_parameters(data, node, path).items():
                if name not in specs:
                    if name in own:
                        warnings.append(f"{path}: {node} has no parameter '{name}' (ignored)")
                    continue
                if specs[name].type is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)  # rcl reads 1 as an integer; our nodes then refuse it with the types named
                reason = validate(specs[name], value)
                if reason:
                    raise ValueError(f"{path}: {node}: {reason}")
    return warnings


class NodeProcess:
    """One node process whose output is forwarded, prefixed, and its last lines kept."""

    def __init__(self, name: str, module: str, args: Sequence[str], env: dict, out: TextIO,
                 lock: threading.Lock, log_dir: Optional[Path]) -> None:
        import subprocess

        from neural_ae_ros.ros.processes import start_node_process

        self.name = name
        self.last: Deque[str] = collections.deque(maxlen=LAST_LINES)
        self._log = open(log_dir / f"{name}.log", "w") if log_dir else None
        self.proc = start_node_process(module, args, subprocess.PIPE, env)
        self._thread = threading.Thread(target=self._forward, args=(out, lock), daemon=True)
        self._thread.start()

    def _forward(self, out: TextIO, lock: threading.Lock) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.last.append(line)
            with lock:
                out.write(f"[{self.name}] {line}\n")
                out.flush()
            if self._log:
                self._log.write(line + "\n")
                self._log.flush()

    def finish(self, timeout_s: float = 5.0) -> None:
        """After the process ended: drain its output."""
        self._thread.join(timeout=timeout_s)
        if self._log:
            self._log.close()


def _run(args) -> int:
    from neural_ae_ros.config import config_path
    from neural_ae_ros.graph import ros_args
    from neural_ae_ros.ros.dds import clean_stale_shm, configure_middleware
    from neural_ae_ros.ros.processes import signals_ignored, stop_processes

    if args.duration_s is not None and args.duration_s <= 0:
        raise SystemExit(f"--duration-s {args.duration_s}: must be > 0")
    graph = build_graph(args)
    user_files = [Path(p).resolve() for p in args.params_file]
    for warning in check_params_files(user_files, sorted({n.executable for n in graph})):
        print(f"neural-ae bringup: warning: {warning}", file=sys.stderr)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.dds_profile:
        if not args.dds_profile.is_file():
            raise FileNotFoundError(f"--dds-profile {args.dds_profile}: no such file")
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(args.dds_profile.resolve())
    configure_middleware(env)
    clean_stale_shm()
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    out, lock = sys.stdout, threading.Lock()
    names = [(f"{n.namespace.strip('/')}/" if n.namespace.strip("/") else "") + n.executable for n in graph]
    procs: List[NodeProcess] = []
    dead: Optional[NodeProcess] = None
    stop_signal, stop_code = "", 0  # a signal that asked for the stop, and the exit code it gives
    start = time.monotonic()
    try:
        for name, node in zip(names, graph):
            files = [config_path(f) for f in node.params_files] + user_files
            procs.append(NodeProcess(name, node.module, ros_args(node, files), env, out, lock, args.log_dir))
        with lock:
            print(f"neural-ae bringup: started {', '.join(f'{p.name} (pid {p.proc.pid})' for p in procs)}; method "
                  f"{args.method}; " + (f"stopping after {args.duration_s} s" if args.duration_s else
                                        "Ctrl-C stops"), file=out, flush=True)
        while dead is None:
            if args.duration_s is not None and time.monotonic() - start >= args.duration_s:
                break
            dead = next((p for p in procs if p.proc.poll() is not None), None)
            if dead is None:
                time.sleep(0.1)
    except (KeyboardInterrupt, Terminated) as exc:  # Ctrl-C / SIGTERM: a requested stop, reported as one
        stop_signal = "SIGINT" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
        stop_code = exit_code(stop_signal)
    finally:
        with signals_ignored():  # no second Ctrl-C may cut the stop short (orphans, shared memory)
            codes = stop_processes([p.proc for p in procs], timeout_s=STOP_TIMEOUT_S)
            for p in procs:
                p.finish()
            clean_stale_shm(min_age_s=0.0)
    if dead is not None:
        last = "\n".join(f"    {line}" for line in dead.last) or "    (no output)"
        print(f"neural-ae bringup: node {dead.name} died (exit code {dead.proc.returncode}) after "
              f"{time.monotonic() - start:.1f} s; its last lines:\n{last}\nthe other nodes were stopped",
              file=sys.stderr)
        return 1
    unclean = [(p.name, code) for p, (_, code) in zip(procs, codes) if code != 0]
    if unclean:
        print("neural-ae bringup: stopped, but not cleanly: "
              + ", ".join(f"{name} (exit code {code})" for name, code in unclean), file=sys.stderr)
        return 1
    how = f" on {stop_signal}" if stop_signal else ""
    print(f"neural-ae bringup: stopped{how} after {time.monotonic() - start:.1f} s; every node exited cleanly",
          file=out, flush=True)
    return stop_code
