"""Auto-exposure methods behind one interface (see ``base.py``) and the controller around them.

>>> from neural_ae_ros.ae import make_method, ExposureController
>>> from neural_ae_ros.imaging.exposure import CameraExposureInfo
>>> ctrl = ExposureController(make_method("average"), CameraExposureInfo.from_yaml(), smoothing="fast")
"""
from .base import (
    INPUT_FEATURES,
    INPUT_HISTOGRAMS,
    INPUT_RAW,
    INPUT_RGB,
    AutoExposureMethod,
    ExposureDecision,
    FrameBatch,
    MethodParameter,
    Observation,
    available_methods,
    make_method,
    method_class,
    method_kwargs,
    register_method,
)
from .controller import SMOOTHING_MODES, ControllerSettings, ExposureController
from .average import AverageAE
from .gradient import GradientAE
from .neural import HistogramNN, HybridNN, SemanticNN  # paper 000 Section 4 (torch imported on first use)
from .attention_rl import AttentionRlAE  # paper 001 (torch imported on first use)

__all__ = [
    "INPUT_FEATURES",
    "INPUT_HISTOGRAMS",
    "INPUT_RAW",
    "INPUT_RGB",
    "SMOOTHING_MODES",
    "AttentionRlAE",
    "AutoExposureMethod",
    "AverageAE",
    "ControllerSettings",
    "ExposureController",
    "ExposureDecision",
    "FrameBatch",
    "HistogramNN",
    "HybridNN",
    "SemanticNN",
    "GradientAE",
    "MethodParameter",
    "Observation",
    "available_methods",
    "make_method",
    "method_class",
    "method_kwargs",
    "register_method",
]
