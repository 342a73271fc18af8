"""Test set-up: a private ROS_DOMAIN_ID per test run (parallel runs never cross) and the
project's DDS profile, before any test creates a participant."""
import os
import random

os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))

from neural_ae_ros.ros.dds import configure_middleware  # noqa: E402

configure_middleware()
