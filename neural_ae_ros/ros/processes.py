"""Node processes that die with the command that started them (no rclpy import).

Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` is set in the child between fork and exec, so the
kernel sends the child SIGTERM when its parent dies for any reason, SIGKILL included; the
setting survives the exec of the ROS wheels' bootstrapper (same pid, not set-uid). As a second
line, the parent's pid goes to the child in ``NEURAL_AE_PARENT_PID`` and :mod:`.run` stops the
node when its parent is gone (other systems, or a parent that re-parents).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, List, Optional, Sequence, Tuple

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_PID_ENV = "NEURAL_AE_PARENT_PID"


def _libc():
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


def die_with_parent(sig: int = signal.SIGTERM):
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when the process
    that started it dies (Linux), and exits at once if that already happened."""
    parent = os.getpid()

    def preexec() -> None:
        libc = _libc()
        if libc is not None and sys.platform.startswith("linux"):
            libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def start_node_process(module: str, args: Sequence[str], log: IO, env: Optional[dict] = None) -> subprocess.Popen:
    """``python -m <module> <args>`` in its own session (a terminal's Ctrl-C goes to the parent,
    which stops its nodes in order), bound to this process's life."""
    child_env = dict(os.environ if env is None else env)
    child_env[PARENT_PID_ENV] = str(os.getpid())
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen([sys.executable, "-m", module, *args], env=child_env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())


@contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside the block, the previous handlers back after it: a
    second Ctrl-C must not cut a graph's stop short (orphaned nodes, shared memory left)."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop_processes(procs: Sequence[subprocess.Popen], timeout_s: float = 10.0) -> List[Tuple[int, Optional[int]]]:
    """SIGINT each running process, wait up to ``timeout_s`` in all, SIGKILL the rest.
    Returns ``(pid, returncode)`` of each."""
    import time

    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return [(p.pid, p.returncode) for p in procs]


def parent_is_gone(expected_parent_pid: Optional[int] = None) -> bool:
    """True when the process named in ``NEURAL_AE_PARENT_PID`` (or ``expected_parent_pid``) is
    no longer this process's parent."""
    if expected_parent_pid is None:
        env = os.environ.get(PARENT_PID_ENV)
        if not env:
            return False
        expected_parent_pid = int(env)
    return os.getppid() != expected_parent_pid


def children_of(pid: int) -> List[int]:
    """Live processes whose parent is ``pid`` (from /proc; empty elsewhere)."""
    out = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces/parentheses: split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir()
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"
