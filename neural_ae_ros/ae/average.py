"""Average-based AE (paper 000 Section 6.1, baseline "AVERAGE AE", after ARM Mali C71).

``u = target / I_mean`` with ``I_mean`` the mean raw level *above the black level* of the
first-green plane and ``target = target_fraction * (M_white - black)``. With
``target_fraction = 0.5`` and no pedestal this is the paper's ``0.5 * M_white / I_mean``;
with a pedestal the target is the middle of the usable signal range.

``I_mean`` is ``Observation.mean_level_dn``: the mean of the first-green plane (the same
pixels the histograms use), a luminance proxy for "the mean pixel value of the raw frame".
"""
from __future__ import annotations

import math

from .base import INPUT_HISTOGRAMS, AutoExposureMethod, ExposureDecision, MethodParameter, Observation, register_method

__all__ = ["AverageAE"]


@register_method
class AverageAE(AutoExposureMethod):
    name = "average"
    inputs = frozenset({INPUT_HISTOGRAMS})
    parameters = (
        MethodParameter("target_level_fraction", "target_fraction", float, 0.05, 0.95,
                        "Average AE target: mean raw level above black as a fraction of the signal range "
                        "(paper 000: 0.5)."),
    )

    def __init__(self, target_fraction: float = 0.5, max_adjustment: float = 16.0,
                 min_level_dn: float = 0.5) -> None:
        if not (0.0 < target_fraction < 1.0):
            raise ValueError(f"target_fraction={target_fraction!r} must be in (0, 1)")
        if not (max_adjustment >= 1.0):
            raise ValueError(f"max_adjustment={max_adjustment!r} must be >= 1")
        if not (min_level_dn > 0):
            raise ValueError(f"min_level_dn={min_level_dn!r} must be > 0")
        self.target_fraction = float(target_fraction)
        self.max_adjustment = float(max_adjustment)
        self.min_level_dn = float(min_level_dn)

    def next_exposure(self, obs: Observation) -> ExposureDecision:
        mean = obs.green_mean_dn()
        signal_range = float(obs.white_level_dn) - float(obs.black_level_dn)
        target = self.target_fraction * signal_range
        level = mean - float(obs.black_level_dn)
        # guard: black (or below-pedestal) frames -> largest allowed step up
        u = target / max(level, self.min_level_dn) if math.isfinite(level) else 1.0
        u = min(max(u, 1.0 / self.max_adjustment), self.max_adjustment)
        return ExposureDecision(
            adjustment_factor=u,
            info={"mean_level_dn": mean, "target_level_dn": target + float(obs.black_level_dn)},
        )
