"""Auto-exposure interface: observations in, exposure adjustment factors out.

An :class:`AutoExposureMethod` looks at one frame (:class:`Observation`) and returns an
:class:`ExposureDecision` whose ``adjustment_factor`` ``u`` is relative to the effective
exposure ``e = K * t`` of *that* frame (paper 000 Eq. 4/5: ``u_t``). The
:class:`~neural_ae_ros.ae.controller.ExposureController` owns everything that turns ``u`` into
camera settings (smoothing, Eq. 6 split, camera limits).

Methods describe themselves (class attributes): ``name`` (as users type it), ``inputs`` (what
the controller must give them: ``INPUT_HISTOGRAMS``, ``INPUT_RAW``, ``INPUT_FEATURES``,
``INPUT_RGB``) and ``parameters`` (:class:`MethodParameter`: node parameter name, constructor
argument, type, range). The node parameters (``parameters.py``), the graph (``graph.py``) and
the command line derive from this registry.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from neural_ae_ros.imaging.exposure import FrameExposure
from neural_ae_ros.imaging.histograms import histogram_stack, mean_green_level

__all__ = [
    "Observation",
    "FrameBatch",
    "ExposureDecision",
    "AutoExposureMethod",
    "MethodParameter",
    "INPUT_HISTOGRAMS",
    "INPUT_RAW",
    "INPUT_FEATURES",
    "INPUT_RGB",
    "register_method",
    "make_method",
    "method_class",
    "method_kwargs",
    "available_methods",
]

#: What a method can need per frame (the topics the controller subscribes follow from these).
INPUT_HISTOGRAMS = "histograms"  # HistogramStack + mean level (always given)
INPUT_RAW = "raw"                # the raw RGGB mosaic (image_raw)
INPUT_FEATURES = "features"      # detector backbone features (semantic methods)
INPUT_RGB = "rgb"                # the ISP's RGB image (attention RL)


@dataclass(frozen=True)
class MethodParameter:
    """One tunable constant of an AE method: the node parameter ``name`` (its default is
    ``config/ae.yaml`` ``ae.<name>``), the constructor argument ``kwarg`` it maps to, its type
    and inclusive range."""

    name: str
    kwarg: str
    type: type
    low: float
    high: float
    description: str


@dataclass
class Observation:
    """What an AE method may look at for one frame.

    ``exposure`` is the record of the settings the frame was *captured with* (not the last
    command sent: with actuation latency they differ), with its frame index and the source
    frame of the command in force. ``mean_level_dn`` is the mean of the first-green plane in DN,
    black level included.
    """

    exposure: FrameExposure
    mean_level_dn: Optional[float] = None
    raw: Optional[np.ndarray] = None  # (H, W) RGGB mosaic, DN
    histograms: Optional[np.ndarray] = None  # (59, 256), see histograms.py
    white_level_dn: int = 4095
    black_level_dn: float = 64.0
    stamp_s: Optional[float] = None
    features: Optional[np.ndarray] = None
    rgb: Optional[np.ndarray] = None

    @property
    def frame_index(self) -> int:
        return int(self.exposure.frame_index)

    @property
    def exposure_time_s(self) -> float:
        return float(self.exposure.exposure_time_s)

    @property
    def analog_gain(self) -> float:
        return float(self.exposure.analog_gain)

    @property
    def effective_exposure_s(self) -> float:
        return self.exposure.effective_exposure_s

    @classmethod
    def from_raw(
        cls,
        raw: np.ndarray,
        exposure: FrameExposure,
        white_level_dn: int = 4095,
        black_level_dn: float = 64.0,
        compute_histograms: bool = True,
        keep_raw: bool = True,
        stamp_s: Optional[float] = None,
    ) -> "Observation":
        """Observation with histograms and mean green level computed from a raw mosaic."""
        if compute_histograms:
            hist, mean = histogram_stack(raw, white_level_dn, return_mean=True)
        else:
            hist, mean = None, mean_green_level(raw)
        return cls(
            exposure=exposure,
            mean_level_dn=mean,
            raw=raw if keep_raw else None,
            histograms=hist,
            white_level_dn=int(white_level_dn),
            black_level_dn=float(black_level_dn),
            stamp_s=stamp_s,
        )

    def green_mean_dn(self) -> float:
        """Mean green DN: the given value, else from the raw mosaic, else from histograms."""
        if self.mean_level_dn is not None:
            return float(self.mean_level_dn)
        if self.raw is not None:
            return mean_green_level(self.raw)
        if self.histograms is not None:
            whole = np.asarray(self.histograms[0], dtype=np.float64)
            width = (self.white_level_dn + 1) / whole.size
            centers = (np.arange(whole.size) + 0.5) * width
            return float((whole * centers).sum() / max(whole.sum(), 1.0))
        raise ValueError(
            f"frame {self.frame_index}: observation has no mean_level_dn, raw or histograms"
        )


@dataclass
class FrameBatch:
    """N frames for the batched path (:meth:`AutoExposureMethod.adjustment_factors`): numpy
    arrays or torch tensors, first axis N. ``exposures``: the N capture records;
    ``mean_level_dn`` (N,) DN; ``raw`` (N, H, W) RGGB mosaics in DN; ``histograms``
    (N, 59, 256) counts; ``features`` (N, POOLED) pooled semantic vectors or (N, 128, h, w)
    conv2 maps. Levels are the camera's (DN)."""

    exposures: Sequence[FrameExposure]
    mean_level_dn: Any = None
    raw: Any = None
    histograms: Any = None
    features: Any = None
    white_level_dn: int = 4095
    black_level_dn: float = 64.0

    def __len__(self) -> int:
        return len(self.exposures)

    @classmethod
    def from_observations(cls, observations: Sequence["Observation"]) -> "FrameBatch":
        """Stack single-frame observations (all with the same levels and the same parts)."""
        if not observations:
            raise ValueError("an empty batch")
        first = observations[0]

        def stack(attr):
            values = [getattr(o, attr) for o in observations]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise ValueError(f"batch: {attr} present for some frames only")
            return np.stack([np.asarray(v) for v in values])

        means = [o.green_mean_dn() if (o.mean_level_dn is not None or o.raw is not None or o.histograms is not None)
                 else math.nan for o in observations]
        return cls([o.exposure for o in observations], np.asarray(means, np.float64), stack("raw"),
                   stack("histograms"), stack("features"), first.white_level_dn, first.black_level_dn)

    def observation(self, i: int) -> "Observation":
        """Frame ``i`` as a single-frame :class:`Observation` (numpy views)."""
        def pick(a):
            if a is None:
                return None
            a = a[i]
            return a.numpy() if hasattr(a, "numpy") else np.asarray(a)

        mean = None if self.mean_level_dn is None else float(pick(self.mean_level_dn))
        if mean is not None and not math.isfinite(mean):
            mean = None
        return Observation(self.exposures[i], mean_level_dn=mean, raw=pick(self.raw),
                           histograms=pick(self.histograms), features=pick(self.features),
                           white_level_dn=int(self.white_level_dn), black_level_dn=float(self.black_level_dn))


@dataclass(frozen=True)
class ExposureDecision:
    """``adjustment_factor`` u: next effective exposure = this frame's exposure * u
    (before the controller's EMA, split and clamping). ``info``: diagnostics."""

    adjustment_factor: float
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def delta_ev(self) -> float:
        return math.log2(self.adjustment_factor)


class AutoExposureMethod(abc.ABC):
    """Base class: one AE algorithm. Stateless methods need only ``next_exposure``.

    Subclasses set ``name``, ``inputs`` and ``parameters`` (see the module docstring)."""

    name: ClassVar[str] = "base"
    inputs: ClassVar[FrozenSet[str]] = frozenset({INPUT_HISTOGRAMS})
    parameters: ClassVar[Tuple[MethodParameter, ...]] = ()
    #: True for methods whose constructor takes ``weights`` (a file; the node's ``network_weights``).
    loads_weights: ClassVar[bool] = False

    @abc.abstractmethod
    def next_exposure(self, obs: Observation) -> ExposureDecision:
        """Exposure adjustment factor for the frame after ``obs``."""

    def adjustment_factors(self, batch: FrameBatch):
        """Batched path: ``u`` for each of N independent frames, a float64 torch tensor (N,).

        Every method has it, so a benchmark runs all of them through this one call. This
        default runs ``next_exposure`` per frame after a ``reset`` (the frames are independent;
        right for the stateless classical methods); the learned methods override it with one
        forward pass of their network."""
        import torch

        us = []
        for i in range(len(batch)):
            self.reset()
            us.append(float(self.next_exposure(batch.observation(i)).adjustment_factor))
        self.reset()
        return torch.tensor(us, dtype=torch.float64)

    def reset(self) -> None:
        """Forget any internal state (new sequence)."""


_REGISTRY: Dict[str, Type[AutoExposureMethod]] = {}


def register_method(cls: Type[AutoExposureMethod]) -> Type[AutoExposureMethod]:
    """Class decorator: make ``cls`` available as ``make_method(cls.name, **params)``."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"AE method name {name!r} already registered by {_REGISTRY[name]}")
    for p in cls.parameters:
        if not p.low <= p.high:
            raise ValueError(f"AE method {name!r}: parameter {p.name} range [{p.low}, {p.high}] is empty")
    _REGISTRY[name] = cls
    return cls


def _load_builtin() -> None:
    from . import average, gradient, neural  # noqa: F401  (registers 'average', 'gradient', the *_nn methods)


def available_methods() -> List[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def method_class(name: str) -> Type[AutoExposureMethod]:
    """The registered class of AE method ``name``; the error lists the known names."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown AE method {name!r}; available: {sorted(_REGISTRY)}") from None


def method_kwargs(name: str, values: Mapping[str, Any]) -> Dict[str, Any]:
    """Constructor arguments of method ``name`` from node parameter values (by parameter name)."""
    return {p.kwarg: values[p.name] for p in method_class(name).parameters if p.name in values}


def make_method(name: str, **params: Any) -> AutoExposureMethod:
    """Create an AE method by registry name, passing ``params`` to its constructor."""
    return method_class(name)(**params)


