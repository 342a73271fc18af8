"""Absolute radiance scale of every generated scene, and the sun's photometric constants.

Every array this package returns is ``radiance_e_per_s``: linear RGB photo-electrons per
second at one photosite of the target sensor (IMX249-like, ``config/sensor_imx249.yaml``: full
well 32.5 ke-, 0.12 DN/e- at K = 1, 12 bit). Optics and quantum efficiency are folded into one
constant::

    1 cd/m^2  ==  E_PER_S_PER_NIT = 2300 e-/s      (per colour channel, for a white source)

so that scene levels can be set from photometric facts:

============================================  ==========  =====================
surface / source                              cd/m^2      e-/s
============================================  ==========  =====================
white Lambertian, full sun (100 klux)         3.2e4       7.3e7
sun-lit asphalt (albedo 0.1): "daylight road" 3.2e3       7.3e6  (mean day frame ~1e7)
clear sky near the horizon                    6e3         1.4e7
sun disc                                      1.6e9       3.7e12
circumsolar sky 1 deg from the sun            ~1e6        ~2e9
tunnel interior road (~150 lux)               ~5          ~1e4
street-lit road at night (~20 lux)            ~1-2        ~3e3
urban night sky (sky glow)                    0.02-0.1    50-250
headlamp seen by oncoming traffic             2e4-1.5e5   0.5-3.5e8
traffic-light signal / brake light            ~1-3e4      ~3-7e7
tail light (night)                            ~2e3        ~5e6
============================================  ==========  =====================

So about 1 ms at K = 1 puts a daylight road frame at mid grey (0.5 M_white); night scenes are
1e3-1e4x darker by median luminance (much less by mean, which their lamps and headlights
dominate), and emitters / the sun are 3-6 orders of magnitude above the diffuse surfaces around
them, as in real driving.
"""
from __future__ import annotations

import math

import numpy as np

E_PER_S_PER_NIT = 2300.0
#: white Lambertian radiance under direct sun at normal incidence (~90 klux), e-/s
SUN_WHITE = 2.9e4 * E_PER_S_PER_NIT
SUN_DISC_NITS = 1.6e9
SUN_RADIUS_DEG = 0.27


def nits_to_e_per_s(v):
    """Luminance in cd/m^2 (nits) -> radiance in e-/s per photosite (float64, any shape)."""
    return np.asarray(v, np.float64) * E_PER_S_PER_NIT


def dynamic_range_db(radiance: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.9) -> float:
    """Scene dynamic range: 20 log10(P_hi / P_lo) of the luminance, dB.

    Luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of a ``(3, H, W)`` radiance; percentiles by
    ``numpy.percentile`` (linear interpolation). ``P_lo`` is floored at 1e-12 of ``P_hi``.
    """
    r = np.asarray(radiance, np.float64)
    y = 0.2126 * r[0] + 0.7152 * r[1] + 0.0722 * r[2]
    lo, hi = np.percentile(y, [lo_pct, hi_pct])
    hi = max(float(hi), 1e-30)
    lo = max(float(lo), hi * 1e-12)
    return float(20.0 * math.log10(hi / lo))
