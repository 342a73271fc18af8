"""Middleware settings in one place: the shared-memory Fast DDS profile and local discovery.

Call :func:`configure_middleware` before ``rclpy.init``. A profile or discovery range the user
already chose in the environment is kept.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Dict, List, Set

from neural_ae_ros.config import config_path
from neural_ae_ros.ros.processes import pid_alive

PROFILE_FILE_NAME = "fastdds_shm.xml"


def shm_profile_path() -> Path:
    return config_path(PROFILE_FILE_NAME)


def configure_middleware(environ=None) -> dict:
    """Set the DDS environment defaults in ``environ`` (default ``os.environ``); return them."""
    env = os.environ if environ is None else environ
    profile = shm_profile_path()
    if not profile.is_file():
        raise FileNotFoundError(f"Fast DDS profile {profile} is missing (package installed incompletely?)")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    return {k: env[k] for k in ("FASTDDS_DEFAULT_PROFILES_FILE", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                               "RMW_IMPLEMENTATION")}


# -- Fast DDS shared memory: clean what dead processes left, never what live ones use ----------------
#: Fast DDS (2.x "fastrtps_", 3.x may say "fastdds_") keeps in /dev/shm per segment ``<base>`` a
#: lock file ``<base>_el`` (exclusive lock held by the owner while it lives) and per port
#: ``<base>``, ``<base>_el``/``<base>_sl`` and the semaphore ``sem.<base>_mutex``. A lock file
#: that no live process holds marks the group as stale (what ``fastdds shm clean`` checks).
#: A process that only *sends* to a port opens it (creating it again if its listener is gone) without
#: any lock file, so such a port outlives everyone: it is stale when no live process maps it
#: (``/proc/<pid>/maps``). Without this, every run left port files behind (126 on one machine).
SHM_DIR = Path("/dev/shm")
_LOCK_FILE = re.compile(r"^(?P<base>(?:fastrtps|fastdds)_[A-Za-z0-9_]+?)_(?:el|sl)$")
_SHM_FILE = re.compile(r"^(?:sem\.)?(?:fastrtps|fastdds)_")


def fastdds_shm_files(shm_dir: Path = SHM_DIR) -> List[str]:
    """Names of every Fast DDS file in ``shm_dir`` (segments, ports, lock files, semaphores)."""
    try:
        return sorted(n for n in os.listdir(shm_dir) if _SHM_FILE.match(n))
    except FileNotFoundError:
        return []


def _flocked_inodes() -> Dict[int, int]:
    """inode -> pid of every flock/posix lock on the machine, read from /proc/locks (taking no
    lock ourselves, so a live process is never disturbed)."""
    held: Dict[int, int] = {}
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return held
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF" ("->" marks a blocked waiter)
        if "->" in parts:
            continue
        try:
            pid = int(parts[4])
            inode = int(parts[5].split(":")[2])
        except (IndexError, ValueError):
            continue
        held[inode] = pid
    return held


def _mapped_shm_names(shm_dir: Path = SHM_DIR) -> Set[str]:
    """Names of files in ``shm_dir`` that some live process has mapped (from /proc/*/maps; a
    process whose maps cannot be read is skipped, so run the cleaner as the nodes' user)."""
    prefix = str(shm_dir).rstrip("/") + "/"
    mapped: Set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            at = line.find(prefix)
            if at >= 0:
                mapped.add(line[at + len(prefix):].split(" ", 1)[0])
    return mapped


def stale_shm_groups(shm_dir: Path = SHM_DIR, min_age_s: float = 3.0) -> Dict[str, List[str]]:
    """``base -> file names`` of Fast DDS segments/ports that no live process uses, older than
    ``min_age_s`` s (a segment being created right now is not stale). In use: a live process holds
    its lock file, or, for a port without lock files (opened by senders only), maps it."""
    held = _flocked_inodes()
    names = fastdds_shm_files(shm_dir)
    bases: Dict[str, List[str]] = {}
    now = time.time()
    for name in names:
        m = _LOCK_FILE.match(name)
        if not m:
            continue
        base = m.group("base")
        try:
            st = os.stat(shm_dir / name)
        except FileNotFoundError:
            continue
        pid = held.get(st.st_ino)
        if pid is not None and pid_alive(pid):
            bases.pop(base, None)
            bases[base] = None  # marks "in use" for the other lock file of the same base
            continue
        if now - st.st_mtime < min_age_s:
            bases[base] = None
            continue
        bases.setdefault(base, [])
    # ports/segments with no lock file at all: stale unless a live process maps them
    lockless = [n for n in names if not n.startswith("sem.") and not _LOCK_FILE.match(n)
                and n not in bases and f"{n}_el" not in names and f"{n}_sl" not in names]
    if lockless:
        mapped = _mapped_shm_names(shm_dir)
        for name in lockless:
            try:
                age_s = now - os.stat(shm_dir / name).st_mtime
            except FileNotFoundError:
                continue
            in_use = name in mapped or f"sem.{name}_mutex" in mapped
            bases[name] = None if in_use or age_s < min_age_s else []
    stale = {}
    for base, mark in bases.items():
        if mark is None:
            continue
        stale[base] = [n for n in names if n in (base, f"{base}_el", f"{base}_sl", f"sem.{base}_mutex")]
    return stale


def clean_stale_shm(shm_dir: Path = SHM_DIR, min_age_s: float = 3.0) -> List[str]:
    """Remove Fast DDS shared-memory files left by dead processes; returns the removed names.
    Files of live processes (their lock held) are never touched."""
    removed = []
    for files in stale_shm_groups(shm_dir, min_age_s).values():
        for name in files:
            try:
                os.remove(shm_dir / name)
                removed.append(name)
            except OSError:
                pass
    return removed
