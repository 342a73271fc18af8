"""Latent HDR from bracketed LDR captures (paper 000, Eq. 7) and noise adaptation (Section 5.2).

Merge (Eq. 7)
-------------
Each LDR image ``J_i`` (values in [0, 1] after the inverse tone curve ``phi``, i.e. linear) is
scaled by its exposure factor ``alpha_i = 1 / (K_i * t_i)``: ``I_i = alpha_i * phi(J_i)``. The
latent HDR image is the minimum-variance unbiased combination::

    I_hdr = sum_i w_i I_i / sum_i w_i,     w_i = delta(J_i < M_white) / (alpha_i^2 * V_unsat)

``V_unsat`` is the noise variance of an unsaturated LDR value. With the paper's constant
``V_unsat`` the weights are ``(K_i t_i)^2``: the longest unsaturated exposure dominates.
Passing a Poisson-Gaussian model ``V(J) = shot * J + floor`` (``noise_model=(shot, floor)``)
gives the exact minimum-variance weights per pixel. Saturated samples (``J_i >=
saturation``) are excluded per channel; where all brackets are saturated the shortest one is
used as a lower bound and ``saturated_all`` marks the pixel. :func:`merge_exposures` also
returns the variance of ``I_hdr`` (``1 / sum_i w_i``), which noise adaptation needs.
``I_hdr`` is in "full scale per second" (``J = 1`` over 1 s at K = 1); multiply by
``radiance_scale`` (``gamma`` of Section 5.2: e-/s per unit, the capture camera's full scale
in electrons for normalised inputs) to get ``radiance_e_per_s``.

The merge runs in float32 and in place (:class:`Eq7Accumulator`: one bracket at a time, any
number of brackets), so a 1920 x 1200 frame of N brackets needs about three float32 frames
beside the brackets being read (``benchmarks/bench_hdr_merge.py`` prints time and peak memory).

Responses and linearity
-----------------------
``phi`` is explicit (:class:`Response`): ``linear``, ``srgb`` (IEC 61966-2-1) or a table file
(:func:`read_response_table`), after the black and white levels. Real bracket sets are often
display-coded although called raw; :func:`check_linearity` compares, on pixels well exposed
in two brackets, the level ratio with the exposure ratio (log-slope 1 when linear, 0.4-0.6 for
sRGB-coded data read as linear) so that the caller can warn with the numbers.

Bracket folders (:func:`merge_folder`) are described by a manifest; its format is in
:mod:`neural_ae_ros.scenes.user_data`.

Noise adaptation and augmentation (Section 5.2)
-----------------------------------------------
A capture simulated from ``I_hdr`` at exposure ``t``, gain ``K`` should have the *target*
sensor's noise (Eq. 2: shot noise, read noise ``n_pre``, post-gain noise ``n_post``). The
latent HDR already carries noise of variance ``Var[I_hdr] * (radiance_scale * t)^2`` (in
electrons), so :func:`capture_adapted` adds only ``max(s^2 * V_target - V_source, 0)``, where
``s`` is the noise strength: ``s = 1`` is noise adaptation, ``s`` drawn log-uniformly around 1
by :func:`sample_noise_strength` is noise augmentation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "srgb_to_linear",
    "linear_to_srgb",
    "merge_exposures",
    "MergeResult",
    "merge_folder",
    "Eq7Accumulator",
    "Response",
    "read_response_table",
    "check_linearity",
    "LinearityCheck",
    "synthesize_brackets",
    "source_noise_e2",
    "target_noise_e2",
    "adapted_noise_std_e",
    "capture_adapted",
    "sample_noise_strength",
    "base_exposure_s",
]


# --------------------------------------------------------------------------- tone curve
def srgb_to_linear(v):
    """Inverse sRGB transfer curve (IEC 61966-2-1) on values in [0, 1]."""
    v = np.clip(np.asarray(v, np.float64), 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v):
    v = np.clip(np.asarray(v, np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


# --------------------------------------------------------------------------------- merge
class MergeResult(tuple):
    """``(hdr, variance, saturated_all)``; attribute access too."""

    def __new__(cls, hdr, variance, saturated_all):
        return super().__new__(cls, (hdr, variance, saturated_all))

    hdr = property(lambda s: s[0])
    variance = property(lambda s: s[1])
    saturated_all = property(lambda s: s[2])


class Eq7Accumulator:
    """Eq. 7 over any number of brackets, one linear image at a time (float32, in place).

    Memory: three float32 frames (numerator, denominator, one temporary) plus a reference to
    the shortest bracket seen so far, whatever the number of brackets; a caller that reads
    one bracket, :meth:`add` s it and drops it keeps at most two decoded brackets alive.
    """

    def __init__(self, saturation: float = 0.98, v_unsat: float = 1.0, noise_model: Optional[tuple] = None):
        if not 0.0 < saturation <= 1.0:
            raise ValueError(f"saturation={saturation} must lie in (0, 1] (fraction of full scale)")
        if noise_model is None and not v_unsat > 0:
            raise ValueError(f"v_unsat={v_unsat} must be > 0")
        self.saturation = float(saturation)
        self.v_unsat = float(v_unsat)
        self.noise_model = None if noise_model is None else (float(noise_model[0]), float(noise_model[1]))
        self._num = self._den = self._tmp = None
        self._shortest = None  # (effective exposure, image)
        self.count = 0

    def add(self, image: np.ndarray, exposure_time_s: float, analog_gain: float = 1.0) -> None:
        """Add one bracket ``J`` (linear, [0, 1] of full scale) taken at ``K t``."""
        e = float(exposure_time_s) * float(analog_gain)
        if not math.isfinite(e) or e <= 0:
            raise ValueError(f"exposure time x gain must be > 0, got {exposure_time_s} s x {analog_gain}")
        J = np.asarray(image, np.float32)
        if self._num is None:
            self._num = np.zeros(J.shape, np.float32)
            self._den = np.zeros(J.shape, np.float32)
            self._tmp = np.empty(J.shape, np.float32)
        elif J.shape != self._num.shape:
            raise ValueError(f"image shapes differ: {J.shape} vs {self._num.shape}")
        w, tmp = self._tmp, None
        np.less(J, self.saturation, out=w, casting="unsafe")  # delta(J < M_white): 0 / 1
        if self.noise_model is not None:  # w = delta / (alpha^2 V(J)), V = shot J + floor
            shot, floor = self.noise_model
            tmp = np.clip(J, 0.0, 1.0)
            tmp *= np.float32(shot)
            tmp += np.float32(floor)
            np.divide(w, tmp, out=w)
            w *= np.float32(e * e)
        else:
            w *= np.float32(e * e / self.v_unsat)
        self._den += w
        w *= J  # w J / e = w alpha J
        w *= np.float32(1.0 / e)
        self._num += w
        if self._shortest is None or e < self._shortest[0]:
            self._shortest = (e, J)
        self.count += 1

    def result(self) -> MergeResult:
        """``(I_hdr, Var[I_hdr], saturated_all)`` in full scale per second (``J / (K t)``)."""
        if self._num is None:
            raise ValueError("no brackets added")
        den = self._den
        sat_all = den <= 0
        e0, J0 = self._shortest
        hdr = self._num  # reused: the accumulator is spent
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(hdr, den, out=hdr)
            var = np.divide(np.float32(1.0), den)
        if sat_all.any():  # every bracket saturated: the shortest gives a lower bound
            hdr[sat_all] = J0[sat_all] / np.float32(e0)
            var[sat_all] = np.inf
        self._num = self._den = self._tmp = None
        return MergeResult(hdr, var, sat_all)


def merge_exposures(images: Sequence[np.ndarray], exposure_times_s: Sequence[float],
                    analog_gains: Optional[Sequence[float]] = None, saturation: float = 0.98,
                    v_unsat: float = 1.0, noise_model: Optional[tuple] = None) -> MergeResult:
    """Eq. 7 merge of N >= 1 linear LDR images ``J_i`` in [0, 1] (any shape, all the same).

    Returns ``(I_hdr, Var[I_hdr], saturated_all)`` float32; ``I_hdr = J / (K t)`` units.
    """
    if len(images) < 1 or len(images) != len(exposure_times_s):
        raise ValueError("need one exposure time per image")
    gains = [1.0] * len(images) if analog_gains is None else list(analog_gains)
    if len(gains) != len(images):
        raise ValueError("need one analog gain per image")
    e = [float(t) * float(k) for t, k in zip(exposure_times_s, gains)]
    if not all(math.isfinite(x) and x > 0 for x in e):
        raise ValueError(f"exposure times and gains must be > 0, got effective exposures {e}")
    acc = Eq7Accumulator(saturation, v_unsat, noise_model)
    for J, t, k in zip(images, exposure_times_s, gains):
        acc.add(J, t, k)
    return acc.result()


# ------------------------------------------------------------------------ response curves
RESPONSES = ("linear", "srgb")


def srgb_to_linear_f32(v: np.ndarray) -> np.ndarray:
    """Inverse sRGB curve in float32 (for float inputs; integer files go through a table)."""
    v = np.clip(np.asarray(v, np.float32), 0.0, 1.0)
    out = np.power((v + np.float32(0.055)) / np.float32(1.055), np.float32(2.4))
    low = v <= 0.04045
    out[low] = v[low] / np.float32(12.92)
    return out


def read_response_table(path) -> tuple:
    """A response table: ``(code, linear)`` float64 arrays, both in [0, 1], strictly increasing.

    File format (text/CSV): one ``code,linear`` pair per line (comma, space or tab separated);
    ``code`` is the normalised code value ``(value - black_level) / (white_level - black_level)``,
    ``linear`` the relative exposure it stands for (1 at full scale); lines starting with ``#``
    and a non-numeric header line are skipped. The first row must be code 0, the last code 1;
    values in between are interpolated linearly.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: response table not found")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in line.replace(",", " ").replace("\t", " ").split(" ") if p]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            if not rows:
                continue  # header
            raise ValueError(f"{path}:{n}: not two numbers: {line!r}") from None
        if len(vals) != 2:
            raise ValueError(f"{path}:{n}: expected 'code,linear', got {line!r}")
        rows.append(vals)
    if len(rows) < 2:
        raise ValueError(f"{path}: a response table needs at least 2 rows (code 0 and code 1)")
    code, lin = (np.array(c, np.float64) for c in zip(*rows))
    if code[0] != 0.0 or code[-1] != 1.0:
        raise ValueError(f"{path}: codes must run from 0 to 1 (normalised), got {code[0]} .. {code[-1]}")
    if np.any(np.diff(code) <= 0) or np.any(np.diff(lin) <= 0):
        raise ValueError(f"{path}: code and linear columns must both increase strictly")
    if lin[0] < 0 or not np.isfinite(lin).all():
        raise ValueError(f"{path}: linear values must be finite and >= 0")
    return code, lin


class Response:
    """Inverse response ``phi`` (code values -> linear [0, 1]) with black and white levels.

    ``kind``: ``"linear"``, ``"srgb"`` or ``"table"`` (``table``: from :func:`read_response_table`).
    Integer images go through a lookup table over every code value (one gather per pixel).
    """

    def __init__(self, kind: str, black_level: float, white_level: float, table: Optional[tuple] = None,
                 source: str = ""):
        if kind not in RESPONSES + ("table",):
            raise ValueError(f"response must be 'linear', 'srgb' or a table file, got {kind!r}")
        if kind == "table" and table is None:
            raise ValueError("a table response needs its table")
        if not (math.isfinite(black_level) and math.isfinite(white_level) and white_level > black_level >= 0):
            raise ValueError(f"need 0 <= black_level < white_level, got black {black_level}, white {white_level}")
        self.kind, self.black_level, self.white_level = kind, float(black_level), float(white_level)
        self.table, self.source = table, source or kind
        self._luts: dict = {}

    def _curve(self, v: np.ndarray) -> np.ndarray:
        """Normalised code (float32, clipped to [0, 1]) -> linear float32."""
        if self.kind == "linear":
            return v
        if self.kind == "srgb":
            return srgb_to_linear_f32(v)
        code, lin = self.table
        return np.interp(v, code, lin / lin[-1]).astype(np.float32)

    def _normalise(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, np.float32) - np.float32(self.black_level)
        v *= np.float32(1.0 / (self.white_level - self.black_level))
        return np.clip(v, 0.0, 1.0, out=v)

    def linearise(self, x: np.ndarray) -> np.ndarray:
        """Code values of a file (any shape) -> linear float32 in [0, 1] of full scale."""
        x = np.asarray(x)
        if x.dtype in (np.uint8, np.uint16):
            lut = self._luts.get(x.dtype)
            if lut is None:
                lut = self._luts[x.dtype] = self._curve(self._normalise(np.arange(np.iinfo(x.dtype).max + 1)))
            return lut[x]
        return self._curve(self._normalise(x))


# ------------------------------------------------------------------- response linearity
@dataclass
class LinearityCheck:
    """Exposure ratio vs level ratio of two brackets on pixels well exposed in both."""

    short_index: int
    long_index: int
    exposure_ratio: float
    level_ratio: float  # median of J_long / J_short over ``pixels``
    pixels: int
    log_slope: float  # log(level_ratio) / log(exposure_ratio): 1 for a linear response

    def describe(self) -> str:
        return (f"brackets {self.long_index} vs {self.short_index}: exposure ratio {self.exposure_ratio:.3g}, "
                f"level ratio {self.level_ratio:.3g} (median over {self.pixels} well-exposed pixels), "
                f"log-slope {self.log_slope:.2f}")


#: Linear values counted as well exposed in the linearity check (above the noise floor, below clipping).
WELL_EXPOSED = (0.02, 0.8)
#: ``|log_slope - 1|`` above which the response is reported as not linear.
LINEARITY_TOLERANCE = 0.1
#: Fewest pixels, well exposed in both brackets, to judge a pair.
LINEARITY_MIN_PIXELS = 500


def check_linearity(images: Sequence[np.ndarray], effective_exposures_s: Sequence[float],
                    well_exposed=WELL_EXPOSED, stride: int = 3) -> list:
    """:class:`LinearityCheck` for each pair of exposure-adjacent brackets (linearised images).

    For linear data ``J_long / J_short = e_long / e_short``; display-coded data declared linear
    gives about ``(e_long / e_short)^(1/2.2)`` (log-slope 0.4-0.6: 0.54 measured on mid-tones). Pairs whose exposure ratio is
    below 1.2 or with fewer than :data:`LINEARITY_MIN_PIXELS` pixels well exposed in both are
    skipped. ``stride`` subsamples rows and columns (speed).
    """
    order = np.argsort(np.asarray(effective_exposures_s, np.float64))
    lo, hi = well_exposed
    out = []
    for a, b in zip(order[:-1], order[1:]):
        ratio = float(effective_exposures_s[b]) / float(effective_exposures_s[a])
        if ratio < 1.2:
            continue
        js = np.asarray(images[a])[..., ::stride, ::stride].ravel()
        jl = np.asarray(images[b])[..., ::stride, ::stride].ravel()
        ok = (js > lo) & (js < hi) & (jl > lo) & (jl < hi)
        n = int(ok.sum())
        if n < LINEARITY_MIN_PIXELS:
            continue
        level = float(np.median(jl[ok] / js[ok]))
        out.append(LinearityCheck(int(a), int(b), ratio, level, n, math.log(level) / math.log(ratio)))
    return out


def nonlinear(checks: Sequence[LinearityCheck], tolerance: float = LINEARITY_TOLERANCE) -> list:
    """The checks whose log-slope is off 1 by more than ``tolerance``."""
    return [c for c in checks if abs(c.log_slope - 1.0) > tolerance]


# ------------------------------------------------------------------------------ folders
def merge_folder(folder, frames: Optional[Sequence[str]] = None, manifest=None, **overrides):
    """Merge every frame of a bracket folder (manifest format: :mod:`neural_ae_ros.scenes.user_data`).

    Yields ``(frame_name, radiance (3, H, W) float32, variance (3, H, W) float32)`` with
    radiance in e-/s (the manifest's or ``overrides``' ``radiance_scale``, else the stated
    assumption) and its Eq. 7 variance in (e-/s)^2. ``overrides``: keyword arguments of
    :func:`neural_ae_ros.scenes.user_data.read_bracket_manifest` (``response``,
    ``black_level``, ``white_level``, ``radiance_scale``, ...).
    """
    from neural_ae_ros.scenes.user_data import BracketSet, read_bracket_manifest

    spec = read_bracket_manifest(folder, manifest=manifest, **overrides)
    bs = BracketSet(spec)
    names = None if frames is None else set(frames)
    for i, fr in enumerate(spec.frames):
        if names is not None and fr.name not in names:
            continue
        merged = bs.merge(i)
        yield fr.name, merged.radiance_e_per_s, merged.variance


def synthesize_brackets(radiance: np.ndarray, exposure_times_s: Sequence[float], full_scale: float,
                        analog_gains: Optional[Sequence[float]] = None, shot: float = 0.0, floor: float = 0.0,
                        rng: Optional[np.random.Generator] = None, encoding: str = "linear",
                        bits: Optional[int] = None) -> list:
    """LDR brackets of a known radiance, for tests: ``J_i = clip(radiance * K_i t_i / full_scale + noise)``.

    Noise is Gaussian with variance ``shot * J + floor`` (normalised units); ``encoding='srgb'``
    applies the sRGB curve and ``bits`` quantises (8 for JPEG-like data).
    """
    rng = rng or np.random.default_rng(0)
    gains = [1.0] * len(exposure_times_s) if analog_gains is None else analog_gains
    out = []
    for t, k in zip(exposure_times_s, gains):
        J = np.asarray(radiance, np.float64) * t * k / full_scale
        if shot or floor:
            J = J + rng.standard_normal(J.shape) * np.sqrt(shot * np.clip(J, 0, None) + floor)
        J = np.clip(J, 0.0, 1.0)
        if encoding == "srgb":
            J = linear_to_srgb(J)
        if bits:
            q = 2 ** bits - 1
            J = np.floor(J * q + 0.5) / q
        out.append(J)
    return out


# ------------------------------------------------------------------- noise adaptation
def _p(params):
    if params is None:
        from neural_ae_ros.imaging.sensor import SensorParams

        return SensorParams.from_yaml()
    return params


def target_noise_e2(signal_e, analog_gain: float, params=None):
    """Variance (e-^2, referred to the photosite) of the target sensor at mean signal ``signal_e``.

    Eq. 2: shot (Poisson, = signal incl. dark electrons) + ``read_noise_e^2`` + ``(post_noise_dn /
    g)^2`` + quantisation ``1/12 / g^2``.
    """
    p = _p(params)
    g = p.g1_dn_per_e * float(analog_gain)
    return np.maximum(signal_e, 0) + p.read_noise_e ** 2 + (p.post_noise_dn ** 2 + 1.0 / 12.0) / (g * g)


def source_noise_e2(hdr_variance, radiance_scale: float, exposure_time_s: float):
    """Noise already in the latent HDR, as electrons^2 of a capture at ``exposure_time_s``."""
    return np.asarray(hdr_variance, np.float64) * (radiance_scale * exposure_time_s) ** 2


def adapted_noise_std_e(signal_e, source_var_e2, analog_gain: float, params=None, strength: float = 1.0):
    """Std (e-) of the Gaussian noise to add so the total matches ``strength^2`` x the target."""
    tgt = target_noise_e2(signal_e, analog_gain, params) * strength ** 2
    return np.sqrt(np.maximum(tgt - np.asarray(source_var_e2, np.float64), 0.0))


def capture_adapted(radiance_e_per_s, source_var_e2_per_s2, exposure_time_s: float, analog_gain: float,
                    params=None, strength: float = 1.0, generator=None):
    """Eq. 1-3 capture (DN, torch float) of an already-noisy radiance with adapted noise.

    ``radiance_e_per_s``: mosaic or RGB tensor/array (e-/s); ``source_var_e2_per_s2``: its noise
    variance ((e-/s)^2, same shape or broadcastable; e.g. ``MergeResult.variance * scale^2``).
    Only ``max(strength^2 V_target - V_source, 0)`` of noise is added (Gaussian, electrons),
    then full-well clipping, gain, black level and quantisation as in :func:`sensor.capture`.
    """
    import torch

    from neural_ae_ros.imaging.sensor import quantize_ste

    p = _p(params)
    phi = torch.as_tensor(np.asarray(radiance_e_per_s, np.float32)) if not isinstance(radiance_e_per_s, torch.Tensor) \
        else radiance_e_per_s.float()
    var_src = torch.as_tensor(np.asarray(source_var_e2_per_s2, np.float32)) \
        if not isinstance(source_var_e2_per_s2, torch.Tensor) else source_var_e2_per_s2.float()
    t = float(exposure_time_s)
    g = p.g1_dn_per_e * float(analog_gain)
    mean_e = phi * t + p.dark_current_e_per_s * t
    tgt = (mean_e.clamp_min(0) + p.read_noise_e ** 2 + (p.post_noise_dn ** 2 + 1.0 / 12.0) / (g * g)) * strength ** 2
    # the quantisation step itself adds 1/12 DN^2 below, so it is not added as Gaussian noise
    add = (tgt - var_src * t * t - 1.0 / 12.0 / (g * g)).clamp_min(0)
    z = torch.randn(phi.shape, generator=generator, dtype=phi.dtype)
    y = (mean_e + z * add.sqrt()).clamp(max=p.full_well_e)
    x = g * y + p.black_level_dn
    return quantize_ste(x, p.white_level_dn)


def sample_noise_strength(rng: np.random.Generator, spread: float = 2.0, size=None):
    """Noise augmentation strength: log-uniform in ``[1/spread, spread]`` around 1 (1 = adaptation only)."""
    if spread < 1:
        raise ValueError("spread must be >= 1")
    return np.exp(rng.uniform(-math.log(spread), math.log(spread), size=size))


def base_exposure_s(radiance_e_per_s, params=None, analog_gain: float = 1.0) -> float:
    """e_base of paper 000 Section 5.3 for the target sensor (see :func:`exposure.base_exposure_s`)."""
    from neural_ae_ros.imaging.exposure import base_exposure_s as _base

    p = _p(params)
    return _base(radiance_e_per_s, p.g1_dn_per_e, p.white_level_dn, analog_gain)
