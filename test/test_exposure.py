"""Eq. 5 EMA, Eq. 6 shutter/gain split, limits and command sanitising."""
import math
from pathlib import Path

import pytest
import torch

from neural_ae_ros.imaging.exposure import (
    CameraConfig,
    CameraLimits,
    ema_log_exposure,
    sanitize_command,
    split_exposure,
)
from neural_ae_ros.imaging.sensor import SensorParams

LIM = CameraLimits(min_exposure_time_s=1e-5, max_exposure_time_s=0.015,
                   min_analog_gain=1.0, max_analog_gain=16.0)
T_MAX = 0.015


def test_split_below_t_max_uses_time_only():
    t, k, clamped = split_exposure(0.004, T_MAX, LIM)
    assert (t, k, clamped) == (pytest.approx(0.004), 1.0, False)


def test_split_above_t_max_raises_gain():
    # paper 000 Eq. 6: K = max(1, e / T_max), t = e / K
    for e in (0.015, 0.03, 0.1, 0.2):
        t, k, clamped = split_exposure(e, T_MAX, LIM)
        assert k == pytest.approx(max(1.0, e / T_MAX))
        assert t == pytest.approx(e / k)
        assert t * k == pytest.approx(e) and not clamped


def test_split_clamps_to_limits():
    t, k, clamped = split_exposure(1.0, T_MAX, LIM)  # > 0.015 * 16
    assert (t, k, clamped) == (0.015, 16.0, True)
    t, k, clamped = split_exposure(1e-7, T_MAX, LIM)  # < minimum exposure
    assert (t, k, clamped) == (1e-5, 1.0, True)
    for bad in (float("nan"), -1.0, 0.0):
        t, k, clamped = split_exposure(bad, T_MAX, LIM)
        assert (t, k, clamped) == (1e-5, 1.0, True)
    assert split_exposure(float("inf"), T_MAX, LIM) == (0.015, 16.0, True)


def test_split_t_max_beyond_camera_limit_hands_over_to_gain():
    lim = CameraLimits(1e-5, max_exposure_time_s=0.01, min_analog_gain=1.0, max_analog_gain=16.0)
    t, k, clamped = split_exposure(0.02, 0.05, lim)
    assert t == pytest.approx(0.01) and k == pytest.approx(2.0) and not clamped
    with pytest.raises(ValueError, match="t_max_s"):
        split_exposure(0.01, 0.0, lim)


def test_ema_log_exposure_eq5():
    e_prev, u = 0.004, 3.0
    for mu in (0.0, 0.5, 0.9, 1.0):
        e = ema_log_exposure(e_prev, u, mu)
        assert math.log(e) == pytest.approx(mu * math.log(e_prev) + (1 - mu) * math.log(e_prev * u))
    assert ema_log_exposure(e_prev, 1.0) == pytest.approx(e_prev)
    assert ema_log_exposure(e_prev, u, 0.0) == pytest.approx(e_prev * u)
    # repeated application of a constant u converges geometrically in log space
    e = e_prev
    for _ in range(10):
        e = ema_log_exposure(e, u, 0.9)
    assert e == pytest.approx(e_prev * u)


def test_ema_torch_differentiable_and_validation():
    u = torch.tensor([0.5, 2.0], requires_grad=True)
    e = ema_log_exposure(torch.tensor([0.01, 0.01]), u, 0.9)
    e.sum().backward()
    assert torch.all(u.grad > 0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            ema_log_exposure(0.01, bad)
    with pytest.raises(ValueError):
        ema_log_exposure(-0.01, 2.0)
    with pytest.raises(ValueError):
        ema_log_exposure(0.01, 2.0, mu=1.5)


def test_sanitize_command():
    t, k, probs = sanitize_command(0.005, 2.0, LIM)
    assert (t, k, probs) == (0.005, 2.0, [])
    t, k, probs = sanitize_command(float("nan"), float("nan"), LIM)
    assert (t, k) == (1e-5, 1.0) and len(probs) == 2 and "nan" in probs[0]
    t, k, probs = sanitize_command(-0.01, 0.0, LIM)
    assert (t, k) == (1e-5, 1.0) and all("not positive" in p for p in probs)
    t, k, probs = sanitize_command(float("inf"), 100.0, LIM)
    assert (t, k) == (0.015, 16.0) and "inf" in probs[0] and "above the maximum" in probs[1]
    t, k, probs = sanitize_command(1e9, 1e12, LIM, fallback_exposure_time_s=0.002,
                                   fallback_analog_gain=2.0)
    assert (t, k) == (0.002, 2.0) and all("absurdly large" in p for p in probs)
    t, k, probs = sanitize_command("fast", None, LIM)
    assert (t, k) == (1e-5, 1.0) and all("not a number" in p for p in probs)
    t, k, probs = sanitize_command(1e-7, 0.5, LIM)
    assert (t, k) == (1e-5, 1.0) and all("below the minimum" in p for p in probs)


def test_invalid_limits_raise_clear_errors():
    with pytest.raises(ValueError, match="min_exposure_time_s=0.1 > max_exposure_time_s"):
        CameraLimits(min_exposure_time_s=0.1, max_exposure_time_s=0.01, min_analog_gain=1.0, max_analog_gain=16.0)
    with pytest.raises(ValueError, match="min_analog_gain"):
        CameraLimits(1e-5, 0.015, min_analog_gain=4.0, max_analog_gain=2.0)
    with pytest.raises(ValueError, match="max_exposure_time_s=nan"):
        CameraLimits(1e-5, max_exposure_time_s=float("nan"), min_analog_gain=1.0, max_analog_gain=16.0)
    with pytest.raises(ValueError, match="min_analog_gain=0.5"):
        CameraLimits(1e-5, 0.015, min_analog_gain=0.5, max_analog_gain=16.0)
    with pytest.raises(ValueError, match="unknown"):
        CameraLimits.from_dict({"max_gain": 3})


def test_camera_yaml():
    lim = CameraLimits.from_yaml()
    cfg = CameraConfig.from_yaml()
    assert cfg.limits == lim
    assert lim.min_exposure_time_s == pytest.approx(1e-5)
    assert lim.max_exposure_time_s == pytest.approx(0.015)
    assert lim.max_analog_gain == pytest.approx(SensorParams.from_yaml().max_analog_gain)
    assert cfg.frame_rate_hz == 30.0 and cfg.actuation_latency_frames == 2
    assert cfg.t_max_s == pytest.approx(0.015)
    assert lim.min_exposure_time_s <= cfg.initial_exposure_time_s <= lim.max_exposure_time_s


def test_camera_config_validation(tmp_path: Path):
    with pytest.raises(ValueError, match="actuation_latency_frames=7"):
        CameraConfig(LIM, 30.0, 7, 0.005, 1.0, 0.015)
    with pytest.raises(ValueError, match="frame period"):
        CameraConfig(CameraLimits(1e-5, 0.05, 1.0, 16.0), 30.0, 2, 0.005, 1.0, 0.015)
    with pytest.raises(ValueError, match="missing"):
        CameraLimits.from_dict({"min_exposure_time_s": 1e-5})
    p = tmp_path / "cam.yaml"
    p.write_text("camera:\n  actuation_latency_frames: 1.5\nlimits: {}\n")
    with pytest.raises(ValueError, match="integer"):
        CameraConfig.from_yaml(p)
