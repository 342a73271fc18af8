"""AE methods and controller, in a pure-Python closed loop with the Eq. 1-3 sensor model."""
import math

import numpy as np
import pytest
import torch

from neural_ae_ros.ae import (
    AutoExposureMethod,
    AverageAE,
    ExposureController,
    ExposureDecision,
    GradientAE,
    Observation,
    available_methods,
    make_method,
    method_class,
)
from neural_ae_ros.imaging.exposure import CameraExposureInfo, CameraLimits, FrameExposure
from neural_ae_ros.imaging.sensor import SensorParams, capture_numpy

torch.set_num_threads(1)
P = SensorParams.from_yaml()
LIM = CameraLimits(1e-5, 0.015, 1.0, P.max_analog_gain)
CAM = CameraExposureInfo(LIM, 0.015, P.black_level_dn, P.white_level_dn, 0, 30.0, float(P.white_level_dn))


def at(frame_index, t, k, source=None, **fields):
    """Observation of frame ``frame_index`` captured with (t, K) from command ``source``."""
    src = frame_index - 1 if source is None else source
    return Observation(FrameExposure(t, k, frame_index, src), **fields)
TARGET_DN = P.black_level_dn + 0.5 * (P.white_level_dn - P.black_level_dn)


def textured_scene(h=240, w=320, mean_e_per_s=2e5, seed=0):
    """Checkerboard-like texture with log-normal blocks: a scene with real edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    tex = (np.sin(xx / 7.0) * np.cos(yy / 11.0) > 0) * 0.8 + 0.2
    blocks = np.exp(rng.normal(0, 0.5, (h // 8 + 1, w // 8 + 1))).repeat(8, 0).repeat(8, 1)[:h, :w]
    scene = (tex * blocks).astype(np.float32)
    return scene * (mean_e_per_s / scene.mean())


def observe(scene, t, k, frame_index, seed=None):
    raw = capture_numpy(scene, t, k, P, seed=frame_index if seed is None else seed)
    return Observation.from_raw(raw, FrameExposure(t, k, frame_index, frame_index - 1), P.white_level_dn,
                                P.black_level_dn)


def test_registry():
    assert {"average", "gradient"} <= set(available_methods())
    assert isinstance(make_method("average"), AverageAE)
    g = make_method("gradient", lam=500.0, kp=0.3)
    assert isinstance(g, GradientAE) and g.lam == 500.0 and g.kp == 0.3
    with pytest.raises(ValueError, match="unknown AE method"):
        make_method("nope")


def test_average_factor():
    m = AverageAE()
    obs = at(0, 0.001, 1.0, mean_level_dn=P.black_level_dn + (TARGET_DN - P.black_level_dn) / 2)
    assert m.next_exposure(obs).adjustment_factor == pytest.approx(2.0)
    obs = at(0, 0.001, 1.0, mean_level_dn=TARGET_DN)
    assert m.next_exposure(obs).adjustment_factor == pytest.approx(1.0)
    # black frame (at / below the pedestal): bounded step up, no division by zero
    obs = at(0, 0.001, 1.0, mean_level_dn=P.black_level_dn - 3)
    assert m.next_exposure(obs).adjustment_factor == pytest.approx(16.0)
    # mean from histograms when no mean is given
    hist = np.zeros((59, 256), np.uint32)
    hist[0, 64] = 100  # bin 64 -> centre 1032 DN
    obs = at(0, 0.001, 1.0, histograms=hist)
    assert m.next_exposure(obs).info["mean_level_dn"] == pytest.approx(1032.0)
    with pytest.raises(ValueError):
        m.next_exposure(at(0, 0.001, 1.0))


def test_average_ae_closed_loop_converges_to_mid_range():
    scene = textured_scene(mean_e_per_s=2e5)
    ctrl = ExposureController(make_method("average"), CAM, smoothing="paper_ema", ema_mu=0.0)
    t, k = 1e-4, 1.0  # 6 stops under-exposed
    means = []
    for i in range(10):
        obs = observe(scene, t, k, i)
        means.append(obs.mean_level_dn)
        cmd = ctrl.update(obs)
        t, k = cmd.exposure_time_s, cmd.analog_gain
    assert means[0] < 100
    assert all(abs(m / TARGET_DN - 1) < 0.03 for m in means[-3:]), means
    assert sum(abs(m / TARGET_DN - 1) < 0.03 for m in means) >= 5  # within a few frames


def test_average_ae_with_ema_converges_and_follows_eq5():
    scene = textured_scene(mean_e_per_s=1e6)  # bright: over-exposed at t = 15 ms
    ctrl = ExposureController(make_method("average"), CAM, smoothing="paper_ema", ema_mu=0.9)
    t, k = 0.015, 1.0
    for i in range(80):
        obs = observe(scene, t, k, i)
        cmd = ctrl.update(obs)
        assert cmd.effective_exposure_s == pytest.approx(obs.effective_exposure_s
                                                         * ctrl.last_info["adjustment_factor"] ** 0.1)
        t, k = cmd.exposure_time_s, cmd.analog_gain
    assert obs.mean_level_dn == pytest.approx(TARGET_DN, rel=0.03)


class _Fixed(AutoExposureMethod):
    name = "fixed"

    def __init__(self, u):
        self.u = u

    def next_exposure(self, obs):
        return ExposureDecision(self.u)


def test_controller_uses_exposure_of_observed_frame_and_splits():
    ctrl = ExposureController(_Fixed(4.0), CAM, smoothing="paper_ema", ema_mu=0.0)
    ctrl.update(at(0, 0.001, 1.0, mean_level_dn=100.0))  # a command nobody applied
    cmd = ctrl.update(at(7, 0.01, 1.0, mean_level_dn=100.0))
    assert cmd.source_frame_index == 7 and cmd.method == "fixed"
    assert cmd.effective_exposure_s == pytest.approx(0.04)  # 0.01 * 4, not 0.004 * 4
    assert cmd.exposure_time_s == pytest.approx(0.015) and cmd.analog_gain == pytest.approx(0.04 / 0.015)
    assert not cmd.clamped
    cmd = ExposureController(_Fixed(1e3), CAM, smoothing="paper_ema", ema_mu=0.0).update(at(0, 0.01, 8.0, mean_level_dn=1.0))
    assert cmd.clamped and cmd.analog_gain == LIM.max_analog_gain and cmd.exposure_time_s == 0.015


def test_controller_guards_bad_method_output():
    for bad in (float("nan"), -2.0, 0.0, float("inf")):
        ctrl = ExposureController(_Fixed(bad), CAM, smoothing="paper_ema", ema_mu=0.0)
        cmd = ctrl.update(at(3, 0.002, 1.0))
        assert cmd.effective_exposure_s == pytest.approx(0.002) and ctrl.last_info["problems"]
    ctrl = ExposureController(_Fixed(2.0), CAM, smoothing="paper_ema", ema_mu=0.0)
    cmd = ctrl.update(at(3, float("nan"), 1.0))
    assert math.isfinite(cmd.exposure_time_s) and ctrl.last_info["problems"]
    cmd = ExposureController(_Fixed(100.0), CAM, smoothing="paper_ema", ema_mu=0.0,
                             max_adjustment=10.0).update(at(0, 0.001, 1.0))
    assert cmd.effective_exposure_s == pytest.approx(0.01)


@pytest.mark.parametrize("t,expect_up", [(1e-4, True), (5e-4, True), (0.015, False)])
def test_gradient_ae_direction(t, expect_up):
    scene = textured_scene(mean_e_per_s=4e5)  # t=0.015 -> mean ~ 6000 e-, bright parts clip
    obs = observe(scene, t, 1.0 if t < 0.015 else 4.0, 0)
    d = GradientAE().next_exposure(obs)
    assert not d.info["fallback"]
    if expect_up:
        assert d.adjustment_factor > 1.05 and d.info["gamma_hat"] < 1
    else:
        assert d.adjustment_factor < 0.95 and d.info["gamma_hat"] > 1


def test_gradient_ae_flat_frames_fall_back_towards_mid_range():
    m = GradientAE()
    black = np.full((64, 64), int(P.black_level_dn), np.uint16)
    white = np.full((64, 64), P.white_level_dn, np.uint16)
    up = m.next_exposure(Observation.from_raw(black, FrameExposure(0.001, 1.0, 0)))
    down = m.next_exposure(Observation.from_raw(white, FrameExposure(0.001, 1.0, 0)))
    assert up.info["fallback"] and up.adjustment_factor > 1
    assert down.info["fallback"] and down.adjustment_factor < 1
    with pytest.raises(ValueError, match="raw"):
        m.next_exposure(at(0, 0.001, 1.0, mean_level_dn=100.0))


def test_gradient_ae_linear_update_rule():
    m = GradientAE(kp=0.5)
    assert m.adjustment_from_gamma(1.0) == pytest.approx(1.0)
    assert m.adjustment_from_gamma(0.5) == pytest.approx(1.25)  # alpha = 1
    assert m.adjustment_from_gamma(1.9) == pytest.approx(1 - 0.25 * 0.9)  # alpha = 1/2


def test_gradient_ae_closed_loop_leaves_extremes():
    scene = textured_scene(mean_e_per_s=4e5)
    for t0, k0 in ((1e-4, 1.0), (0.015, 8.0)):
        ctrl = ExposureController(make_method("gradient"), CAM, smoothing="paper_ema", ema_mu=0.0)
        t, k = t0, k0
        e0 = t * k
        for i in range(12):
            cmd = ctrl.update(observe(scene, t, k, i))
            t, k = cmd.exposure_time_s, cmd.analog_gain
        ratio = t * k / e0
        assert (ratio > 4) if t0 < 0.01 else (ratio < 0.25)


def test_wait_for_applied_command_holds_until_the_decision_lands():
    """With wait_for_applied_command, frames captured before the last decision took effect get
    that decision repeated (held), and a new decision comes from the first frame that shows it."""
    ctrl = ExposureController(make_method("average"), CAM, smoothing="paper_ema", ema_mu=0.0,
                              wait_for_applied_command=True)
    first = ctrl.update(at(0, 0.001, 1.0, source=-1, mean_level_dn=200.0))
    assert not ctrl.last_info["held"] and first.effective_exposure_s > 0.001 * 1.5
    # frames 1..3 were captured before command 0 landed (latency 3): held, same settings
    for f in (1, 2, 3):
        held = ctrl.update(at(f, 0.001, 1.0, source=-1, mean_level_dn=200.0))
        assert ctrl.last_info["held"] and held.source_frame_index == f
        assert held.effective_exposure_s == first.effective_exposure_s
    # frame 4 shows command 0: a new decision
    fresh = ctrl.update(at(4, first.exposure_time_s, first.analog_gain, source=0, mean_level_dn=2079.5))
    assert not ctrl.last_info["held"] and abs(fresh.effective_exposure_s / first.effective_exposure_s - 1) < 0.01
    # without the option every frame is decided anew
    free = ExposureController(make_method("average"), CAM, smoothing="paper_ema", ema_mu=0.0)
    a = free.update(at(0, 0.001, 1.0, source=-1, mean_level_dn=200.0))
    b = free.update(at(1, 0.001, 1.0, source=-1, mean_level_dn=200.0))
    assert not free.last_info["held"] and b.effective_exposure_s == a.effective_exposure_s


def test_methods_describe_themselves():
    from neural_ae_ros.ae import INPUT_RAW, method_class, method_kwargs

    assert INPUT_RAW in method_class("gradient").inputs and INPUT_RAW not in method_class("average").inputs
    kw = method_kwargs("gradient", {"gradient_lambda": 500.0, "gradient_delta": 0.1, "gradient_kp": 0.3,
                                    "target_level_fraction": 0.4})
    assert kw == {"lam": 500.0, "delta": 0.1, "kp": 0.3}  # only gradient's own parameters, by constructor name
    g = make_method("gradient", **kw)
    assert (g.lam, g.delta, g.kp) == (500.0, 0.1, 0.3)


def test_node_parameters_and_graph_derive_from_the_registry():
    from neural_ae_ros.graph import method_needs_raw, pipeline
    from neural_ae_ros.parameters import AE_METHODS, NODE_PARAMETERS

    specs = {s.name: s for s in NODE_PARAMETERS["ae_controller"]}
    assert tuple(specs["method"].choices) == tuple(available_methods()) == AE_METHODS
    for name in AE_METHODS:
        for p in method_class(name).parameters:  # the class: learned methods need weights to build
            assert (specs[p.name].low, specs[p.name].high, specs[p.name].type) == (p.low, p.high, p.type)
    assert method_needs_raw("gradient") and not method_needs_raw("average")
    cam = [n for n in pipeline("gradient", wait_for_recorder=True) if n.executable == "camera_bridge"][0]
    assert cam.parameters["wait_for_image_subscribers"] == 2  # histogram_node + the controller's raw input
    # no camera facts of its own: the controller reads them from camera_exposure_info
    assert not {"min_exposure_time_s", "max_analog_gain", "black_level_dn"} & set(specs)
