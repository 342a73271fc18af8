"""Auto-exposure methods behind one interface (see ``base.py``).

>>> from neural_ae_ros.ae import make_method, ExposureController, Observation
>>> ctrl = ExposureController(make_method("average"), mu=0.9)
"""
from .base import (
    AutoExposureMethod,
    ExposureCommandValues,
    ExposureController,
    ExposureDecision,
    Observation,
    available_methods,
    make_method,
    register_method,
)
from .average import AverageAE
from .gradient import GradientAE

__all__ = [
    "AutoExposureMethod",
    "AverageAE",
    "ExposureCommandValues",
    "ExposureController",
    "ExposureDecision",
    "GradientAE",
    "Observation",
    "available_methods",
    "make_method",
    "register_method",
]
