"""Eq. 7 HDR merge from brackets the project synthesises from known radiance; noise adaptation."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from neural_ae_ros.imaging import hdr_merge as hm
from neural_ae_ros.imaging.sensor import SensorParams, capture

TIMES = [1.0, 1.0 / 16, 1.0 / 256]


def _radiance(shape=(3, 64, 64), seed=0):
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(1e-3), np.log(200.0), shape))  # ~106 dB


def test_noise_free_merge_is_exact():
    rad = _radiance()
    br = hm.synthesize_brackets(rad, TIMES, full_scale=1.0)
    res = hm.merge_exposures(br, TIMES)
    ok = ~res.saturated_all
    assert ok.mean() > 0.99
    np.testing.assert_allclose(res.hdr[ok], rad[ok], rtol=1e-5)


def test_merge_recovers_radiance_within_noise():
    rad = _radiance((3, 96, 96), seed=1)
    shot, floor = 1e-4, 1e-6  # normalised variance model V(J) = shot * J + floor
    br = hm.synthesize_brackets(rad, TIMES, full_scale=1.0, shot=shot, floor=floor, rng=np.random.default_rng(2))
    res = hm.merge_exposures(br, TIMES, noise_model=(shot, floor))
    ok = ~res.saturated_all
    z = (res.hdr[ok] - rad[ok]) / np.sqrt(res.variance[ok])
    assert abs(float(np.mean(z))) < 0.05  # unbiased (away from clipping)
    assert 0.8 < float(np.std(z)) < 1.2  # the predicted variance is right
    assert np.mean(np.abs(z) < 5) > 0.999
    # the paper's constant-V weights also recover it, with a somewhat larger error
    res2 = hm.merge_exposures(br, TIMES, v_unsat=floor + shot * 0.5)
    rel = np.abs(res2.hdr[ok] - rad[ok]) / rad[ok]
    rel_opt = np.abs(res.hdr[ok] - rad[ok]) / rad[ok]
    assert np.median(rel) < 1.5 * np.median(rel_opt)
    assert abs(float(np.median((res2.hdr[ok] - rad[ok]) / rad[ok]))) < 0.002  # still unbiased


def test_saturated_samples_are_excluded():
    rad = np.full((3, 4, 4), 50.0)  # saturates the 1 s and 1/16 s exposures
    br = hm.synthesize_brackets(rad, TIMES, full_scale=1.0)
    res = hm.merge_exposures(br, TIMES)
    np.testing.assert_allclose(res.hdr, 50.0, rtol=1e-6)
    rad2 = np.full((3, 2, 2), 1e4)  # saturates all three: lower bound from the shortest
    res2 = hm.merge_exposures(hm.synthesize_brackets(rad2, TIMES, 1.0), TIMES)
    assert res2.saturated_all.all()
    np.testing.assert_allclose(res2.hdr, 256.0)


def test_weights_follow_eq7():
    # two unsaturated brackets with constant V: weights (K t)^2
    J = [np.array([0.5]), np.array([0.2])]
    res = hm.merge_exposures(J, [1.0, 0.5], analog_gains=[1.0, 2.0])  # e = 1, 1 -> equal weights
    np.testing.assert_allclose(res.hdr, [0.35])
    res = hm.merge_exposures(J, [1.0, 0.25])  # e = 1, 0.25 -> weights 1, 1/16
    np.testing.assert_allclose(res.hdr, [(1 * 0.5 + (1 / 16) * 0.8) / (1 + 1 / 16)])


def test_srgb_curve_inverts():
    v = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(hm.srgb_to_linear(hm.linear_to_srgb(v)), v, atol=1e-12)


def _write_folder(tmp_path, rad, fmt, quality=95):
    br = hm.synthesize_brackets(rad, TIMES, full_scale=1.0, encoding="srgb", bits=8)
    frames = []
    for name in ("frame_0000", "frame_0001"):
        brackets = []
        for i, J in enumerate(br):
            img = Image.fromarray((np.moveaxis(J, 0, -1) * 255 + 0.5).astype(np.uint8))
            if fmt == "jpg":
                img.save(tmp_path / f"{name}_{i}.jpg", quality=quality, subsampling=0)
            else:
                img.save(tmp_path / f"{name}_{i}.png")
            brackets.append({"file": f"{name}_{i}.{fmt}", "exposure_time_s": TIMES[i], "analog_gain": 1})
        frames.append({"name": name, "brackets": brackets})
    meta = {"format": "neural_ae_ros.brackets/1", "response": "srgb", "black_level": 0, "white_level": 255,
            "saturation": 0.97, "radiance_scale": 1000.0, "fps": 10, "frames": frames}
    (tmp_path / "brackets.json").write_text(json.dumps(meta))


def test_merge_folder_srgb_png(tmp_path):
    rad = _radiance((3, 32, 48), seed=3)
    _write_folder(tmp_path, rad, "png")
    out = list(hm.merge_folder(tmp_path))
    assert [n for n, _, _ in out] == ["frame_0000", "frame_0001"]
    name, hdr, var = out[0]
    assert hdr.shape == rad.shape
    ok = np.isfinite(var) & (rad > 2e-3)  # above the darkest 8-bit code of the longest exposure
    rel = np.abs(hdr[ok] / 1000.0 - rad[ok]) / rad[ok]
    # 8-bit sRGB: a code step is <= ~2 % of the linear value above ~10 % of full scale
    assert np.median(rel) < 0.01
    assert np.percentile(rel, 95) < 0.06


def test_merge_folder_jpeg(tmp_path):
    # JPEG is lossy on per-pixel noise; use a scene of 8x8 blocks (one per JPEG block)
    rad = np.kron(_radiance((3, 4, 6), seed=4), np.ones((1, 8, 8)))
    _write_folder(tmp_path, rad, "jpg")
    _, hdr, var = next(hm.merge_folder(tmp_path))
    ok = np.isfinite(var) & (rad > 5e-3)
    rel = np.abs(hdr[ok] / 1000.0 - rad[ok]) / rad[ok]
    assert np.median(rel) < 0.05


def test_merge_folder_errors(tmp_path):
    from neural_ae_ros.scenes.user_data import UserDataError

    with pytest.raises(UserDataError, match="brackets.json: bracket manifest not found"):
        next(hm.merge_folder(tmp_path))
    m = {"format": "neural_ae_ros.brackets/1", "response": "linear", "black_level": 0, "white_level": 255, "fps": 1,
         "radiance_scale": 1.0, "frames": [{"name": "f", "brackets": [
             {"file": "f_0.png", "exposure_time_s": 1, "analog_gain": 1},
             {"file": "f_1.png", "exposure_time_s": 0.1, "analog_gain": 1}]}]}
    (tmp_path / "brackets.json").write_text(json.dumps(m))
    with pytest.raises(UserDataError, match="f_0.png: bracket file not found"):
        next(hm.merge_folder(tmp_path))
    (tmp_path / "brackets.json").write_text("{not json")
    with pytest.raises(UserDataError, match="invalid JSON"):
        next(hm.merge_folder(tmp_path))


def test_noise_adaptation_matches_target_sensor():
    p = SensorParams.from_yaml()
    t, K = 2e-3, 1.0
    phi = 5e6  # 10 ke- at 2 ms
    n = 200_000
    g = torch.Generator().manual_seed(0)
    # reference: the target sensor's own noise
    ref = capture(torch.full((n,), phi), t, K, p, generator=g)
    var_ref = float(ref.var())
    # source already carries half the target's electron variance
    tgt_e2 = float(hm.target_noise_e2(phi * t + p.dark_current_e_per_s * t, K, p))
    src_var_rate = 0.5 * tgt_e2 / t ** 2  # (e-/s)^2
    rng = np.random.default_rng(1)
    noisy = phi + rng.standard_normal(n) * np.sqrt(src_var_rate)
    out = hm.capture_adapted(noisy, np.full(n, src_var_rate), t, K, p, generator=g)
    assert abs(float(out.float().mean()) - float(ref.mean())) < 1.0
    assert abs(float(out.var()) / var_ref - 1) < 0.03
    # augmentation: strength 1.5 scales the total variance by 2.25
    out2 = hm.capture_adapted(noisy, np.full(n, src_var_rate), t, K, p, strength=1.5, generator=g)
    assert abs(float(out2.var()) / var_ref - 2.25) < 0.08
    # a source noisier than the target gets no extra noise
    std = hm.adapted_noise_std_e(1e4, 2 * tgt_e2, K, p)
    assert float(std) == 0.0


def test_noise_strength_sampling():
    rng = np.random.default_rng(0)
    s = hm.sample_noise_strength(rng, 2.0, size=10000)
    assert s.min() >= 0.5 and s.max() <= 2.0
    assert abs(np.mean(np.log(s))) < 0.03


def test_base_exposure_puts_mean_at_half_white():
    p = SensorParams.from_yaml()
    rad = np.full((8, 8), 4e6, np.float32)
    e = hm.base_exposure_s(rad, p)
    dn = capture(torch.from_numpy(rad), e, 1.0, p, noise=False)
    assert abs(float(dn.mean()) - p.black_level_dn - 0.5 * p.white_level_dn) < 2.0
