"""Single-shot LDR sensor model (paper 000, Section 3, Eq. 1-3) and photon-transfer figures.

Image formation, per photosite (units: docs/design.md)::

    y_e      = min(y_p(phi * t) + y_d(mu_d * t), M_well)            Eq. 1 (the paper prints
                                                                    max; clipping at the
                                                                    full well is meant)
    I_sensor = q(g * (y_e + n_pre) + n_post + black_level)          Eq. 2, g = K * g1
    q(x)     = min(floor(x + 0.5), M_white), clamped at 0            Eq. 3

* ``phi`` is the radiance in photo-electrons per second (``radiance_e_per_s``), ``t`` the
  exposure time in seconds, ``K`` the analog gain (1 at ISO 100).
* Shot noise (photons and dark current together) is Poisson. By default it is drawn with
  the Gaussian approximation ``mean + sqrt(mean) * z`` (reparameterised, so the capture is
  differentiable w.r.t. radiance, exposure time and gain); ``shot_noise='poisson'`` draws
  exact Poisson counts with a straight-through gradient (slow: evaluation only).
* ``n_pre`` (std ``read_noise_e``, electrons) and ``n_post`` (std ``post_noise_dn``, DN)
  are zero-mean Gaussians; they are independent, so they are drawn as one Gaussian of std
  ``sqrt((g * read_noise_e)^2 + post_noise_dn^2)`` DN.
* The black level pedestal is added before quantisation (it is part of the recorded DN).
* Quantisation uses a straight-through gradient for the floor (paper: "the gradient is
  computed as if floor was replaced by the identity"); the clamps to ``[0, M_white]`` and
  to the full well keep their true (zero) gradient where they are active.

Analytic photon-transfer helpers (EMVA 1288 style, valid below saturation) give the mean,
temporal variance, SNR and dynamic range the simulation must reproduce; the tests check
the Monte-Carlo capture against them.
"""
from __future__ import annotations

import math
import threading
from typing import Optional, Union

import numpy as np
import torch

from neural_ae_ros.imaging import kernels
from neural_ae_ros.imaging.sensor_params import SensorParams

__all__ = [
    "SensorParams",
    "bayer_sample_rggb",
    "quantize_ste",
    "capture",
    "capture_numpy",
    "capture_realtime",
    "warm_up_realtime",
    "saturation_dn",
    "saturation_e",
    "expected_mean_dn",
    "expected_variance_dn",
    "dark_noise_e",
    "snr_db",
    "dynamic_range_db",
]

# Floor used under the square root of the shot-noise std so that its gradient stays
# bounded for (nearly) black pixels; it adds at most 1e-3 e-^2 of variance.
_SHOT_STD_EPS_E2 = 1e-3

Number = Union[float, int]
TensorLike = Union[torch.Tensor, Number]


# ---------------------------------------------------------------------------- Bayer
def bayer_sample_rggb(rgb):
    """RGGB Bayer sampling: ``(..., 3, H, W) -> (..., H, W)``.

    R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1) of every 2 x 2 quad. Works on torch
    tensors (differentiable) and numpy arrays.
    """
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"expected shape (..., 3, H, W), got {tuple(rgb.shape)}")
    if isinstance(rgb, torch.Tensor):
        out = rgb[..., 1, :, :].clone()
    else:
        out = np.array(rgb[..., 1, :, :], copy=True)
    out[..., 0::2, 0::2] = rgb[..., 0, 0::2, 0::2]
    out[..., 1::2, 1::2] = rgb[..., 2, 1::2, 1::2]
    return out


# ---------------------------------------------------------------------------- capture
def quantize_ste(x: torch.Tensor, white_level_dn: Number) -> torch.Tensor:
    """Eq. 3 ``q(x) = min(floor(x + 0.5), M_white)`` clamped at 0, straight-through floor."""
    r = torch.floor(x + 0.5)
    if x.requires_grad:
        r = x + (r - x).detach()
    return r.clamp(0.0, float(white_level_dn))


def _as_setting(v: TensorLike, ref: torch.Tensor, what: str) -> TensorLike:
    """Exposure time / gain as python float or a tensor on ref's device and dtype."""
    if isinstance(v, torch.Tensor):
        if v.dtype != ref.dtype or v.device != ref.device:
            v = v.to(device=ref.device, dtype=ref.dtype)
        return v
    if isinstance(v, np.ndarray):
        return torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
    v = float(v)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{what}={v!r} must be finite and >= 0")
    return v


def capture(
    radiance_e_per_s,
    exposure_time_s: TensorLike,
    analog_gain: TensorLike,
    params: Optional[SensorParams] = None,
    generator: Optional[torch.Generator] = None,
    noise: bool = True,
    shot_noise: str = "gaussian",
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Simulate a 12-bit raw capture (Eq. 1-3). Returns float DN, same shape as radiance.

    Args:
        radiance_e_per_s: tensor (or numpy array) of photo-electrons per second, any shape,
            typically a Bayer mosaic ``(H, W)`` or a batch ``(B, H, W)``.
        exposure_time_s, analog_gain: python floats or tensors broadcastable against the
            radiance (e.g. shape ``(B, 1, 1)`` for a batch).
        params: sensor constants (default: ``config/sensor_imx249.yaml``, loaded once).
        generator: torch generator for reproducible noise.
        noise: ``False`` gives the noise-free expected capture (still clipped + quantised).
        shot_noise: ``'gaussian'`` (default, differentiable reparameterisation) or
            ``'poisson'`` (exact counts, straight-through gradient, slow).
        out: optional preallocated output tensor (no-gradient path only), e.g. to reuse
            one buffer per frame in a real-time loop.

    Differentiable w.r.t. radiance, exposure time and gain (straight-through quantiser).
    With no gradient required it runs in place (fast path for a single full frame).
    """
    p = params if params is not None else _default_params()
    phi = radiance_e_per_s
    if not isinstance(phi, torch.Tensor):
        phi = torch.as_tensor(np.asarray(phi), dtype=torch.float32)
    if not phi.is_floating_point():
        phi = phi.float()
    t = _as_setting(exposure_time_s, phi, "exposure_time_s")
    k = _as_setting(analog_gain, phi, "analog_gain")
    if shot_noise not in ("gaussian", "poisson"):
        raise ValueError(f"shot_noise must be 'gaussian' or 'poisson', got {shot_noise!r}")

    needs_grad = torch.is_grad_enabled() and any(
        isinstance(v, torch.Tensor) and v.requires_grad for v in (phi, t, k)
    )
    g = k * p.g1_dn_per_e  # DN / e-
    elec_std_dn = None
    if noise:
        # n_pre (e-, amplified) and n_post (DN) merged into one Gaussian, in DN.
        if isinstance(g, torch.Tensor):
            elec_std_dn = torch.sqrt((g * p.read_noise_e) ** 2 + p.post_noise_dn**2)
        else:
            elec_std_dn = math.sqrt((g * p.read_noise_e) ** 2 + p.post_noise_dn**2)

    if not needs_grad:
        with torch.no_grad():
            # Eq. 1: accumulated electrons (mean of photo + dark electrons). ``mean_e`` is
            # the output buffer; everything below works in place on it, with noise drawn
            # into per-thread scratch buffers (fresh 9 MB allocations page-fault, which
            # costs more than the arithmetic at 1920 x 1200).
            shape = torch.broadcast_shapes(
                phi.shape, *(v.shape for v in (t, k) if isinstance(v, torch.Tensor)))
            if out is not None:
                if out.shape != shape or out.dtype != phi.dtype or out.device != phi.device:
                    raise ValueError(f"out must be {phi.dtype} of shape {tuple(shape)}")
                mean_e = torch.mul(phi, t, out=out) if isinstance(t, torch.Tensor) else \
                    out.copy_(phi).mul_(t)
            else:
                mean_e = phi * t
            if p.dark_current_e_per_s:
                mean_e.add_(p.dark_current_e_per_s * t)
            if noise:
                ws, ws2 = _scratch(shape, phi.dtype, phi.device)
                if shot_noise == "gaussian":
                    torch.clamp_min(mean_e, _SHOT_STD_EPS_E2, out=ws2).sqrt_()
                    ws.normal_(generator=generator)
                    mean_e.addcmul_(ws, ws2)
                else:
                    mean_e.clamp_min_(0.0).copy_(torch.poisson(mean_e, generator=generator))
            y = mean_e.clamp_max_(p.full_well_e)
            # Eq. 2: amplify, add pre/post noise (one merged Gaussian, DN)
            x = y.mul_(g)
            if noise:
                ws.normal_(generator=generator)
                if isinstance(elec_std_dn, torch.Tensor):
                    x.addcmul_(ws, elec_std_dn)
                else:
                    x.add_(ws, alpha=elec_std_dn)
            # Eq. 3 with the black level pedestal: floor(x + black + 0.5) in [0, M_white]
            return x.add_(p.black_level_dn + 0.5).floor_().clamp_(0.0, float(p.white_level_dn))

    # Differentiable path (training).
    mean_e = phi * t + p.dark_current_e_per_s * t
    if noise:
        if shot_noise == "gaussian":
            z = torch.randn(mean_e.shape, generator=generator, dtype=phi.dtype, device=phi.device)
            y = mean_e + z * torch.sqrt(mean_e.clamp_min(_SHOT_STD_EPS_E2))
        else:
            with torch.no_grad():
                counts = torch.poisson(mean_e.detach().clamp_min(0.0), generator=generator)
            y = mean_e + (counts - mean_e).detach()
    else:
        y = mean_e
    y = torch.clamp(y, max=p.full_well_e)
    x = g * y + p.black_level_dn
    if noise:
        n = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + n * elec_std_dn
    return quantize_ste(x, p.white_level_dn)


def capture_numpy(
    radiance_e_per_s: np.ndarray,
    exposure_time_s: float,
    analog_gain: float,
    params: Optional[SensorParams] = None,
    seed: Optional[int] = None,
    noise: bool = True,
    shot_noise: str = "gaussian",
) -> np.ndarray:
    """numpy convenience around :func:`capture`: float radiance in, ``np.uint16`` DN out."""
    phi = torch.from_numpy(np.ascontiguousarray(radiance_e_per_s, dtype=np.float32))
    gen = None
    if seed is not None:
        gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        out = capture(phi, float(exposure_time_s), float(analog_gain), params, gen, noise, shot_noise)
    return out.numpy().astype(np.uint16)


# ---------------------------------------------------------------------------- real-time capture
#: Size of the per-thread pool of standard normals the real-time capture draws its noise
#: window from (32 MiB of float32); at least twice the frame.
NOISE_POOL_MIN_SIZE = 1 << 23
#: Where the real-time capture's Gaussian is cut above the full-well level, in std of the
#: electronic (read + post-amplifier) noise: see :func:`capture_realtime`.
KNEE_CLIP_ELECTRONIC_STD = 4.0


def capture_realtime(
    radiance_e_per_s,
    exposure_time_s: float,
    analog_gain: float,
    params: Optional[SensorParams] = None,
    generator: Optional[torch.Generator] = None,
    noise: bool = True,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Eq. 1-3 for one frame at camera rate: float radiance (e-/s) in, ``uint16`` DN out.

    The camera bridge's path (no gradient, one exposure per frame). It draws ONE Gaussian
    per pixel with the summed variance of Eq. 1-2's independent noises, in DN::

        mean = g * min((phi + mu_d) * t, M_well)                      (Eq. 1, 2)
        var  = g^2 * (phi + mu_d) * t  [ramped to 0 at the full well]
               + (g * sigma_pre)^2 + sigma_post^2
        DN   = q(mean + sqrt(var) * z + black)                          (Eq. 3)

    Exactness: mean and variance follow the photon-transfer curve of :func:`capture`
    (Gaussian shot noise) everywhere below the full well and above it (where only the
    electronic noise remains); the quantisation noise comes from the real rounding. In the
    knee (a mean within two shot-noise std of the full well, ~0.02 EV) :func:`capture`
    clips the shot-noised electrons before the read noise is added; here the shot variance
    ramps linearly to 0 over that band and the sum is cut at ``KNEE_CLIP_ELECTRONIC_STD``
    electronic-noise std above the full-well level.

    Noise source: ``z`` is a window of a per-thread pool of ``NOISE_POOL_MIN_SIZE`` i.i.d.
    N(0, 1) float32 (generated once, standardised to mean 0 / variance 1), at an offset and
    sign drawn from ``generator`` every frame. A pixel's noise over frames is therefore i.i.d.
    N(0, 1); what differs from fresh draws is that two frames' noise fields may be shifted
    copies of each other (no consumer of a frame can see this; it saves the 2.3 M normal
    draws that cost more than the whole rest of the capture).

    Args:
        radiance_e_per_s: ``(H, W)`` radiance mosaic (numpy or torch, float32 preferred:
            other dtypes are converted), photo-electrons per second.
        exposure_time_s, analog_gain: python floats (s, linear K).
        out: optional ``uint16`` array of the same shape to write into (reused per frame).

    Runs single-threaded in place on cached float32 buffers: 9 passes over the frame.
    """
    p = params if params is not None else _default_params()
    phi = radiance_e_per_s
    if not isinstance(phi, torch.Tensor):
        phi = torch.from_numpy(np.ascontiguousarray(phi, dtype=np.float32))
    elif phi.dtype != torch.float32:
        phi = phi.float()
    if phi.device.type != "cpu":
        phi = phi.cpu()
    t = float(exposure_time_s)
    k = float(analog_gain)
    for what, v in (("exposure_time_s", t), ("analog_gain", k)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{what}={v!r} must be finite and >= 0")
    if out is None:
        out = np.empty(tuple(phi.shape), dtype=np.uint16)
    elif out.shape != tuple(phi.shape) or out.dtype != np.uint16 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint16 array of shape {tuple(phi.shape)}")
    g = k * p.g1_dn_per_e
    full_well_dn = g * p.full_well_e
    elec_var_dn2 = (g * p.read_noise_e) ** 2 + p.post_noise_dn**2
    upper = float(p.white_level_dn) + 0.5
    offset = p.black_level_dn + 0.5  # black level pedestal + the 0.5 of Eq. 3's rounding
    full_well_level = full_well_dn + offset
    if kernels.AVAILABLE and phi.is_contiguous():
        # the same arithmetic in one compiled pass (kernels.capture_fused), no scratch buffers
        a = _knee_slope(p)
        # noise-free: no pool (building it costs ~0.3 s); the kernel never reads z then
        z, sign = _noise_window(phi.numel(), generator) if noise else (torch.zeros(1), 1.0)
        top = min(upper, full_well_level + KNEE_CLIP_ELECTRONIC_STD * math.sqrt(elec_var_dn2)) if noise else upper
        try:
            kernels.capture_fused(phi.numpy().reshape(-1), out.reshape(-1), g * t,
                                  g * p.dark_current_e_per_s * t + offset, a, full_well_level, offset, g,
                                  elec_var_dn2 - g * offset, z.numpy(), sign, top, noise)
            return out
        except kernels.KernelUnavailable:  # warned once; the torch passes below
            pass
    x, v = _scratch(phi.shape, torch.float32, phi.device)
    with torch.no_grad():
        # x = g * (phi + mu_d) * t + black + 0.5 (one pass), then the full well
        torch.add(_scalar(g * p.dark_current_e_per_s * t + offset), phi, alpha=g * t, out=x)
        if noise:
            # shot variance g * (x - offset), ramped to 0 over the knee below the full well:
            # g * (clamp(a * (S - x), offset, x) - offset), S = full-well level
            a = _knee_slope(p)
            torch.add(_scalar(a * full_well_level), x, alpha=-a, out=v)
            torch.clamp(v, min=_scalar(offset), max=x, out=v)
            x.clamp_max_(full_well_level)
            torch.add(_scalar(elec_var_dn2 - g * offset), v, alpha=g, out=v)
            vn = v.numpy()
            np.sqrt(vn, out=vn)  # numpy's sqrt is ~2x torch's on one core
            z, sign = _noise_window(phi.numel(), generator)
            x.view(-1).addcmul_(v.view(-1), z, value=sign)
            upper = min(upper, full_well_level + KNEE_CLIP_ELECTRONIC_STD * math.sqrt(elec_var_dn2))
        else:
            x.clamp_max_(full_well_level)
        # Eq. 3: floor(x) in [0, M_white] (x already holds + 0.5); truncation == floor for x >= 0
        x.clamp_(0.0, upper)
        if upper < 32768:  # int16 and uint16 bits agree below 2^15 (torch's uint16 is thin)
            torch.from_numpy(out.view(np.int16)).copy_(x)
        else:
            np.copyto(out, x.numpy(), casting="unsafe")
    return out


def warm_up_realtime(params: Optional[SensorParams] = None) -> None:
    """Load the compiled capture and build the per-thread noise pool now (~0.5 s), not on the
    first frame; draws from a throwaway generator (a seeded camera's frames stay the same)."""
    capture_realtime(np.zeros((4, 4), np.float32), 1e-3, 1.0, params, torch.Generator().manual_seed(0))


def _knee_slope(p: SensorParams) -> float:
    """Slope ``a`` of the shot-variance ramp below the full well: the variance falls from
    ``g * mean`` to 0 over the last ``2 sqrt(M_well)`` electrons (two shot-noise std there),
    as the clipped Gaussian's variance does in :func:`capture`."""
    width_e = min(2.0 * math.sqrt(p.full_well_e), 0.5 * p.full_well_e)
    return (p.full_well_e - width_e) / width_e


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32)


def _mask_scratch(shape) -> torch.Tensor:
    masks = getattr(_SCRATCH, "masks", None)
    if masks is None:
        masks = _SCRATCH.masks = {}
    key = tuple(shape)
    m = masks.get(key)
    if m is None:
        if len(masks) >= 4:
            masks.clear()
        m = masks[key] = torch.empty(key, dtype=torch.bool)
    return m


def _noise_pool(n: int) -> torch.Tensor:
    """Per-thread pool of i.i.d. standard normals (float32), at least ``2 n`` long."""
    pool = getattr(_SCRATCH, "pool", None)
    if pool is None or pool.numel() < 2 * n:
        size = max(NOISE_POOL_MIN_SIZE, 2 * n)
        z = torch.randn(size, generator=torch.Generator().manual_seed(0x5E4502), dtype=torch.float64)
        z -= z.mean()
        z /= z.std(unbiased=False)
        pool = _SCRATCH.pool = z.float()
    return pool


def _noise_window(n: int, generator: Optional[torch.Generator]):
    """(``n`` pool normals at a random offset, random sign +-1) for one frame."""
    pool = _noise_pool(n)
    draw = torch.randint(0, 2 * (pool.numel() - n + 1), (1,), generator=generator).item()
    offset, sign = draw >> 1, 1.0 if draw & 1 else -1.0
    return pool[offset:offset + n], sign


_DEFAULT_PARAMS: Optional[SensorParams] = None
_SCRATCH = threading.local()


def _scratch(shape, dtype, device):
    """Two per-thread scratch tensors of the given shape (cached, a few shapes at most)."""
    cache = getattr(_SCRATCH, "cache", None)
    if cache is None:
        cache = _SCRATCH.cache = {}
    key = (tuple(shape), dtype, str(device))
    bufs = cache.get(key)
    if bufs is None:
        if len(cache) >= 4:
            cache.clear()
        bufs = cache[key] = (
            torch.empty(shape, dtype=dtype, device=device),
            torch.empty(shape, dtype=dtype, device=device),
        )
    return bufs


def _default_params() -> SensorParams:
    global _DEFAULT_PARAMS
    if _DEFAULT_PARAMS is None:
        try:
            _DEFAULT_PARAMS = SensorParams.from_yaml()
        except FileNotFoundError:
            _DEFAULT_PARAMS = SensorParams()
    return _DEFAULT_PARAMS


# ---------------------------------------------------------------------------- analytic PTC
def saturation_e(params: SensorParams, analog_gain: float = 1.0) -> float:
    """Signal (e-) at which the output saturates: full well or the white level, first hit."""
    g = params.g1_dn_per_e * analog_gain
    return float(min(params.full_well_e, params.signal_range_dn / g))


def saturation_dn(params: SensorParams, analog_gain: float = 1.0) -> float:
    """Mean DN at saturation (noise ignored): min(black + g * M_well, M_white)."""
    g = params.g1_dn_per_e * analog_gain
    return float(min(params.black_level_dn + g * params.full_well_e, params.white_level_dn))


def expected_mean_dn(phi, exposure_time_s, analog_gain, params: SensorParams, clip: bool = True):
    """Mean recorded DN: ``black + g * (phi * t + mu_d * t)`` (photon transfer, linear part).

    With ``clip`` the result is limited to :func:`saturation_dn` (exact away from the
    saturation knee; within a few noise std of it the true mean is slightly lower).
    Accepts floats or numpy arrays.
    """
    g = np.asarray(analog_gain, dtype=np.float64) * params.g1_dn_per_e
    e = (np.asarray(phi, np.float64) + params.dark_current_e_per_s) * np.asarray(exposure_time_s, np.float64)
    mean = params.black_level_dn + g * np.minimum(e, params.full_well_e)
    if clip:
        mean = np.minimum(mean, params.white_level_dn)
    return mean if np.ndim(mean) else float(mean)


def expected_variance_dn(
    phi, exposure_time_s, analog_gain, params: SensorParams, include_quantization: bool = True
):
    """Temporal variance in DN^2 below saturation (EMVA 1288 linear model):

    ``g^2 * (phi * t + mu_d * t + sigma_pre^2) + sigma_post^2 + 1/12``

    (shot noise of photo- and dark electrons, read noise, ADC noise, uniform quantisation
    noise of 1/12 DN^2, the last valid when the total noise std is >~ 0.5 DN).
    """
    g = np.asarray(analog_gain, dtype=np.float64) * params.g1_dn_per_e
    e = (np.asarray(phi, np.float64) + params.dark_current_e_per_s) * np.asarray(exposure_time_s, np.float64)
    var = g**2 * (e + params.read_noise_e**2) + params.post_noise_dn**2
    if include_quantization:
        var = var + 1.0 / 12.0
    return var if np.ndim(var) else float(var)


def dark_noise_e(params: SensorParams, analog_gain: float = 1.0, exposure_time_s: float = 0.0) -> float:
    """Input-referred temporal dark noise (noise floor) in e-:
    ``sqrt(sigma_pre^2 + mu_d t + (sigma_post^2 + 1/12) / g^2)``."""
    g = params.g1_dn_per_e * analog_gain
    return math.sqrt(
        params.read_noise_e**2
        + params.dark_current_e_per_s * exposure_time_s
        + (params.post_noise_dn**2 + 1.0 / 12.0) / g**2
    )


def snr_db(phi, exposure_time_s, analog_gain, params: SensorParams):
    """SNR in dB, ``20 log10(g * phi * t / sqrt(var))`` (signal above the dark level)."""
    g = np.asarray(analog_gain, dtype=np.float64) * params.g1_dn_per_e
    signal = g * np.asarray(phi, np.float64) * np.asarray(exposure_time_s, np.float64)
    var = expected_variance_dn(phi, exposure_time_s, analog_gain, params)
    out = 20.0 * np.log10(signal / np.sqrt(var))
    return out if np.ndim(out) else float(out)


def dynamic_range_db(params: SensorParams, analog_gain: float = 1.0, exposure_time_s: float = 0.0) -> float:
    """DR = 20 log10(saturation signal / noise floor), both in electrons (EMVA 1288)."""
    return 20.0 * math.log10(
        saturation_e(params, analog_gain) / dark_noise_e(params, analog_gain, exposure_time_s)
    )
