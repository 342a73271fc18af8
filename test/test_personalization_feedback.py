"""Live personalisation (no ROS): feedback refusals, a batch fine-tunes and writes a profile that
loads, the attention_rl AE method swaps weights in and refuses a corrupt file."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neural_ae_ros.ae import make_method
from neural_ae_ros.ae.attention_rl import AttentionRlAE
from neural_ae_ros.ae.base import Observation
from neural_ae_ros.imaging.exposure import FrameExposure
from neural_ae_ros.personalization.attention_net import AttentionExposureNet, CheckpointError, save_weights
from neural_ae_ros.personalization.feedback import FeedbackRefused, FeedbackSession, synthetic_reexposure


def _session(tmp_path, **kw):
    torch.manual_seed(0)
    s = FeedbackSession(AttentionExposureNet(), tmp_path / "profiles", frames_held=5, batch_size=3,
                        max_per_minute=4, steps=5, **kw)
    rng = np.random.default_rng(0)
    for stamp in range(100, 107):
        s.frame_seen(stamp, rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))
    return s


def test_bad_feedback_is_refused_with_a_reason(tmp_path):
    s = _session(tmp_path)
    with pytest.raises(FeedbackRefused, match="unknown label 'dark'"):
        s.submit(106, "dark", "driver1", "fleet")
    with pytest.raises(FeedbackRefused, match="stamp 999 ns.*no such frame"):
        s.submit(999, "well", "driver1", "fleet")
    with pytest.raises(FeedbackRefused, match="stamp 100 ns.*no such frame"):  # evicted: only 5 held
        s.submit(100, "well", "driver1", "fleet")
    with pytest.raises(FeedbackRefused, match="profile"):
        s.submit(106, "well", "driver1", "../etc")
    s.submit(106, "well", "driver1", "fleet", now_s=0.0)
    with pytest.raises(FeedbackRefused, match="already labelled"):
        s.submit(106, "over", "driver1", "fleet", now_s=1.0)
    for i, stamp in enumerate((102, 103, 104)):
        s.submit(stamp, "under", "annotator", "night", now_s=float(i))
    s.submit(105, "under", "annotator", "night2", now_s=3.0)
    with pytest.raises(FeedbackRefused, match="flood"):
        s.submit(106, "under", "annotator", "night2", now_s=4.0)
    s.submit(106, "under", "annotator", "night2", now_s=70.0)  # a minute later it is accepted


def test_a_full_batch_fine_tunes_and_writes_a_profile_the_method_can_swap_in(tmp_path):
    s = _session(tmp_path, lr=1e-2)
    assert s.submit(104, "under", "d", "fleet") is None
    assert s.submit(105, "under", "d", "fleet") is None
    res = s.submit(106, "under", "d", "fleet")
    assert res is not None and res.path.is_file() and res.labels == 3
    save_weights(s.net, tmp_path / "base.pt")
    ae = AttentionRlAE(weights=tmp_path / "base.pt")
    rgb = np.full((48, 80, 3), 90, np.uint8)
    obs = Observation(FrameExposure(frame_index=1, exposure_time_s=0.01, analog_gain=1.0), rgb=rgb)
    before = ae.next_exposure(obs).delta_ev
    ae.swap_weights(res.path)
    after = ae.next_exposure(obs).delta_ev
    assert after != pytest.approx(before, abs=1e-6)  # the fine-tuned profile runs now
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        ae.swap_weights(bad)
    assert ae.next_exposure(obs).delta_ev == pytest.approx(after)  # running weights untouched


def test_attention_rl_needs_rgb_and_is_registered(tmp_path):
    save_weights(AttentionExposureNet(), tmp_path / "w.pt")
    ae = make_method("attention_rl", weights=str(tmp_path / "w.pt"))
    with pytest.raises(ValueError, match="frame 7: attention_rl needs the ISP's RGB"):
        ae.next_exposure(Observation(FrameExposure(frame_index=7, exposure_time_s=0.01, analog_gain=1.0)))


def test_synthetic_reexposure_is_the_gamma_22_model():
    x = torch.tensor([0.5])
    assert float(synthetic_reexposure(x, 1.0)) == pytest.approx((0.5 ** 2.2 * 2) ** (1 / 2.2))
    assert float(synthetic_reexposure(x, 5.0)) == 1.0


def test_maps_of_a_remembered_frame_follow_eq1_and_refusals_name_their_rule(tmp_path):
    from neural_ae_ros.personalization.attention_net import EV_RANGE

    s = _session(tmp_path)
    d, em, am, frame = s.maps(106, "fleet")
    assert em.shape == am.shape == (8, 8) and frame.shape == (3, 64, 64)
    assert d == pytest.approx(EV_RANGE * float((em * am).mean()), abs=1e-5)  # Eq. 1, in EV
    with pytest.raises(FeedbackRefused, match="stamp 999 ns: no such frame") as e:
        s.maps(999, "fleet")
    assert e.value.kind == "unknown_stamp"
    kinds = {}
    for args in ((106, "dark", "g", "p"), (999, "well", "g", "p"), (106, "well", "g g", "p")):
        with pytest.raises(FeedbackRefused) as e:
            s.submit(*args)
        kinds[args[1] + args[2]] = e.value.kind
    assert kinds == {"darkg": "unknown_label", "wellg": "unknown_stamp", "wellg g": "bad_name"}


def test_the_profile_network_is_the_last_fine_tune_then_the_saved_file_then_the_base(tmp_path):
    s = _session(tmp_path, lr=1e-2)
    assert s.network("fleet") is s.net
    for stamp in (104, 105, 106):
        res = s.submit(stamp, "over", "d", "fleet")
    assert s.network("fleet") is not s.net and s.pending("fleet") == 0
    fresh = FeedbackSession(s.net, s.profile_dir)  # a restarted node finds the saved profile
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert float(fresh.network("fleet").eval()(x)) == pytest.approx(float(s.network("fleet").eval()(x)), abs=1e-6)
    assert res.path == fresh.profile_path("fleet")


def test_frame_maps_plot_is_written(tmp_path):
    from neural_ae_ros.personalization.plots import plot_frame_maps

    rng = np.random.default_rng(0)
    path = plot_frame_maps(rng.random((3, 64, 64)), rng.uniform(-1, 1, (8, 8)), rng.random((8, 8)), 0.3,
                           tmp_path / "m.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
