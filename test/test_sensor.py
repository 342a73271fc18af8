"""Physics checks of the Eq. 1-3 sensor model against the analytic photon-transfer curve."""
import math

import numpy as np
import pytest
import torch

from neural_ae_ros.imaging.sensor import (
    SensorParams,
    bayer_sample_rggb,
    capture,
    capture_numpy,
    dark_noise_e,
    dynamic_range_db,
    expected_mean_dn,
    expected_variance_dn,
    quantize_ste,
    saturation_dn,
    saturation_e,
    snr_db,
)

torch.set_num_threads(1)
N_SIDE = 200  # flat field 200 x 200 -> 40,000 samples
N = N_SIDE * N_SIDE
P = SensorParams.from_yaml()


def flat_capture(signal_e, t, k, seed, params=P, **kw):
    """Flat field giving ``signal_e`` photo-electrons at exposure ``t``."""
    phi = torch.full((N_SIDE, N_SIDE), signal_e / t, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return capture(phi, t, k, params, gen, **kw).double()


def test_yaml_is_imx249_like():
    assert P.white_level_dn == 4095
    assert P.full_well_e == pytest.approx(32500, rel=0.05)
    assert P.read_noise_e == pytest.approx(7.0, abs=0.5)
    assert 0 < P.black_level_dn < 256
    assert P.max_analog_gain >= 1
    # published figures for the IMX249: ~73 dB dynamic range, ~45 dB max SNR
    assert dynamic_range_db(P, 1.0) == pytest.approx(73.0, abs=1.5)
    max_snr = snr_db(saturation_e(P, 1.0) / 0.01, 0.01, 1.0, P)
    assert max_snr == pytest.approx(45.1, abs=0.5)


def test_invalid_params_raise():
    with pytest.raises(ValueError, match="full_well_e"):
        SensorParams(full_well_e=-1.0)
    with pytest.raises(ValueError, match="black_level_dn"):
        SensorParams(black_level_dn=5000.0)
    with pytest.raises(ValueError, match="unknown"):
        SensorParams.from_dict({"full_wel_e": 1.0})


@pytest.mark.parametrize(
    "signal_e,k",
    [(0.0, 1.0), (100.0, 1.0), (2000.0, 1.0), (20000.0, 1.0), (100.0, 4.0), (1000.0, 4.0), (5000.0, 4.0)],
)
def test_photon_transfer_mean_and_variance(signal_e, k):
    t = 0.01
    phi = signal_e / t
    x = flat_capture(signal_e, t, k, seed=int(signal_e) + int(10 * k))
    mu_a = expected_mean_dn(phi, t, k, P)
    var_a = expected_variance_dn(phi, t, k, P)
    # mean: 5 standard errors; variance: 5 x its sampling std sqrt(2 / (N - 1))
    assert abs(x.mean().item() - mu_a) < 5 * math.sqrt(var_a / N)
    assert abs(x.var().item() / var_a - 1) < 5 * math.sqrt(2.0 / (N - 1))


def test_exact_poisson_option_matches_ptc():
    t, k, signal = 0.01, 2.0, 800.0
    x = flat_capture(signal, t, k, seed=3, shot_noise="poisson")
    var_a = expected_variance_dn(signal / t, t, k, P)
    assert abs(x.mean().item() - expected_mean_dn(signal / t, t, k, P)) < 5 * math.sqrt(var_a / N)
    assert abs(x.var().item() / var_a - 1) < 5 * math.sqrt(2.0 / (N - 1))


def test_dark_current_accumulates_with_time():
    p = SensorParams(dark_current_e_per_s=2e4)  # exaggerated so it is measurable
    x = flat_capture(0.0, 0.05, 1.0, seed=7, params=p)  # 1000 dark electrons
    assert x.mean().item() == pytest.approx(p.black_level_dn + p.g1_dn_per_e * 1000, abs=0.5)
    assert x.var().item() == pytest.approx(expected_variance_dn(0.0, 0.05, 1.0, p), rel=0.04)


def test_full_well_saturation_at_unity_gain():
    # g1 * M_well + black < M_white: at K = 1 the full well clips, read noise remains
    assert P.black_level_dn + P.g1_dn_per_e * P.full_well_e < P.white_level_dn
    x = flat_capture(10 * P.full_well_e, 0.01, 1.0, seed=11)
    assert x.mean().item() == pytest.approx(saturation_dn(P, 1.0), abs=0.05)
    var_read = (P.g1_dn_per_e * P.read_noise_e) ** 2 + P.post_noise_dn**2 + 1 / 12
    assert x.var().item() == pytest.approx(var_read, rel=0.05)
    assert x.max().item() < P.white_level_dn


def test_white_level_saturation_at_high_gain():
    x = flat_capture(10 * P.full_well_e, 0.01, 2.0, seed=12)
    assert torch.all(x == P.white_level_dn)
    assert saturation_dn(P, 2.0) == P.white_level_dn
    # and never negative / above white for any input
    x = flat_capture(0.0, 0.01, P.max_analog_gain, seed=13, params=SensorParams(black_level_dn=0.0))
    assert x.min().item() == 0.0 and x.max().item() <= P.white_level_dn


def test_snr_db_matches_simulation():
    t, k = 0.005, 1.0
    for signal in (30.0, 500.0, 10000.0):
        x = flat_capture(signal, t, k, seed=int(signal))
        dark_dn = P.black_level_dn + P.g1_dn_per_e * k * P.dark_current_e_per_s * t
        snr_sim = 20 * math.log10((x.mean().item() - dark_dn) / x.std().item())
        assert snr_sim == pytest.approx(snr_db(signal / t, t, k, P), abs=0.15)
    # shot-noise limit: SNR grows 10 dB per decade of signal
    s1, s2 = snr_db(1e6, t, k, P), snr_db(1e7, t, k, P)
    assert s2 - s1 == pytest.approx(10.0, abs=0.3)


@pytest.mark.parametrize("k", [1.0, 4.0])
def test_dynamic_range_matches_simulation(k):
    """DR = 20 log10(saturation signal / dark noise), both measured from captures."""
    t = 0.001
    g = P.g1_dn_per_e * k
    dark = flat_capture(0.0, t, k, seed=21)
    bright = flat_capture(10 * P.full_well_e, t, k, seed=22)
    noise_floor_e = dark.std().item() / g
    sat_e = (bright.mean().item() - dark.mean().item()) / g
    dr_sim = 20 * math.log10(sat_e / noise_floor_e)
    assert noise_floor_e == pytest.approx(dark_noise_e(P, k, t), rel=0.02)
    assert dr_sim == pytest.approx(dynamic_range_db(P, k, t), abs=0.2)


def test_dynamic_range_falls_with_gain():
    drs = [dynamic_range_db(P, k) for k in (1.0, 2.0, 4.0, 8.0)]
    assert all(a > b for a, b in zip(drs, drs[1:]))
    # quantisation bound (paper 000 Sec. 3: ~84 dB for 12 bit): range / (1/sqrt(12)) DN
    assert drs[0] < 20 * math.log10((P.white_level_dn - P.black_level_dn) * math.sqrt(12))


def test_quantizer_rounds_and_clamps():
    x = torch.tensor([-3.0, 0.49, 0.5, 1.5, 4094.4, 4094.5, 5000.0])
    assert quantize_ste(x, 4095).tolist() == [0.0, 0.0, 1.0, 2.0, 4094.0, 4095.0, 4095.0]


def test_straight_through_gradient():
    phi = torch.full((64, 64), 1e5, requires_grad=True)  # 1000 e- at 10 ms, mid range
    t = torch.tensor(0.01, requires_grad=True)
    x = capture(phi, t, 1.0, P, torch.Generator().manual_seed(0), noise=False)
    x.sum().backward()
    g = P.g1_dn_per_e
    # noise-free: d DN / d phi = g t exactly (quantiser gradient = identity)
    assert torch.allclose(phi.grad, torch.full_like(phi, g * 0.01))
    assert t.grad.item() == pytest.approx(g * (1e5 + P.dark_current_e_per_s) * 64 * 64, rel=1e-5)

    # with noise: gradient still flows, ~ g t on average; saturated pixels get none
    phi2 = torch.full((64, 64), 1e5)
    phi2[:8] = 1e9
    phi2.requires_grad_(True)
    x = capture(phi2, 0.01, 1.0, P, torch.Generator().manual_seed(1))
    x.sum().backward()
    assert torch.all(phi2.grad[:8] == 0)
    assert phi2.grad[8:].mean().item() == pytest.approx(g * 0.01, rel=0.02)


def test_batch_broadcast_exposure_and_gain():
    b = 3
    phi = torch.full((b, 50, 50), 2e5)
    t = torch.tensor([0.001, 0.004, 0.01]).view(b, 1, 1)
    k = torch.tensor([1.0, 2.0, 1.0]).view(b, 1, 1)
    with torch.no_grad():
        x = capture(phi, t, k, P, torch.Generator().manual_seed(5))
    assert x.shape == (b, 50, 50)
    for i in range(b):
        mu = expected_mean_dn(2e5, t[i].item(), k[i].item(), P)
        var = expected_variance_dn(2e5, t[i].item(), k[i].item(), P)
        assert abs(x[i].mean().item() - mu) < 5 * math.sqrt(var / 2500)


def test_capture_numpy_and_seed():
    phi = np.full((32, 48), 3e5, dtype=np.float32)
    a = capture_numpy(phi, 0.002, 1.0, P, seed=42)
    b = capture_numpy(phi, 0.002, 1.0, P, seed=42)
    assert a.dtype == np.uint16 and a.shape == (32, 48)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, capture_numpy(phi, 0.002, 1.0, P, seed=43))


def test_bayer_sample_rggb_positions():
    rgb = torch.stack([torch.full((4, 6), 1.0), torch.full((4, 6), 2.0), torch.full((4, 6), 3.0)])
    m = bayer_sample_rggb(rgb)
    assert m.shape == (4, 6)
    assert torch.all(m[0::2, 0::2] == 1) and torch.all(m[1::2, 1::2] == 3)
    assert torch.all(m[0::2, 1::2] == 2) and torch.all(m[1::2, 0::2] == 2)
    mb = bayer_sample_rggb(np.stack([rgb.numpy()] * 2))  # (2, 3, H, W) numpy
    assert mb.shape == (2, 4, 6) and np.array_equal(mb[1], m.numpy())
    with pytest.raises(ValueError):
        bayer_sample_rggb(torch.zeros(4, 4, 4))
