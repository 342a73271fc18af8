"""Compiled per-pixel kernels for the camera-rate paths (numba; optional).

Two loops that numpy/torch can only express as several passes over a full frame:

* :func:`capture_fused` -- the real-time sensor capture of :func:`sensor.capture_realtime`
  (Eq. 1-3 with one summed Gaussian) in ONE pass: radiance (e-/s, float32) in, DN (uint16) out.
* :func:`green_region_histograms` -- the 59 x 256 histogram stack (:mod:`histograms`) and the
  exact green sum in ONE pass over the first-green plane (counts per refinement cell, then
  each cell's counts added to the regions holding it).

The histogram counts are the same integers as the multi-pass code's; the capture does the same
float32 arithmetic, which differs from torch's (fused multiply-adds) by at most 1 DN on about
1e-5 of the pixels. The tests compare both. ``AVAILABLE`` is False when numba is not installed,
or after it failed to import or compile (:class:`KernelUnavailable`): the callers then take
their torch/numpy paths. Compiled code is cached next to this file (``__pycache__``), so only
the first process after an install pays the ~2 s compile.
"""
from __future__ import annotations

import importlib.util
import threading
import warnings

import numpy as np

__all__ = ["AVAILABLE", "KernelUnavailable", "capture_fused", "green_region_histograms"]

#: numba is imported (~0.3 s) and the loops compiled or loaded from the cache only on first use.
AVAILABLE = importlib.util.find_spec("numba") is not None

#: Interleaved sub-histograms in :func:`green_region_histograms`: neighbouring pixels usually fall in
#: the same bin, and counting them into different copies avoids stalling on the previous store.
_COPIES = 4

_COMPILED = {}
_LOCK = threading.Lock()


class KernelUnavailable(RuntimeError):
    """numba could not be imported or could not compile a loop; the caller takes its torch/numpy
    path (``AVAILABLE`` is False from then on, and a warning said why once)."""


def _run(fn, *args):
    """Call ``fn`` compiled by numba (nopython, cached on disk; compiled once per process and
    argument types). Raises :class:`KernelUnavailable` where numba fails."""
    global AVAILABLE
    name = fn.__name__
    try:
        jit = _COMPILED.get(name)
        if jit is None:
            with _LOCK:
                jit = _COMPILED.get(name)
                if jit is None:
                    jit = _COMPILED[name] = _jit(fn)
        return jit(*args)
    except Exception as exc:  # noqa: BLE001 - import, typing or lowering errors of numba
        if not _is_numba_failure(exc):
            raise
        AVAILABLE = False
        warnings.warn(f"neural_ae_ros.imaging.kernels: numba failed on {name} ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}); using the slower torch/numpy path",
                      RuntimeWarning, stacklevel=3)
        raise KernelUnavailable(str(exc)) from exc


def _jit(fn):
    import numba

    try:
        return numba.njit(cache=True, nogil=True, boundscheck=False)(fn)
    except RuntimeError as exc:  # no writable cache location (a read-only install): compile per process
        warnings.warn(f"neural_ae_ros.imaging.kernels: {exc}; compiling {fn.__name__} in every process "
                      "(~2 s; set NUMBA_CACHE_DIR to a writable folder to cache it)", RuntimeWarning, stacklevel=4)
        return numba.njit(cache=False, nogil=True, boundscheck=False)(fn)


def _is_numba_failure(exc: Exception) -> bool:
    if isinstance(exc, ImportError):
        return True
    try:
        from numba.core.errors import NumbaError
    except ImportError:
        return True
    return isinstance(exc, NumbaError)


def _capture_loop(phi, out, gain_t, add0, knee_a, full_well_level, offset, g, elec_minus_g_offset,
                  z, sign, upper, noise):  # pragma: no cover - compiled
    n = phi.size
    for i in range(n):
        x = np.float32(phi[i] * gain_t + add0)
        if noise:
            v = np.float32(knee_a * full_well_level - knee_a * x)
            if v < offset:
                v = offset
            if v > x:
                v = x
            if x > full_well_level:
                x = full_well_level
            v = np.float32(v * g + elec_minus_g_offset)
            x = np.float32(x + np.float32(np.sqrt(v)) * z[i] * sign)
        elif x > full_well_level:
            x = full_well_level
        if x < 0.0:
            x = np.float32(0.0)
        if x > upper:
            x = upper
        out[i] = np.uint16(x)


def capture_fused(phi: np.ndarray, out: np.ndarray, gain_t: float, add0: float, knee_a: float,
                  full_well_level: float, offset: float, g: float, elec_minus_g_offset: float,
                  z: np.ndarray, sign: float, upper: float, noise: bool) -> None:
    """One pass of :func:`sensor.capture_realtime` (its docstring has the model). All levels in
    DN (``x`` carries the black level + 0.5 of Eq. 3's rounding), ``gain_t`` in DN per (e-/s),
    ``phi``/``z``/``out`` flat contiguous float32/float32/uint16 of one length."""
    f = np.float32
    _run(_capture_loop, phi, out, f(gain_t), f(add0), f(knee_a), f(full_well_level), f(offset), f(g),
         f(elec_minus_g_offset), z, f(sign), f(upper), bool(noise))


def _counts_loop(raw, row_base, col_base, shift, c0, c1, c2, c3):  # pragma: no cover - compiled
    h = row_base.size
    w = col_base.size
    w4 = w - w % 4
    total = np.int64(0)
    for r in range(h):
        line = raw[2 * r]
        base = row_base[r]
        for c in range(0, w4, 4):
            v0 = np.int64(line[2 * c + 1])
            v1 = np.int64(line[2 * c + 3])
            v2 = np.int64(line[2 * c + 5])
            v3 = np.int64(line[2 * c + 7])
            total += v0 + v1 + v2 + v3
            c0[base + col_base[c] + min(v0 >> shift, 255)] += 1
            c1[base + col_base[c + 1] + min(v1 >> shift, 255)] += 1
            c2[base + col_base[c + 2] + min(v2 >> shift, 255)] += 1
            c3[base + col_base[c + 3] + min(v3 >> shift, 255)] += 1
        for c in range(w4, w):
            v = np.int64(line[2 * c + 1])
            total += v
            c0[base + col_base[c] + min(v >> shift, 255)] += 1
    return total


def _regions_loop(c0, c1, c2, c3, owners, out):  # pragma: no cover - compiled
    n_cells, n_grids = owners.shape
    for cell in range(n_cells):
        first = cell * 256
        for b in range(256):
            v = c0[first + b] + c1[first + b] + c2[first + b] + c3[first + b]
            if v:
                for k in range(n_grids):
                    out[owners[cell, k], b] += v


def green_region_histograms(raw: np.ndarray, row_base: np.ndarray, col_base: np.ndarray,
                            owners: np.ndarray, n_regions: int, shift: int):
    """(``(n_regions, 256)`` uint32 histograms, exact sum of the first-green plane) of an RGGB
    ``uint16`` mosaic ``raw``, in one pass over the plane plus a pass over the cell counts.

    The plane is cut into refinement cells (the common refinement of the region grids).
    ``row_base[r]`` is the first count index of green row ``r``'s cell row (segment * cells per
    row * 256), ``col_base[c]`` green column ``c``'s cell offset (segment * 256),
    ``owners[cell]`` the region of each grid that holds the cell; a value counts in bin
    ``min(v >> shift, 255)``."""
    n_cells = owners.shape[0]
    counts = np.zeros((_COPIES, n_cells * 256), np.uint32)
    total = _run(_counts_loop, raw, row_base, col_base, np.int64(shift), counts[0], counts[1], counts[2], counts[3])
    out = np.zeros((n_regions, 256), np.uint32)
    _run(_regions_loop, counts[0], counts[1], counts[2], counts[3], owners, out)
    return out, int(total)
