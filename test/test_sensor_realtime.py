"""The camera-rate capture (sensor.capture_realtime, one summed Gaussian per pixel) follows the
same photon-transfer curve as the reference capture (Eq. 1-3) and saturates the same way."""
import math

import numpy as np
import pytest
import torch

from neural_ae_ros.imaging import kernels
from neural_ae_ros.imaging.camera import SimulatedSensor
from neural_ae_ros.imaging.exposure import FrameExposure
from neural_ae_ros.imaging.sensor import (
    SensorParams,
    capture,
    capture_realtime,
    expected_mean_dn,
    expected_variance_dn,
    saturation_dn,
)

torch.set_num_threads(1)
N_SIDE = 200
N = N_SIDE * N_SIDE
P = SensorParams.from_yaml()


def flat_realtime(signal_e, t, k, seed, params=P):
    phi = np.full((N_SIDE, N_SIDE), signal_e / t, dtype=np.float32)
    gen = torch.Generator().manual_seed(seed)
    return capture_realtime(phi, t, k, params, gen).astype(np.float64)


@pytest.mark.parametrize(
    "signal_e,k",
    [(0.0, 1.0), (100.0, 1.0), (2000.0, 1.0), (20000.0, 1.0), (100.0, 4.0), (1000.0, 4.0), (5000.0, 4.0)],
)
def test_realtime_mean_and_variance_follow_the_photon_transfer_curve(signal_e, k):
    t = 0.01
    x = flat_realtime(signal_e, t, k, seed=int(signal_e) + int(10 * k))
    mu_a = expected_mean_dn(signal_e / t, t, k, P)
    var_a = expected_variance_dn(signal_e / t, t, k, P)
    assert abs(x.mean() - mu_a) < 5 * math.sqrt(var_a / N)
    assert abs(x.var(ddof=1) / var_a - 1) < 5 * math.sqrt(2.0 / (N - 1))


def test_realtime_full_well_keeps_only_electronic_noise():
    x = flat_realtime(10 * P.full_well_e, 0.01, 1.0, seed=11)
    assert x.mean() == pytest.approx(saturation_dn(P, 1.0), abs=0.05)
    var_read = (P.g1_dn_per_e * P.read_noise_e) ** 2 + P.post_noise_dn**2 + 1 / 12
    assert x.var() == pytest.approx(var_read, rel=0.05)
    assert x.max() < P.white_level_dn


def test_realtime_white_level_and_zero_clamp():
    assert np.all(flat_realtime(10 * P.full_well_e, 0.01, 2.0, seed=12) == P.white_level_dn)
    x = flat_realtime(0.0, 0.01, P.max_analog_gain, seed=13, params=SensorParams(black_level_dn=0.0))
    assert x.min() == 0.0 and x.max() <= P.white_level_dn


def test_realtime_knee_is_monotone_and_never_above_the_full_well_level():
    """Through the full-well knee the mean rises monotonically to the saturation level."""
    t = 0.01
    signals = P.full_well_e * np.array([0.95, 0.98, 0.99, 0.995, 1.0, 1.005, 1.02, 1.1])
    means = [flat_realtime(s, t, 1.0, seed=i).mean() for i, s in enumerate(signals)]
    sat = saturation_dn(P, 1.0)
    assert all(b > a - 0.1 for a, b in zip(means, means[1:]))
    assert max(means) <= sat + 0.05
    assert means[0] == pytest.approx(expected_mean_dn(signals[0] / t, t, 1.0, P), abs=0.3)


def test_realtime_noise_free_matches_reference_capture():
    rng = np.random.default_rng(0)
    phi = np.exp(rng.normal(11.0, 2.0, (120, 160))).astype(np.float32)  # some pixels saturate
    for t, k in ((0.002, 1.0), (0.01, 3.0)):
        ref = capture(torch.from_numpy(phi), t, k, P, noise=False).numpy()
        fast = capture_realtime(phi, t, k, P, noise=False)
        assert fast.dtype == np.uint16
        diff = np.abs(fast.astype(np.int32) - ref.astype(np.int32))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 rounding at .5 only


def test_realtime_noise_is_fresh_every_frame_and_seeded():
    """Two frames of one flat field: the per-pixel noise is uncorrelated across frames, and a
    seed reproduces the sequence."""
    phi = np.full((N_SIDE, N_SIDE), 2000.0 / 0.01, dtype=np.float32)
    gen = torch.Generator().manual_seed(5)
    a = capture_realtime(phi, 0.01, 1.0, P, gen).astype(np.float64)
    b = capture_realtime(phi, 0.01, 1.0, P, gen).astype(np.float64)
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert abs(corr) < 5 / math.sqrt(N)
    again = torch.Generator().manual_seed(5)
    np.testing.assert_array_equal(capture_realtime(phi, 0.01, 1.0, P, again), a.astype(np.uint16))


def test_realtime_writes_into_a_reused_buffer_and_checks_it():
    phi = np.full((8, 10), 1e5, dtype=np.float32)
    out = np.zeros((8, 10), np.uint16)
    assert capture_realtime(phi, 0.01, 1.0, P, out=out) is out and out.min() > P.black_level_dn
    with pytest.raises(ValueError, match="uint16"):
        capture_realtime(phi, 0.01, 1.0, P, out=np.zeros((8, 10), np.float32))
    with pytest.raises(ValueError, match="exposure_time_s"):
        capture_realtime(phi, float("nan"), 1.0, P)


def test_simulated_sensor_uses_the_realtime_path_on_rgb_and_mosaic_input():
    sensor = SimulatedSensor(P, seed=1)
    rgb = np.full((3, 40, 60), 2000.0 / 0.01, dtype=np.float32)
    s = FrameExposure(0.01, 1.0, 0)
    raw = sensor.capture(rgb, s)
    assert raw.shape == (40, 60) and raw.dtype == np.uint16
    assert raw.mean() == pytest.approx(expected_mean_dn(2e5, 0.01, 1.0, P), abs=1.0)
    mosaic = sensor.capture(rgb[1], s)
    assert mosaic.shape == (40, 60)


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("noise", [True, False])
def test_compiled_capture_computes_what_the_torch_passes_compute(monkeypatch, noise):
    """The one-pass kernel (kernels.capture_fused) against the multi-pass torch code, same
    seed: equal but for float32 rounding (torch fuses multiply-adds), i.e. at most 1 DN on a
    few pixels in 10^4, over the whole range (dark, mid, full well, clipped)."""
    rng = np.random.default_rng(3)
    phi = torch.from_numpy(np.exp(rng.normal(12.0, 2.5, (240, 320))).astype(np.float32))
    for t, k in ((0.01, 1.0), (0.002, 4.0), (0.03, 16.0)):
        fused = capture_realtime(phi, t, k, P, torch.Generator().manual_seed(5), noise=noise)
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        passes = capture_realtime(phi, t, k, P, torch.Generator().manual_seed(5), noise=noise)
        monkeypatch.setattr(kernels, "AVAILABLE", True)
        diff = np.abs(fused.astype(np.int32) - passes.astype(np.int32))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-4
        assert fused.max() > 0.95 * P.white_level_dn and fused.min() <= P.black_level_dn + 2  # whole range
