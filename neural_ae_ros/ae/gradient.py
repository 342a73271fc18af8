"""Gradient-based AE after Shim et al. 2018 (paper 000 baseline "GRADIENT AE" [58]).

I. Shim, T.-H. Oh, J.-Y. Lee, J. Choi, D.-G. Choi, I. S. Kweon, "Gradient-based camera
exposure control for outdoor mobile platforms", IEEE TCSVT 29(6), 2019 (online 2018).

Per frame:

1. Image: first-green plane of the raw mosaic, block-averaged by ``downsample`` (4: a
   1920 x 1200 mosaic gives 240 x 150), black level removed, normalised to ``[0, 1]`` by
   the signal range and -- because Shim et al. work on the camera's display-referred 8-bit
   output, not on linear raw data -- encoded with ``x ** (1 / display_gamma)``
   (``display_gamma = 2.2``; set 1 to work on linear raw values).
2. Synthetic exposures: gamma-corrected images ``I ** gamma`` for the anchors
   ``gammas = (1/1.9, 1/1.5, 1/1.2, 1, 1.2, 1.5, 1.9)``.
3. Gradient information of each: with ``m`` the gradient magnitude (forward differences,
   clipped to ``[0, 1]``), ``M = sum_{m >= delta} log(lambda (m - delta) + 1) / N``,
   ``N = log(lambda (1 - delta) + 1)``, averaged over pixels; ``lambda = 1000``,
   ``delta = 0.06`` (paper 000 Section 6.1).
4. ``gamma_hat``: argmax of a 5th-order polynomial fitted to ``(gamma, M)`` over the
   anchor range (Shim et al.), evaluated on a dense grid.
5. Update, Shim et al.'s *linear* rule (the nonlinear variant with parameter d is not
   implemented): ``E_next = E * (1 + alpha * Kp * (1 - gamma_hat))`` with ``Kp = 0.5``,
   ``alpha = 1/2`` if ``gamma_hat >= 1`` else ``1``. So ``u = 1 + alpha Kp (1 - gamma_hat)``.

If no pixel has a gradient above ``delta`` at any gamma (flat, black or fully saturated
frame) the metric carries no information; then ``gamma_hat`` is set to the extreme anchor
that moves the mean level towards mid-range (``info['fallback'] = True``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import INPUT_HISTOGRAMS, INPUT_RAW, AutoExposureMethod, ExposureDecision, MethodParameter, Observation, register_method

__all__ = ["GradientAE", "block_mean_green", "gradient_information"]

DEFAULT_GAMMAS = (1 / 1.9, 1 / 1.5, 1 / 1.2, 1.0, 1.2, 1.5, 1.9)


def block_mean_green(raw: np.ndarray, factor: int) -> np.ndarray:
    """First-green plane ``raw[0::2, 1::2]`` averaged over ``factor x factor`` blocks
    (float32; trailing rows/cols that do not fill a block are dropped)."""
    g = np.asarray(raw)[0::2, 1::2]
    if factor <= 1:
        return g.astype(np.float32)
    h, w = (g.shape[0] // factor) * factor, (g.shape[1] // factor) * factor
    if h == 0 or w == 0:
        raise ValueError(f"green plane {g.shape} smaller than the downsample factor {factor}")
    g = g[:h, :w]
    cols = g[:, 0::factor].astype(np.float32)
    for j in range(1, factor):
        cols += g[:, j::factor]
    out = cols[0::factor].copy()
    for i in range(1, factor):
        out += cols[i::factor]
    out *= 1.0 / (factor * factor)
    return out


def gradient_information(images: np.ndarray, lam: float = 1000.0, delta: float = 0.06) -> np.ndarray:
    """Shim et al.'s gradient information per image, ``images``: ``(..., h, w)`` in [0, 1].

    Returns the pixel-averaged ``sum log(lam (m - delta) + 1) / N`` over pixels with
    ``m >= delta`` (``m``: forward-difference gradient magnitude clipped to 1).
    """
    gx = images[..., :-1, 1:] - images[..., :-1, :-1]
    gy = images[..., 1:, :-1] - images[..., :-1, :-1]
    m = np.sqrt(gx * gx + gy * gy)
    np.minimum(m, 1.0, out=m)
    m -= delta
    np.maximum(m, 0.0, out=m)  # below delta -> log(1) = 0
    m *= lam
    info = np.log1p(m).mean(axis=(-2, -1))
    return info / math.log(lam * (1.0 - delta) + 1.0)


@register_method
class GradientAE(AutoExposureMethod):
    name = "gradient"
    inputs = frozenset({INPUT_HISTOGRAMS, INPUT_RAW})
    parameters = (
        MethodParameter("gradient_lambda", "lam", float, 1.0, 1e5, "Shim et al. 2018 lambda (gradient metric)."),
        MethodParameter("gradient_delta", "delta", float, 0.0, 0.99,
                        "Shim et al. 2018 delta: gradient activation threshold."),
        MethodParameter("gradient_kp", "kp", float, 0.01, 2.0, "Shim et al. 2018 proportional gain Kp."),
    )

    def __init__(
        self,
        lam: float = 1000.0,
        delta: float = 0.06,
        kp: float = 0.5,
        gammas: Sequence[float] = DEFAULT_GAMMAS,
        poly_degree: int = 5,
        downsample: int = 4,
        display_gamma: float = 2.2,
        grid_points: int = 201,
    ) -> None:
        gam = np.asarray(sorted(float(g) for g in gammas), dtype=np.float64)
        if gam.size < 2 or np.any(gam <= 0):
            raise ValueError(f"gammas={gammas!r}: need >= 2 positive values")
        if not (lam > 0 and 0 <= delta < 1 and kp > 0 and display_gamma > 0):
            raise ValueError("need lam > 0, 0 <= delta < 1, kp > 0, display_gamma > 0")
        if int(downsample) < 1:
            raise ValueError(f"downsample={downsample!r} must be >= 1")
        self.lam, self.delta, self.kp = float(lam), float(delta), float(kp)
        self.gammas = gam
        self.poly_degree = int(min(poly_degree, gam.size - 1))
        self.downsample = int(downsample)
        self.display_gamma = float(display_gamma)
        self._grid = np.linspace(gam[0], gam[-1], int(grid_points))

    # ------------------------------------------------------------------ pieces
    def normalized_image(self, obs: Observation) -> np.ndarray:
        if obs.raw is None:
            raise ValueError(f"frame {obs.frame_index}: gradient AE needs the raw mosaic (obs.raw)")
        g = block_mean_green(obs.raw, self.downsample)
        black, white = float(obs.black_level_dn), float(obs.white_level_dn)
        g -= black
        g *= 1.0 / (white - black)
        np.clip(g, 0.0, 1.0, out=g)
        if self.display_gamma != 1.0:
            np.power(g, 1.0 / self.display_gamma, out=g)
        return g

    def metric_per_gamma(self, img: np.ndarray) -> np.ndarray:
        log_img = np.log(np.maximum(img, 1e-6))
        stack = np.exp(self.gammas.astype(np.float32)[:, None, None] * log_img[None])
        return gradient_information(stack, self.lam, self.delta)

    def best_gamma(self, metric: np.ndarray) -> float:
        scale = float(metric.max())
        coeffs = np.polyfit(self.gammas, metric / scale, self.poly_degree)
        values = np.polyval(coeffs, self._grid)
        return float(self._grid[int(np.argmax(values))])

    def adjustment_from_gamma(self, gamma_hat: float) -> float:
        alpha = 0.5 if gamma_hat >= 1.0 else 1.0
        return 1.0 + alpha * self.kp * (1.0 - gamma_hat)

    # ------------------------------------------------------------------ interface
    def next_exposure(self, obs: Observation) -> ExposureDecision:
        img = self.normalized_image(obs)
        metric = self.metric_per_gamma(img)
        fallback = not (metric.max() > 1e-12)
        if fallback:
            # no usable gradients at any gamma: push the (display) mean towards mid-grey
            gamma_hat = float(self.gammas[-1] if img.mean() > 0.5 else self.gammas[0])
        else:
            gamma_hat = self.best_gamma(metric)
        u = self.adjustment_from_gamma(gamma_hat)
        return ExposureDecision(
            adjustment_factor=u,
            info={"gamma_hat": gamma_hat, "fallback": fallback,
                  "metric": dict(zip(self.gammas.round(4).tolist(), metric.tolist()))},
        )
