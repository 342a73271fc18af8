"""59 x 256 histogram stack of paper 000, Section 4.1 (input of the "Histogram NN").

From a raw RGGB mosaic take the first green pixel of every 2 x 2 quad (row 0, col 1), i.e.
the ``(H/2, W/2)`` plane ``raw[0::2, 1::2]``. Compute 256-bin histograms over
``[0, white_level]`` (bin width ``(white_level + 1) / 256``; 16 DN for 12-bit) for

* the whole image                       -> row 0
* a 3 x 3 grid of sub-images, row-major  -> rows 1..9
* a 7 x 7 grid of sub-images, row-major  -> rows 10..58

Grid cell ``i`` of an ``n``-grid along an axis of length ``L`` covers
``[floor(i L / n), floor((i + 1) L / n))`` of the green plane.

Speed: the 1 x 1, 3 x 3 and 7 x 7 partitions are combined into their common refinement
(at most 9 x 9 = 81 cells; a 21 x 21 grid when 21 divides both sides). A cached per-shape
map holds ``cell * 256``; one bincount of ``map + (green >> shift)`` gives all cells x 256
counts, from which the 59 histograms follow exactly by separable integer sums of cell rows
and columns (``np.add.reduceat``). Every region keeps the definition above, whether or not
the grid divides the plane evenly. For ``uint16`` input with a ``2^n - 1`` white level this
runs as a handful of torch CPU ops on one int32 copy of the green plane (~2x faster than
numpy on one core); other inputs use numpy.
"""
from __future__ import annotations

import threading
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from . import kernels

if TYPE_CHECKING:
    import torch

# torch is imported where used: the histogram node runs on the compiled kernel without it

__all__ = [
    "NUM_BINS",
    "NUM_HISTOGRAMS",
    "GRIDS",
    "green_plane",
    "grid_edges",
    "bin_index",
    "histogram_stack",
    "histogram_stack_reference",
    "histogram_stack_torch",
    "mean_green_level",
    "warm_up",
]

NUM_BINS = 256
GRIDS = (1, 3, 7)
NUM_HISTOGRAMS = sum(n * n for n in GRIDS)  # 59


def green_plane(raw):
    """First green pixel of each RGGB quad: ``raw[..., 0::2, 1::2]`` (a view)."""
    return raw[..., 0::2, 1::2]


def grid_edges(length: int, n: int) -> np.ndarray:
    """Integer cell boundaries ``floor(i * length / n)``, ``i = 0..n``."""
    return (np.arange(n + 1, dtype=np.int64) * length) // n


@lru_cache(maxsize=16)
def _refinement(h: int, w: int) -> Tuple[np.ndarray, np.ndarray, int, Tuple[int, int], tuple]:
    """(cell map * 256 as uint16 (h, w), 0/1 aggregation matrix (59, n_cells), n_cells,
    (cell rows, cell cols), per grid the (row, col) segment starts): grid ``n``'s regions
    are ``np.add.reduceat`` of the (rows, cols, 256) cell counts over its row starts along
    axis 0, then over its column starts along axis 1."""
    if h < 7 or w < 7:
        raise ValueError(f"green plane {h}x{w} is too small for a 7x7 grid")

    def axis(length: int):
        cuts = np.unique(np.concatenate([grid_edges(length, n) for n in GRIDS]))
        seg = np.searchsorted(cuts, np.arange(length), side="right") - 1  # segment per pixel
        starts = cuts[:-1]
        # grid cell of each segment, per grid
        owner = {n: np.searchsorted(grid_edges(length, n), starts, side="right") - 1 for n in GRIDS}
        return seg, len(starts), owner

    seg_r, nr, own_r = axis(h)
    seg_c, nc, own_c = axis(w)
    n_cells = nr * nc
    assert n_cells * NUM_BINS <= 65536
    cell_map = (seg_r[:, None] * nc + seg_c[None, :]) * NUM_BINS
    cell_map = np.ascontiguousarray(cell_map.astype(np.uint16))
    cell_map.setflags(write=False)
    agg = np.zeros((NUM_HISTOGRAMS, n_cells), dtype=np.float32)
    row0 = 0
    for n in GRIDS:
        for r in range(nr):
            for c in range(nc):
                agg[row0 + own_r[n][r] * n + own_c[n][c], r * nc + c] = 1
        row0 += n * n
    agg.setflags(write=False)
    # separable sums: grid n's rows are reduceat(cells, row_starts[n]) along rows, then cols
    def starts_of(owner):
        return np.flatnonzero(np.diff(owner, prepend=-1)).astype(np.intp)

    seg_starts = tuple((starts_of(own_r[n]), starts_of(own_c[n])) for n in GRIDS)
    return cell_map, agg, n_cells, (nr, nc), seg_starts


@lru_cache(maxsize=16)
def _kernel_maps(h: int, w: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For :func:`kernels.green_region_histograms`: first count index of each green row's cell
    row, cell offset of each green column (int64), and per refinement cell the row of the stack
    of each grid's region holding it (``(n_cells, 3)`` int64)."""
    cell_map, agg = _refinement(h, w)[:2]
    cell_map = cell_map.astype(np.int64)
    row_base = np.ascontiguousarray(cell_map[:, 0])  # column 0 lies in cell column 0
    col_base = np.ascontiguousarray(cell_map[0, :])
    # agg[region, cell] is 1 for the one region of each grid holding the cell
    owners = np.stack([np.flatnonzero(col) for col in agg.T]).astype(np.int64)
    assert owners.shape[1] == len(GRIDS)
    for a in (row_base, col_base, owners):
        a.setflags(write=False)
    return row_base, col_base, owners


@lru_cache(maxsize=8)
def _bin_lut(white_level: int) -> Optional[np.ndarray]:
    """uint16 LUT value -> bin for white levels where a plain shift does not apply."""
    v = np.arange(white_level + 1, dtype=np.int64)
    lut = (v * NUM_BINS) // (white_level + 1)
    lut.setflags(write=False)
    return lut.astype(np.uint16)


def _shift_for(white_level: int) -> Optional[int]:
    n = white_level + 1
    if n >= NUM_BINS and (n & (n - 1)) == 0:
        return int(np.log2(n)) - 8
    return None


def bin_index(values, white_level: int = 4095) -> np.ndarray:
    """Bin of each value: ``floor(clip(v, 0, white) * 256 / (white + 1))`` as uint16."""
    white_level = int(white_level)
    v = np.asarray(values)
    shift = _shift_for(white_level)
    if v.dtype == np.uint16 and shift is not None:
        b = v >> np.uint16(shift)
        np.minimum(b, NUM_BINS - 1, out=b)  # values above white_level -> last bin
        return b
    if v.dtype.kind == "f":
        v = np.clip(np.floor(v), 0, white_level).astype(np.uint16)
    else:
        v = np.clip(v, 0, white_level).astype(np.uint16)
    if shift is not None:
        return v >> np.uint16(shift)
    return _bin_lut(white_level)[v]


def histogram_stack(
    raw: np.ndarray, white_level: int = 4095, return_mean: bool = False
):
    """59 x 256 ``uint32`` histograms of the first-green plane of an RGGB mosaic.

    Args:
        raw: ``(H, W)`` mosaic, ``uint16`` (fast path) or float / other integer types
            (values are floored and clipped to ``[0, white_level]``).
        white_level: ``M_white``; bins span ``[0, white_level]``.
        return_mean: also return the exact mean DN of the green plane (black level
            included), for the average AE.

    Returns ``hist`` or ``(hist, mean_green_dn)``. Row order: whole, 3x3 row-major,
    7x7 row-major.
    """
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise ValueError(f"expected a (H, W) mosaic, got shape {raw.shape}")
    g = green_plane(raw)
    h, w = g.shape
    cell_map, _, n_cells, cells_shape, seg_starts = _refinement(h, w)
    shift = _shift_for(int(white_level))
    fast = None
    if raw.dtype == np.uint16 and shift is not None and kernels.AVAILABLE and g.size < 2**31:
        # one compiled pass: cell counts and the exact sum (any uint16 value: above white -> last bin)
        row_base, col_base, owners = _kernel_maps(h, w)
        try:
            hist, total = kernels.green_region_histograms(raw, row_base, col_base, owners, NUM_HISTOGRAMS, shift)
        except kernels.KernelUnavailable:  # warned once; the paths below
            pass
        else:
            return (hist, total / g.size) if return_mean else hist
    if raw.dtype == np.uint16 and shift is not None and white_level < 2**15 and min(raw.strides) > 0 \
            and g.size < 2**24:
        fast = _counts_torch_u16(raw, h, w, shift, n_cells, int(white_level), return_mean)
    if fast is not None:
        import torch

        counts, total = fast
        # 59 x n_cells 0/1 matrix times cell counts: exact in float32 (every sum < 2^24)
        hist = torch.mm(_torch_maps(h, w, "cpu")[1], counts.view(n_cells, NUM_BINS).float())
        hist = hist.numpy().astype(np.uint32)
        mean = total / g.size if return_mean else None
    else:
        idx = bin_index(g, white_level)
        idx += cell_map  # uint16, < 81 * 256
        counts = np.bincount(idx.ravel(), minlength=n_cells * NUM_BINS)
        hist = _regions_from_cells(counts.reshape(*cells_shape, NUM_BINS), seg_starts)
        mean = _mean(g) if return_mean else None
    if not return_mean:
        return hist
    return hist, mean


def warm_up(raw_like: np.ndarray) -> None:
    """Compile (or load from the on-disk cache) the compiled histogram path for frames like
    ``raw_like`` (a small frame of the same dtype, layout and writeability: a ROS message
    buffer is read-only), so that a node's first frame does not pay ~0.5 s."""
    histogram_stack(raw_like, return_mean=True)


def _regions_from_cells(cells: np.ndarray, seg_starts) -> np.ndarray:
    """(rows, cols, 256) cell counts -> (59, 256) uint32: per grid, integer sums of the cell
    rows then columns it covers (no BLAS: its thread pool stalls on a busy machine)."""
    out = np.empty((NUM_HISTOGRAMS, NUM_BINS), dtype=np.uint32)
    row0 = 0
    for n, (rs, cs) in zip(GRIDS, seg_starts):
        part = np.add.reduceat(np.add.reduceat(cells, rs, axis=0), cs, axis=1)
        out[row0:row0 + n * n] = part.reshape(n * n, NUM_BINS)
        row0 += n * n
    return out


def _counts_torch_u16(raw: np.ndarray, h: int, w: int, shift: int, n_cells: int, white_level: int,
                      with_sum: bool = True):
    """Fast path (``2^n - 1`` white levels up to 2^15 - 1, uint16 input): one strided copy of
    the green plane into a cached int16 buffer, its range (``None`` if any value lies outside
    ``[0, white]``: the caller takes the general path), its exact sum, ``v >> shift +
    cell * 256`` in place and one ``bincount`` over the refinement cells x 256 bins."""
    import torch

    with warnings.catch_warnings():  # a ROS message buffer is read-only; we only read it
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(raw.view(np.int16))
    # One cached work buffer per thread and shape: a fresh allocation per frame costs page
    # faults, which on a loaded machine dominate the whole function.
    x = _work_buffer(h, w)
    x.copy_(t[0::2, 1::2])
    lo, hi = torch.aminmax(x)  # uint16 above 2^15 - 1 reads negative here
    if int(lo) < 0 or int(hi) > white_level:
        return None
    total = int(x.numpy().sum(dtype=np.int64)) if with_sum else None  # numpy: ~2x torch here
    x.bitwise_right_shift_(shift).add_(_torch_maps(h, w, "cpu")[3])
    counts = torch.bincount(x.view(-1), minlength=n_cells * NUM_BINS)
    return counts, total


def _mean(g: np.ndarray) -> float:
    if g.dtype == np.uint16:
        return float(g.sum(dtype=np.uint64)) / g.size
    return float(g.mean(dtype=np.float64))


def mean_green_level(raw: np.ndarray) -> float:
    """Mean DN of the first-green plane (black level included)."""
    return _mean(green_plane(np.asarray(raw)))


def histogram_stack_reference(raw: np.ndarray, white_level: int = 4095) -> np.ndarray:
    """Slow, obviously-correct reference (``np.histogram`` per region) for the tests."""
    g = np.asarray(raw)[0::2, 1::2].astype(np.float64)
    g = np.clip(np.floor(g), 0, white_level)
    h, w = g.shape
    edges = np.linspace(0, white_level + 1, NUM_BINS + 1)
    out = []
    for n in GRIDS:
        er, ec = grid_edges(h, n), grid_edges(w, n)
        for i in range(n):
            for j in range(n):
                sub = g[er[i]:er[i + 1], ec[j]:ec[j + 1]]
                out.append(np.histogram(sub, bins=edges)[0])
    return np.asarray(out, dtype=np.uint32)


_TORCH_CACHE = threading.local()


def _work_buffer(h: int, w: int) -> "torch.Tensor":
    import torch

    bufs = getattr(_TORCH_CACHE, "work", None)
    if bufs is None:
        bufs = _TORCH_CACHE.work = {}
    buf = bufs.get((h, w))
    if buf is None:
        if len(bufs) >= 4:
            bufs.clear()
        buf = bufs[(h, w)] = torch.empty((h, w), dtype=torch.int16)
    return buf


def _torch_maps(h: int, w: int, device):
    """(cell map * 256 int32 (h, w), aggregation (59, n) float32, n, cell map * 256 int16)
    as cached tensors."""
    import torch

    cache = getattr(_TORCH_CACHE, "cache", None)
    if cache is None:
        cache = _TORCH_CACHE.cache = {}
    key = (h, w, str(device))
    if key not in cache:
        cell_map, agg, n_cells = _refinement(h, w)[:3]
        cache[key] = (
            torch.from_numpy(cell_map.astype(np.int32)).to(device),
            torch.from_numpy(agg.copy()).to(device),
            n_cells,
            torch.from_numpy(cell_map.astype(np.int16)).to(device),
        )
    return cache[key]


def histogram_stack_torch(
    raw_batch: "torch.Tensor", white_level: int = 4095, dtype: "Optional[torch.dtype]" = None
) -> "torch.Tensor":
    """Batched torch version: ``(B, H, W)`` (or ``(H, W)``) mosaics -> ``(B, 59, 256)``.

    Counts are returned as ``dtype`` (float32 by default: exact up to 2^24 per bin, ready
    for a network). Not differentiable (paper 000 feeds histograms as plain inputs).
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
    squeeze = raw_batch.ndim == 2
    x = raw_batch.unsqueeze(0) if squeeze else raw_batch
    if x.ndim != 3:
        raise ValueError(f"expected (B, H, W) or (H, W), got {tuple(raw_batch.shape)}")
    with torch.no_grad():
        g = x[:, 0::2, 1::2]
        b, h, w = g.shape
        cell_map, agg, n_cells, _ = _torch_maps(h, w, g.device)
        white_level = int(white_level)
        if g.is_floating_point():
            v = torch.floor(g).clamp_(0, white_level).long()
        else:
            v = g.long().clamp_(0, white_level)
        bins = torch.div(v * NUM_BINS, white_level + 1, rounding_mode="floor")
        idx = bins + cell_map + (torch.arange(b, device=g.device) * (n_cells * NUM_BINS)).view(b, 1, 1)
        counts = torch.bincount(idx.reshape(-1), minlength=b * n_cells * NUM_BINS)
        counts = counts.view(b, n_cells, NUM_BINS).to(torch.float32)
        hist = torch.matmul(agg, counts)  # (59, n) @ (b, n, 256) -> (b, 59, 256)
        hist = hist.to(dtype)
    return hist[0] if squeeze else hist
