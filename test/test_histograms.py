"""59 x 256 histogram stack (paper 000 Section 4.1) against a slow reference."""
import numpy as np
import pytest
import torch

from neural_ae_ros.imaging import kernels
from neural_ae_ros.imaging.histograms import (
    NUM_BINS,
    NUM_HISTOGRAMS,
    grid_edges,
    histogram_stack,
    histogram_stack_reference,
    histogram_stack_torch,
    mean_green_level,
)

torch.set_num_threads(1)
RNG = np.random.default_rng(1234)


def region_sizes(h, w):
    """Pixel count of each of the 59 regions of an (h, w) green plane."""
    out = []
    for n in (1, 3, 7):
        er, ec = np.diff(grid_edges(h, n)), np.diff(grid_edges(w, n))
        out.extend((er[:, None] * ec[None, :]).ravel())
    return np.asarray(out)


def test_full_frame_equals_reference_and_counts():
    raw = RNG.integers(0, 4096, (1200, 1920)).astype(np.uint16)
    hist, mean = histogram_stack(raw, 4095, return_mean=True)
    assert hist.shape == (NUM_HISTOGRAMS, NUM_BINS) == (59, 256) and hist.dtype == np.uint32
    assert np.array_equal(hist, histogram_stack_reference(raw, 4095))
    assert np.array_equal(hist.sum(axis=1), region_sizes(600, 960))
    assert hist[0].sum() == hist[1:10].sum() == hist[10:].sum() == 600 * 960
    assert mean == pytest.approx(raw[0::2, 1::2].astype(np.float64).mean(), rel=1e-12)
    assert mean_green_level(raw) == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize("shape", [(14, 14), (37, 53), (100, 202), (61, 90)])
def test_odd_shapes_equal_reference(shape):
    raw = RNG.integers(0, 4096, shape).astype(np.uint16)
    hist = histogram_stack(raw)
    assert np.array_equal(hist, histogram_stack_reference(raw))
    g = raw[0::2, 1::2]
    assert np.array_equal(hist.sum(axis=1), region_sizes(*g.shape))


def test_float_input_other_white_levels_and_out_of_range():
    raw = RNG.uniform(-50, 5000, (80, 120))  # below 0 and above white -> first / last bin
    for white in (4095, 1023, 1000):
        hist = histogram_stack(raw, white)
        assert np.array_equal(hist, histogram_stack_reference(raw, white))
    raw16 = RNG.integers(0, 65536, (40, 60)).astype(np.uint16)  # > 12 bit values
    hist = histogram_stack(raw16, 4095)
    assert np.array_equal(hist, histogram_stack_reference(raw16, 4095))
    assert hist[0, -1] == (raw16[0::2, 1::2] >= 4080).sum()


def test_read_only_and_flipped_views():
    raw = RNG.integers(0, 4096, (60, 90)).astype(np.uint16)
    ro = np.frombuffer(raw.tobytes(), dtype=np.uint16).reshape(raw.shape)  # read-only
    assert np.array_equal(histogram_stack(ro), histogram_stack_reference(raw))
    flipped = raw[::-1, ::-1]  # negative strides
    assert np.array_equal(histogram_stack(flipped), histogram_stack_reference(flipped))


def test_uses_only_first_green_pixel_of_each_quad():
    raw = np.full((60, 80), 4095, dtype=np.uint16)
    raw[0::2, 1::2] = 0  # G1 dark, R / G2 / B saturated
    hist = histogram_stack(raw)
    assert hist[0, 0] == 30 * 40 and hist[0, 1:].sum() == 0


def test_bins_are_16_dn_wide_for_12_bit():
    raw = np.zeros((28, 28), dtype=np.uint16)
    g = raw[0::2, 1::2]
    g[...] = 15
    g[0, 0], g[0, 1], g[0, 2] = 16, 4095, 4080
    hist = histogram_stack(raw)
    assert hist[0, 0] == 14 * 14 - 3 and hist[0, 1] == 1 and hist[0, 255] == 2


def test_regions_are_row_major():
    raw = np.zeros((140, 140), dtype=np.uint16)  # green plane 70 x 70: 10 px 7x7 cells
    g = raw[0::2, 1::2]
    g[0:10, 60:70] = 4095  # top-right 7x7 cell -> 3x3 cell (0, 2)
    g[60:70, 0:10] = 2048  # bottom-left 7x7 cell -> 3x3 cell (2, 0)
    hist = histogram_stack(raw)
    bright = np.nonzero(hist[:, 255])[0].tolist()
    mid = np.nonzero(hist[:, 128])[0].tolist()
    assert bright == [0, 1 + 2, 10 + 6]
    assert mid == [0, 1 + 6, 10 + 42]
    assert hist[10 + 6, 255] == 100


def test_torch_version_matches_numpy():
    batch = RNG.integers(0, 4096, (3, 64, 96)).astype(np.int32)
    ht = histogram_stack_torch(torch.from_numpy(batch))
    assert ht.shape == (3, 59, 256)
    for i in range(3):
        assert np.array_equal(ht[i].numpy().astype(np.uint32), histogram_stack(batch[i].astype(np.uint16)))
    # float input (e.g. straight from capture) and a single (H, W) frame
    hf = histogram_stack_torch(torch.from_numpy(batch[0].astype(np.float32)))
    assert hf.shape == (59, 256) and torch.equal(hf, ht[0])


def test_too_small_raises():
    with pytest.raises(ValueError):
        histogram_stack(np.zeros((8, 8), dtype=np.uint16))
    with pytest.raises(ValueError):
        histogram_stack(np.zeros((2, 8, 8), dtype=np.uint16))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("white", [4095, 1023, 4000])
def test_compiled_counts_equal_the_torch_and_numpy_paths(monkeypatch, white):
    """The one-pass kernel (kernels.green_cell_counts) gives the same integers as the other
    paths: values above white in the last bin, odd widths (the 4-wide unrolled tail), read-only
    and strided input, and the exact green sum."""
    for shape in ((1200, 1920), (61, 97), (15, 14)):
        raw = RNG.integers(0, 65536, shape).astype(np.uint16)
        raw[RNG.random(shape) < 0.7] //= 16  # most within 12 bit, some above
        fast, mean = histogram_stack(raw, white, return_mean=True)
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        slow, slow_mean = histogram_stack(raw, white, return_mean=True)
        monkeypatch.setattr(kernels, "AVAILABLE", True)
        assert np.array_equal(fast, slow) and np.array_equal(fast, histogram_stack_reference(raw, white))
        assert mean == slow_mean == raw[0::2, 1::2].sum(dtype=np.uint64) / raw[0::2, 1::2].size
    strided = np.zeros((60, 180), np.uint16)[:, ::2]
    strided[:] = RNG.integers(0, 4096, strided.shape)
    strided.setflags(write=False)
    assert np.array_equal(histogram_stack(strided, white), histogram_stack_reference(strided, white))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_a_numba_failure_warns_once_and_falls_back(monkeypatch):
    """A loop numba cannot compile (here: a stand-in that fails typing) warns, marks the kernels
    unavailable and leaves the caller on its torch/numpy path with the same result."""
    from numba.core.errors import TypingError

    def broken(*args):
        raise TypingError("cannot type this loop")

    monkeypatch.setattr(kernels, "AVAILABLE", True)  # restored after the test
    monkeypatch.setitem(kernels._COMPILED, "_counts_loop", broken)
    raw = RNG.integers(0, 4096, (40, 60)).astype(np.uint16)
    with pytest.warns(RuntimeWarning, match="numba failed on _counts_loop"):
        hist = histogram_stack(raw)
    assert not kernels.AVAILABLE
    assert np.array_equal(hist, histogram_stack_reference(raw))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_no_writable_numba_cache_compiles_without_it(monkeypatch):
    """A read-only install where numba finds no cache location: a warning, then the loop is
    compiled without the disk cache and gives the same counts."""
    import numba

    real_njit = numba.njit

    def njit(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function '_counts_loop': no locator available")
        return real_njit(*args, cache=cache, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(kernels, "_COMPILED", {})
    raw = RNG.integers(0, 4096, (40, 60)).astype(np.uint16)
    with pytest.warns(RuntimeWarning, match="no locator available"):
        hist = histogram_stack(raw)
    assert kernels.AVAILABLE and "_counts_loop" in kernels._COMPILED
    assert np.array_equal(hist, histogram_stack_reference(raw))
