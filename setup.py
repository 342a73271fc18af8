"""Python packaging for machines without a ROS 2 install (see Makefile); colcon uses CMakeLists.txt."""
from setuptools import setup

setup()
