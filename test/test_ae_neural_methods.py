"""The learned AE methods in the method registry (histogram_nn, semantic_nn, hybrid_nn): weights,
bad input, late features, the pooled-vector split, and one batched path for every method.

Every test makes its own small checkpoint (a freshly built network saved to tmp_path); none
depends on shipped weights."""
import math

import numpy as np
import pytest
import torch

from neural_ae_ros.ae import ExposureController, FrameBatch, Observation, make_method
from neural_ae_ros.ae.networks import ExposureNet
from neural_ae_ros.ae.neural import POOLED_SIZE, SemanticEncoder, default_weights
from neural_ae_ros.ae.training import AeCheckpointError, save_ae_checkpoint
from neural_ae_ros.imaging.exposure import CameraExposureInfo, FrameExposure
from neural_ae_ros.imaging.histograms import histogram_stack
from neural_ae_ros.weights import write_weights

METHODS = ("histogram_nn", "semantic_nn", "hybrid_nn")


def _net(method, seed=0):
    torch.manual_seed(seed)
    net = ExposureNet(method).eval()
    with torch.no_grad():  # away from the neutral start: decisions differ per frame
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ae")
    return {m: save_ae_checkpoint(_net(m, i), d / f"{m}.pt", {"note": "test"}) for i, m in enumerate(METHODS)}


def _raw(seed, shape=(96, 128), level=800.0):
    rng = np.random.default_rng(seed)
    scene = rng.uniform(0.2, 1.8, size=(shape[0] // 8, shape[1] // 8)).repeat(8, 0).repeat(8, 1)
    return np.clip(64 + level * scene + rng.normal(0, 5, shape), 0, 4095).astype(np.uint16)


def _obs(seed, features=None, frame=0):
    obs = Observation.from_raw(_raw(seed), FrameExposure(0.004, 1.0, frame))
    obs.features = features
    return obs


def _conv2(seed, h=24, w=32):
    return torch.randn(128, h, w, generator=torch.Generator().manual_seed(seed)).relu().numpy()


# -- weights -----------------------------------------------------------------------------------
def test_default_weights_missing_is_refused_with_the_file_and_the_train_command(tmp_path):
    missing = tmp_path / "nope" / "hybrid_nn.pt"
    with pytest.raises(AeCheckpointError) as e:
        make_method("hybrid_nn", weights=str(missing))
    msg = str(e.value)
    assert str(missing) in msg and f"neural-ae train --method hybrid_nn" in msg and f"--out {missing}" in msg
    assert default_weights("semantic_nn").name == "semantic_nn.pt"
    assert default_weights("semantic_nn").parent.name == "ae"


def test_checkpoint_of_another_method_is_refused_naming_the_file(checkpoints):
    with pytest.raises(AeCheckpointError, match=r"histogram_nn\.pt: holds a 'histogram_nn' network, not 'hybrid_nn'"):
        make_method("hybrid_nn", weights=str(checkpoints["histogram_nn"]))


def test_checkpoint_of_another_input_size_is_refused_naming_the_file(tmp_path):
    state = ExposureNet("histogram_nn").state_dict()
    # a histogram stack of 10 regions (grids 1,3) instead of 59: the first conv does not fit
    state["histogram_branch.convs.0.weight"] = torch.zeros(64, 10, 4)
    path = write_weights({"format": "neural_ae_ros.ae_net/1", "method": "histogram_nn", "m_exp": 10.0,
                          "state_dict": state}, tmp_path / "h10.pt", {})
    with pytest.raises(AeCheckpointError, match=r"h10\.pt: weights do not fit the 'histogram_nn' network"):
        make_method("histogram_nn", weights=str(path))


# -- bad input -----------------------------------------------------------------------------------
def test_histograms_of_the_wrong_shape_are_a_clear_error(checkpoints):
    ae = make_method("histogram_nn", weights=str(checkpoints["histogram_nn"]))
    obs = _obs(1, frame=17)
    obs.histograms = obs.histograms[:10]  # grids 1,3 only
    with pytest.raises(ValueError, match=r"frame 17: histogram_nn needs the 59 x 256 histogram stack.*\(1, 10, 256\)"):
        ae.next_exposure(obs)


def test_hybrid_with_nan_features_decides_from_its_histogram_branch_and_says_so(checkpoints):
    hybrid = make_method("hybrid_nn", weights=str(checkpoints["hybrid_nn"]))
    bad = _conv2(3)
    bad[5, 2, 2] = np.nan
    d_bad = hybrid.next_exposure(_obs(2, bad))
    assert "histogram branch only" in d_bad.info["fallback"] and "NaN" in d_bad.info["fallback"]
    assert d_bad.info["branches"] == "histogram"
    d_none = hybrid.next_exposure(_obs(2, None))
    assert d_none.info["fallback"] == "histogram branch only (no features)"
    # the fallback is the head on the histogram vector alone
    net = hybrid.net
    with torch.no_grad():
        h = torch.from_numpy(_obs(2).histograms[None].astype(np.float32))
        expected = float(torch.exp(2 * (torch.sigmoid(net.head(net.histogram_branch(h))) - 0.5) * math.log(10)))
    assert d_bad.adjustment_factor == pytest.approx(expected, rel=1e-5)
    # with good features the decision uses both branches and differs
    d_good = hybrid.next_exposure(_obs(2, _conv2(3)))
    assert "fallback" not in d_good.info and d_good.info["branches"] == "histogram+semantic"
    assert d_good.adjustment_factor != pytest.approx(d_bad.adjustment_factor, rel=1e-4)


def test_semantic_without_features_holds_the_command_in_flight(checkpoints):
    sem = make_method("semantic_nn", weights=str(checkpoints["semantic_nn"]))
    for smoothing in ("fast", "paper_ema"):
        ctrl = ExposureController(sem, CameraExposureInfo.from_yaml(), smoothing=smoothing, deadband_ev=0.0)
        first = ctrl.update(_obs(4, _conv2(4), frame=0))
        # the camera has not yet applied it (frame 1 still at 4 ms): a hold keeps the command in
        # flight instead of going back to the frame's own exposure
        held = ctrl.update(_obs(4, None, frame=1))
        assert ctrl.last_info["mode"] == "held_by_method" and ctrl.last_info["held"]
        assert "hold exposure (no features)" in ctrl.last_info["method_info"]["fallback"]
        assert held.effective_exposure_s == pytest.approx(first.effective_exposure_s)
        nan = _conv2(5)
        nan[0, 0, 0] = np.inf
        ctrl.update(_obs(4, nan, frame=2))
        assert "NaN/inf" in ctrl.last_info["method_info"]["fallback"]


def test_learned_method_commands_are_clamped_to_the_camera_limits(checkpoints):
    ae = make_method("histogram_nn", weights=str(checkpoints["histogram_nn"]))
    with torch.no_grad():
        ae.net.head.bias.fill_(50.0)  # u = M_exp on every frame
    cam = CameraExposureInfo.from_yaml()
    ctrl = ExposureController(ae, cam, smoothing="paper_ema", ema_mu=0.0)
    e = cam.limits.max_effective_exposure_s
    obs = Observation.from_raw(_raw(6, level=50), FrameExposure(cam.limits.max_exposure_time_s,
                                                                 cam.limits.max_analog_gain, 0))
    cmd = ctrl.update(obs)
    assert ctrl.last_info["adjustment_factor"] == pytest.approx(10.0, rel=1e-4)
    assert cmd.clamped and cmd.effective_exposure_s == pytest.approx(e)


# -- the split: pooled vector on the wire ------------------------------------------------------
@pytest.mark.parametrize("method", ["semantic_nn", "hybrid_nn"])
def test_pooled_vector_from_the_detector_side_gives_the_same_decision_as_the_conv2_map(checkpoints, method):
    ae = make_method(method, weights=str(checkpoints[method]))
    enc = SemanticEncoder(checkpoints[method], method)
    assert enc.sha256 == ae.sha256
    conv2 = _conv2(7, 96, 160)  # a 640x384 frame's conv2 map: 7.9 MB as float32
    pooled = enc.encode(torch.from_numpy(conv2))
    assert pooled.shape == (POOLED_SIZE,) and pooled.dtype == np.float32 and pooled.nbytes < 20_000
    u_map = ae.next_exposure(_obs(8, conv2)).adjustment_factor
    u_vec = ae.next_exposure(_obs(8, pooled)).adjustment_factor
    assert u_vec == pytest.approx(u_map, rel=1e-5)


def test_encoder_refuses_a_checkpoint_without_a_semantic_branch(checkpoints):
    with pytest.raises(AeCheckpointError, match="no semantic branch"):
        SemanticEncoder(checkpoints["histogram_nn"])


# -- one batched path for every method --------------------------------------------------------
@pytest.mark.parametrize("method", ["average", "gradient", *METHODS])
def test_every_method_runs_batched_with_the_single_frame_decision(checkpoints, method):
    kwargs = {"weights": str(checkpoints[method])} if method in METHODS else {}
    ae = make_method(method, **kwargs)
    obs = [_obs(10 + i, _conv2(20 + i) if method in ("semantic_nn", "hybrid_nn") else None, frame=i)
           for i in range(4)]
    for o, level in zip(obs, (200, 800, 1500, 3000)):  # different brightness per frame
        o.raw = _raw(o.frame_index, level=level)
        o.histograms, o.mean_level_dn = histogram_stack(o.raw, 4095, return_mean=True)
    batched = ae.adjustment_factors(FrameBatch.from_observations(obs))
    single = []
    for o in obs:  # independent frames, as the batch treats them
        ae.reset()
        single.append(ae.next_exposure(o).adjustment_factor)
    assert batched.shape == (4,) and batched.dtype == torch.float64
    np.testing.assert_allclose(batched.numpy(), single, rtol=1e-5)
    assert np.ptp(single) > 1e-3  # the decision depends on the frame


def test_benchmark_runs_every_method_through_the_batched_path(checkpoints):
    """The benchmark's one path (MethodPolicy -> adjustment_factors) gives the classical methods
    the exposure of the one-step controller path (paper_ema, mu = 0) and a learned method the
    decision of its network on that frame."""
    from neural_ae_ros.detector.inference import load_detector
    from neural_ae_ros.evaluation.benchmark import MethodPolicy, MethodUnderTest
    from neural_ae_ros.evaluation.headroom_run import PairCapture, one_step_exposure

    rng = np.random.default_rng(3)
    rad = (rng.uniform(0.1, 3.0, size=(3, 24, 32)).repeat(8, 1).repeat(8, 2) * 2e4).astype(np.float32)
    cap = PairCapture(rad, rad * 1.1, noise_seed=5)
    kappas = [1 / 4, 4.0, 1 / 1.5, 1.5]
    det = load_detector(None)
    for name in ("average", "gradient"):
        got = MethodPolicy(MethodUnderTest(name), det).effective_exposures_s(cap, kappas)
        want = [one_step_exposure(cap, name, kappa, mu=0.0) for kappa in kappas]
        np.testing.assert_allclose(got, want, rtol=1e-6)
    policy = MethodPolicy(MethodUnderTest("histogram_nn", None, str(checkpoints["histogram_nn"])), det)
    got = policy.effective_exposures_s(cap, kappas)
    for kappa, e in zip(kappas, got):
        raw, t, k = cap.raw(1, kappa * cap.e_base_s)
        obs = Observation(FrameExposure(t, k, 0), histograms=histogram_stack(raw.numpy().astype(np.uint16), 4095))
        assert e == pytest.approx(t * k * policy.ae.next_exposure(obs).adjustment_factor, rel=1e-4)


def test_graph_adds_isp_and_the_methods_own_detector_for_feature_methods(tmp_path):
    from neural_ae_ros.graph import pipeline, ros_args

    weights = tmp_path / "w" / "hybrid_nn.pt"
    nodes = {n.executable: n for n in pipeline("hybrid_nn", network_weights=str(weights), wait_for_recorder=True)}
    assert set(nodes) == {"camera_bridge", "histogram_node", "isp_node", "detector_node", "ae_controller"}
    assert nodes["detector_node"].parameters == {"checkpoint": str(tmp_path / "w" / "hybrid_nn_detector.pt"),
                                                 "ae_checkpoint": str(weights)}
    assert nodes["ae_controller"].parameters["network_weights"] == str(weights)
    assert f"network_weights:={weights}" in ros_args(nodes["ae_controller"])
    # the camera waits for the ISP too (image) and for the ISP and detector (exposure records)
    assert nodes["camera_bridge"].parameters["wait_for_image_subscribers"] == 2
    assert nodes["camera_bridge"].parameters["wait_for_exposure_subscribers"] == 4
    # a histogram-only network needs neither ISP nor detector; its default weights are the shipped file
    plain = {n.executable: n for n in pipeline("histogram_nn")}
    assert set(plain) == {"camera_bridge", "histogram_node", "ae_controller"}
    assert plain["ae_controller"].parameters["network_weights"] == str(default_weights("histogram_nn"))
    assert "network_weights" not in {n.executable: n for n in pipeline("average")}["ae_controller"].parameters


# -- target averaging in the running loop ------------------------------------------------------
def test_target_averaging_damps_small_changes_and_follows_jumps(checkpoints):
    plain = make_method("histogram_nn", weights=str(checkpoints["histogram_nn"]))
    avg = make_method("histogram_nn", weights=str(checkpoints["histogram_nn"]), target_alpha=0.25, target_jump_ev=1.0)
    e_obs = 0.004
    frames = [_obs(40 + i, frame=i) for i in range(6)]  # same exposure, different noise/texture: small target changes
    targets_plain = [math.log2(e_obs * plain.next_exposure(o).adjustment_factor) for o in frames]
    targets_avg = [math.log2(e_obs * avg.next_exposure(o).adjustment_factor) for o in frames]
    assert targets_avg[0] == pytest.approx(targets_plain[0])  # the first frame starts the average
    assert max(abs(a - b) for a, b in zip(targets_plain, targets_plain[1:])) < 1.0  # all "small" changes
    for k in range(1, len(frames)):  # each step moves a quarter of the way to the new target
        assert targets_avg[k] == pytest.approx(targets_avg[k - 1] + 0.25 * (targets_plain[k] - targets_avg[k - 1]), abs=1e-9)
    assert np.std(np.diff(targets_avg)) < np.std(np.diff(targets_plain))
    # a frame 4 EV darker in exposure asks for a target >= 1 EV away: taken whole, not averaged
    dark = Observation.from_raw(_raw(99, level=50.0), FrameExposure(e_obs / 16, 1.0, 7))
    u_plain = plain.next_exposure(dark).adjustment_factor
    u_avg = avg.next_exposure(dark).adjustment_factor
    if abs(math.log2(dark.effective_exposure_s * u_plain) - targets_avg[-1]) >= 1.0:
        assert u_avg == pytest.approx(u_plain)
    avg.reset()  # a new sequence starts without memory
    assert avg.next_exposure(frames[0]).adjustment_factor == pytest.approx(plain.next_exposure(frames[0]).adjustment_factor)
