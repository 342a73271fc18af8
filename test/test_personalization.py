"""Paper 001 personalisation: Eq. 1 aggregation, the Fig. 6 reward table, the REINFORCE step of
Eq. 11, the synthetic experts' consistency, weights files, and RL learning on a toy bank."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neural_ae_ros.personalization.attention_net import (EV_RANGE, AttentionExposureNet, CheckpointError,
                                                         aggregate_eq1, load_weights, save_weights)
from neural_ae_ros.personalization.bank import ReexposureBank, grid_offsets
from neural_ae_ros.personalization.experts import EXPERTS, SceneView, label_for_offset
from neural_ae_ros.personalization.policy_gradient import (RlConfig, expert_feedback, fig6_reward,
                                                           fig6_reward_tensor, reinforce_loss, train_rl)
from neural_ae_ros.personalization.pretrain import mae_ev, predict_bank


# ----------------------------------------------------------------------------- Eq. 1
def test_eq1_is_the_mean_of_exposure_times_attention():
    em = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    am = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    # (1*1 + -1*0 + 0.5*0.5 + 0) / 4: the attended bright-up region dominates
    assert float(aggregate_eq1(em, am)) == pytest.approx(1.25 / 4)
    with pytest.raises(ValueError, match="same shape"):
        aggregate_eq1(em, am[:1])


def test_network_output_is_eq1_of_its_own_maps_and_bounded():
    torch.manual_seed(0)
    net = AttentionExposureNet().eval()
    x = torch.rand(3, 3, 64, 64)
    d, em, am = net.maps(x)
    assert em.shape == am.shape == (3, 8, 8)
    assert torch.allclose(d, (em * am).mean(dim=(1, 2)))
    assert (em.abs() <= 1).all() and (am > 0).all() and (am < 1).all()
    assert torch.allclose(net(x), d)


# ----------------------------------------------------------------------------- Fig. 6
@pytest.mark.parametrize("label,d,expected", [
    ("well", 0.0, 1.0), ("well", 0.09, 1.0), ("well", -0.09, 1.0), ("well", 0.1, -1.0), ("well", -0.5, -1.0),
    ("under", -0.5, -1.0), ("under", 0.0, -1.0), ("under", 0.09, -1.0), ("under", 0.1, None), ("under", 1.0, None),
    ("over", 0.5, -1.0), ("over", 0.0, -1.0), ("over", -0.09, -1.0), ("over", -0.1, None), ("over", -1.0, None),
])
def test_fig6_reward_table(label, d, expected):
    assert fig6_reward(label, d) == expected
    code = {"under": 0, "well": 1, "over": 2}[label]
    r, valid = fig6_reward_tensor(torch.tensor([code]), torch.tensor([d], dtype=torch.float64))
    assert bool(valid[0]) == (expected is not None)
    if expected is not None:
        assert float(r[0]) == expected


def test_fig6_refuses_unknown_label():
    with pytest.raises(ValueError, match="unknown exposure label 'too_dark'"):
        fig6_reward("too_dark", 0.0)


# ----------------------------------------------------------------------------- Eq. 11
def test_reinforce_gradient_is_eq11():
    mean = torch.tensor([0.2, -0.1, 0.4], requires_grad=True)
    a = torch.tensor([0.5, -0.3, 0.0])
    r = torch.tensor([1.0, -1.0, 1.0])
    valid = torch.tensor([True, True, False])
    reinforce_loss(mean, a, r, valid, variance=0.1).backward()
    # -grad J = 1/N sum r Sigma^-1 (F - a) grad F, N = valid tuples
    expected = torch.tensor([1.0 * (0.2 - 0.5) / 0.1, -1.0 * (-0.1 + 0.3) / 0.1, 0.0]) / 2
    assert torch.allclose(mean.grad, expected)


def test_policy_gradient_moves_the_mean_toward_rewarded_actions():
    """Toy problem: one state, the mean is a free parameter, reward +1 within 0.1 of 0.6 (a
    'well' frame at correction 0.6) and -1 elsewhere; REINFORCE must carry the mean there."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([mu], lr=0.02)
    for _ in range(300):
        m = mu.expand(256)
        a = m.detach() + math.sqrt(0.1) * torch.randn(256, generator=gen)
        r, valid = fig6_reward_tensor(torch.ones(256, dtype=torch.long), EV_RANGE * a - EV_RANGE * 0.6)
        opt.zero_grad()
        reinforce_loss(m, a, r, valid, 0.1).backward()
        opt.step()
    assert abs(float(mu.detach()) - 0.6) < 0.1
    # and only negative rewards of an under-exposed frame push it up (never down)
    mu2 = torch.zeros(1, requires_grad=True)
    m = mu2.expand(512)
    a = m.detach() + math.sqrt(0.1) * torch.randn(512, generator=gen)
    r, valid = fig6_reward_tensor(torch.zeros(512, dtype=torch.long), EV_RANGE * a)
    reinforce_loss(m, a, r, valid, 0.1).backward()
    assert float(mu2.grad) < 0  # descent raises the mean


# ----------------------------------------------------------------------------- experts
def _view(person_level=0.05, highlight=20.0, seed=0):
    rng = np.random.default_rng(seed)
    rad = rng.uniform(0.5, 1.5, (3, 40, 60))
    rad[:, 10:20, 10:20] = person_level * 20
    rad[:, 0:4, 50:54] = highlight
    boxes = np.array([[10, 10, 20, 20], [50, 0, 54, 4]], float)
    labels = np.array([3, 4])  # person, traffic_light
    return SceneView(rad, boxes, labels, float(rad.mean()))


@pytest.mark.parametrize("name", list(EXPERTS))
def test_expert_labels_are_monotone_in_exposure(name):
    e = EXPERTS[name]
    for seed in range(3):
        v = _view(seed=seed)
        p = e.preferred_ev(v)
        assert -1.0 <= p <= 1.0
        order = {"under": 0, "well": 1, "over": 2}
        labs = [order[e.label(v, o)] for o in np.arange(-3, 3.01, 0.05)]
        assert labs == sorted(labs) and labs[0] == 0 and labs[-1] == 2
        assert e.label(v, p) == "well"


def test_experts_react_to_their_own_cue():
    bp = EXPERTS["bright_persons"]
    assert bp.preferred_ev(_view(person_level=0.01)) > bp.preferred_ev(_view(person_level=0.2)) + 0.2
    ph = EXPERTS["protect_highlights"]
    assert ph.preferred_ev(_view(highlight=200.0)) < ph.preferred_ev(_view(highlight=5.0)) - 0.2
    assert label_for_offset(0.05) == "well" and label_for_offset(-0.2) == "under" and label_for_offset(0.2) == "over"


# ----------------------------------------------------------------------------- weights files
def test_weights_round_trip_and_corruption_is_refused(tmp_path):
    torch.manual_seed(1)
    net = AttentionExposureNet()
    p = save_weights(net, tmp_path / "w.pt", {"profile": "x"})
    back, meta = load_weights(p)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(back(x), net.eval()(x)) and meta["profile"] == "x"
    p.write_bytes(p.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match="sha256"):
        load_weights(p)
    with pytest.raises(CheckpointError, match="no such"):
        load_weights(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- RL on a toy bank
def _toy_bank(n=6, pref=0.6):
    """Flat grey frames whose level encodes the exposure offset; the expert wants +pref EV."""
    offs = grid_offsets()
    frames = np.zeros((n, len(offs), 3, 64, 64), np.uint8)
    for s in range(n):
        base = 0.25 * 2 ** (0.3 * (s - n / 2) / n)
        for k, o in enumerate(offs):
            frames[s, k] = np.uint8(min(255, 255 * (base * 2 ** o) ** (1 / 2.2)))
    prefs = np.full((n, 1), pref)
    return ReexposureBank(frames, offs, prefs, ["toy"], [f"s{i}" for i in range(n)])


def test_rl_from_feedback_reduces_the_error_on_a_toy_bank():
    torch.manual_seed(0)
    bank = _toy_bank()
    net = AttentionExposureNet(dropout=0.0)
    pref = bank.preference("toy")
    before = mae_ev(predict_bank(net, bank), pref, bank)
    fb = expert_feedback(bank, "toy")
    assert fb.num_labels == int(bank.window(pref).sum())
    train_rl(net, bank, fb, RlConfig(steps=80, states_per_batch=8, refs_per_state=8, lr=1e-2), progress=False)
    after = mae_ev(predict_bank(net, bank), pref, bank)
    assert after < 0.7 * before, (before, after)


def test_mae_over_zero_frames_is_an_error():
    bank = _toy_bank()
    with pytest.raises(ValueError, match="zero frames"):
        mae_ev(np.zeros(bank.frames.shape[:2]), np.full(bank.num_scenes, 10.0), bank)
