"""Paper 000 exposure networks (Section 4) and the two-frame training chain (Section 5.3)."""
import math

import pytest
import torch

from neural_ae_ros.ae.end_to_end import TwoFrameBatch, differentiable_split, two_frame_loss
from neural_ae_ros.ae.networks import (M_EXP, ExposureNet, exposure_activation, normalise_histograms)
from neural_ae_ros.detector.model import Detector, DetectorConfig
from neural_ae_ros.imaging.isp import Isp, IspParams
from neural_ae_ros.imaging.sensor import SensorParams


def test_eq4_bounds_u_to_one_over_m_and_m():
    x = torch.tensor([-1e6, -10.0, 0.0, 10.0, 1e6])
    u = exposure_activation(x)
    assert float(u[0]) == pytest.approx(1 / M_EXP, rel=1e-6)
    assert float(u[2]) == pytest.approx(1.0)
    assert float(u[-1]) == pytest.approx(M_EXP, rel=1e-6)
    assert bool((u >= (1 / M_EXP) * (1 - 1e-6)).all() and (u <= M_EXP * (1 + 1e-6)).all())
    # symmetric in log: u(x) * u(-x) = 1
    assert float(exposure_activation(torch.tensor(1.3)) * exposure_activation(torch.tensor(-1.3))) == pytest.approx(1.0)


def test_histogram_normalisation_is_independent_of_image_size():
    counts = torch.rand(2, 59, 256) * 100
    assert torch.allclose(normalise_histograms(counts), normalise_histograms(counts * 7))
    with pytest.raises(ValueError, match=r"\(N, 59, 256\)"):
        normalise_histograms(torch.ones(1, 58, 256))
    with pytest.raises(ValueError, match="non-finite"):
        normalise_histograms(torch.full((1, 59, 256), float("nan")))


@pytest.mark.parametrize("method", ["histogram_nn", "semantic_nn", "hybrid_nn"])
def test_batched_and_single_frame_give_the_same_decision(method):
    torch.manual_seed(0)
    net = ExposureNet(method).eval()
    with torch.no_grad():
        for p in net.parameters():  # move away from the neutral start so decisions differ per frame
            p.add_(0.05 * torch.randn_like(p))
    hist = torch.rand(4, 59, 256) * 50
    feats = torch.randn(4, 128, 24, 40).relu()
    with torch.no_grad():
        batched = net(histograms=hist, features=feats)
        single = torch.stack([net(histograms=hist[i:i + 1], features=feats[i:i + 1])[0] for i in range(4)])
    assert batched.shape == (4,)
    assert torch.allclose(batched, single, rtol=1e-5, atol=1e-6)
    assert float(batched.std()) > 0  # the decision depends on the input


def test_missing_or_bad_inputs_are_named():
    with pytest.raises(ValueError, match="needs histograms"):
        ExposureNet("histogram_nn")(features=torch.zeros(1, 128, 16, 16))
    with pytest.raises(ValueError, match="needs detector conv2 features"):
        ExposureNet("hybrid_nn")(histograms=torch.ones(1, 59, 256))
    with pytest.raises(ValueError, match="NaN"):
        ExposureNet("semantic_nn")(features=torch.full((1, 128, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="unknown network method"):
        ExposureNet("average")


def test_differentiable_split_is_eq6():
    e = torch.tensor([0.001, 0.015, 0.06], requires_grad=True)
    t, k = differentiable_split(e, 0.015)
    assert torch.allclose(t, torch.tensor([0.001, 0.015, 0.015]))
    assert torch.allclose(k, torch.tensor([1.0, 1.0, 4.0]))
    (t * k).sum().backward()
    assert torch.allclose(e.grad, torch.ones(3))


def _tiny_chain(method):
    torch.manual_seed(0)
    sensor = SensorParams.from_yaml()
    det = Detector(DetectorConfig(input_size=(128, 64)))
    isp = Isp(IspParams.from_sensor(sensor))
    net = ExposureNet(method)
    # A scene pair: a bright textured background with one bright car-sized box in frame 2.
    base = 2e6 * (1 + 0.5 * torch.rand(2, 64, 128))
    base[:, 20:44, 40:90] *= 8.0
    batch = TwoFrameBatch(frame1=base.clone(), frame2=base * 1.02, kappa=torch.tensor([8.0, 0.2]),
                          boxes=[torch.tensor([[40.0, 20.0, 90.0, 44.0]])] * 2,
                          labels=[torch.tensor([2])] * 2)
    return sensor, det, isp, net, batch


@pytest.mark.parametrize("method", ["histogram_nn", "hybrid_nn"])
def test_detection_loss_reaches_every_ae_weight_through_quantiser_and_isp(method):
    sensor, det, isp, net, batch = _tiny_chain(method)
    out = two_frame_loss(net, det, isp, batch, sensor, generator=torch.Generator().manual_seed(1))
    out["detection"].backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert float(p.grad.abs().sum()) > 0, f"{name}: zero gradient (a stage blocks it)"


def test_a_blocked_stage_is_detected():
    """The check above must fail when the chain is cut: detach u before frame 2's capture."""
    sensor, det, isp, net, batch = _tiny_chain("histogram_nn")
    import neural_ae_ros.ae.end_to_end as e2e

    real = e2e.differentiable_split
    try:
        e2e.differentiable_split = lambda e, t: real(e.detach(), t)
        out = e2e.two_frame_loss(net, det, isp, batch, sensor)
        out["detection"].backward()
    finally:
        e2e.differentiable_split = real
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in net.parameters())


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    sensor, det, isp, net, batch = _tiny_chain("histogram_nn")
    opt = torch.optim.Adam(list(net.parameters()) + list(det.parameters()), lr=3e-3)
    losses = []
    for step in range(12):
        out = two_frame_loss(net, det, isp, batch, sensor, generator=torch.Generator().manual_seed(step), noise=False)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert min(losses[-3:]) < losses[0] * 0.9, losses
    assert all(math.isfinite(v) for v in losses)


@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory):
    from neural_ae_ros.scenes.generate import generate_split

    out = tmp_path_factory.mktemp("pairs")
    generate_split(out, "train", 3, seed=11, width=160, height=96, progress=False)
    return out


def test_train_resumes_and_writes_checkpoints_that_load(tiny_pairs, tmp_path):
    from neural_ae_ros.ae.training import AeCheckpointError, AeTrainConfig, load_ae_checkpoint, train_ae

    out = tmp_path / "hist.pt"
    cfg = AeTrainConfig(method="histogram_nn", steps=2, batch_size=2, crop_size=(160, 96), checkpoint_every=1,
                        threads=1)
    meta = train_ae(tiny_pairs, out, cfg, progress=False, log=lambda *_: None)
    assert meta["steps_done"] == 2 and len(meta["history"]["loss"]) == 2
    cfg.steps = 3
    lines = []
    meta = train_ae(tiny_pairs, out, cfg, progress=False, log=lines.append)
    assert any("resuming" in s and "step 2" in s for s in lines), lines
    assert meta["steps_done"] == 3 and len(meta["history"]["loss"]) == 3  # history carried over
    net, loaded = load_ae_checkpoint(out, expected_method="histogram_nn")
    assert len(loaded["weights_sha256"]) == 64 and loaded["method"] == "histogram_nn"
    assert (tmp_path / "hist_detector.pt").is_file()
    with pytest.raises(AeCheckpointError, match="holds a 'histogram_nn' network, not 'hybrid_nn'"):
        load_ae_checkpoint(out, expected_method="hybrid_nn")
    data = bytearray(out.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    out.write_bytes(bytes(data))
    with pytest.raises(AeCheckpointError, match="sha256 does not match weights_sha256"):
        load_ae_checkpoint(out)
