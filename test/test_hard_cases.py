"""The ``hdr_driving`` scene mix (issue 7): the paper's day/dusk/night shares, the HDR cases it
names, labels in every case, high dynamic range, seeds apart from the default mix and splits."""
from __future__ import annotations

import numpy as np
import pytest

from neural_ae_ros.classes import CLASS_NAMES
from neural_ae_ros.scenes import hard_cases as hc
from neural_ae_ros.scenes.generate import make_scene
from neural_ae_ros.scenes.radiometry import dynamic_range_db

W, H = 256, 160


def test_mix_keeps_paper_000_day_dusk_night_shares():
    shares = hc.period_shares()
    assert shares == pytest.approx({"day": 0.5, "dusk": 0.2, "night": 0.3})
    assert sum(s for _, s, _ in hc.HDR_DRIVING_MIX) == pytest.approx(1.0)


def test_cases_are_drawn_in_their_stated_shares():
    rng = np.random.default_rng(0)
    n = 4000
    drawn = [hc.draw_case(rng) for _ in range(n)]
    for case, share, _ in hc.HDR_DRIVING_MIX:
        assert drawn.count(case) / n == pytest.approx(share, abs=0.025), case


@pytest.mark.parametrize("case", ["tunnel_exit", "low_sun", "night_oncoming"])
def test_each_hdr_case_has_labels_and_a_dynamic_range_beyond_one_ldr_capture(case):
    """A 12-bit sensor holds ~73 dB (config/sensor_imx249.yaml); these cases must exceed it."""
    drs, n_boxes = [], 0
    for i in range(3):
        sc = make_scene("test", 11, i, W, H, pairs=False, kind=case, mix="hdr_driving")
        fr = sc["frames"][0]
        assert sc["meta"]["kind"] == case and sc["meta"]["mix"] == "hdr_driving"
        drs.append(dynamic_range_db(fr.radiance))
        n_boxes += len(fr.boxes)
        for b in fr.boxes:
            x0, y0, x1, y1 = b["box"]
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H and b["cls"] in CLASS_NAMES
    assert n_boxes >= 3
    assert np.median(drs) > 75.0, drs


def test_night_oncoming_puts_a_road_user_beside_each_added_oncoming_vehicle():
    rng = hc.mix_rng(3, 2, 0)
    stage = hc.hdr_case_stage(rng, "night_oncoming", W, H)
    oncoming = [o for o in stage.objs if o.cls in ("car_van", "bus_truck") and o.kind.endswith("front") and o.x < 0]
    users = [o for o in stage.objs if o.cls in ("person", "bike")]
    assert oncoming and users
    assert any(abs(u.z - v.z) < 8 for v in oncoming for u in users)
    assert stage.world.night and stage.world.headlights


def test_tunnel_exit_camera_is_inside_the_tunnel_looking_at_the_exit():
    for i in range(5):
        stage = hc.hdr_case_stage(hc.mix_rng(5, 2, i), "tunnel_exit", W, H)
        t = stage.world.tunnel
        assert t.z0 < stage.z0 < t.z1 and t.z1 - stage.z0 <= 80
        assert any(t.z0 < o.z < t.z1 for o in stage.objs if o.label)  # something inside
        assert any(o.z > t.z1 for o in stage.objs if o.label)  # and something outside


def test_mix_seeds_are_apart_from_the_default_mix_and_between_splits():
    a = make_scene("test", 0, 0, 96, 64, pairs=False, mix="hdr_driving")["frames"][0].radiance
    b = make_scene("train", 0, 0, 96, 64, pairs=False, mix="hdr_driving")["frames"][0].radiance
    c = make_scene("test", 0, 0, 96, 64, pairs=False, mix="hdr_driving")["frames"][0].radiance
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)  # deterministic
    assert hc.mix_rng(0, 2, 0).random() != np.random.default_rng(np.random.SeedSequence([0, 2, 0])).random()


def test_unknown_mix_or_case_is_refused():
    with pytest.raises(ValueError, match="mix"):
        make_scene("test", 0, 0, 64, 32, mix="sunny_only")
    with pytest.raises(ValueError, match="case"):
        hc.hdr_case_stage(np.random.default_rng(0), "fog", 64, 32)
