"""Middleware settings in one place: the shared-memory Fast DDS profile and local discovery.

Call :func:`configure_middleware` before ``rclpy.init``. A profile or discovery range the user
already chose in the environment is kept.
"""
from __future__ import annotations

import os
from pathlib import Path

from neural_ae_ros.config import config_path

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
