"""Scene radiance bags: round trip, independent MCAP decoding, clear errors on bad input."""
import argparse
import json

import numpy as np
import pytest

from neural_ae_ros.cli import scenes as cli_scenes
from neural_ae_ros.scenes import scene_bag as sb
from neural_ae_ros.scenes.drives import DriveSource

W, H, N = 96, 64, 6


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "tunnel"
    sb.record_drive("tunnel", N, seed=3, out=path, width=W, height=H, progress=False)
    return path


def _frames_direct():
    src = DriveSource("tunnel", W, H, seed=3, num_frames=N)
    return [src.render(i) for i in range(N)], src


def test_round_trip(bag):
    b = sb.read_scene_bag(bag)
    assert b.info["drive"] == "tunnel" and b.info["width"] == W and b.info["fps"] == 30.0
    frames = list(b.frames())
    ref, src = _frames_direct()
    assert [f.index for f in frames] == list(range(N))
    for f, r in zip(frames, ref):
        assert f.radiance.dtype == np.float32 and f.radiance.shape == (3, H, W)
        np.testing.assert_array_equal(f.radiance, r.radiance)
        assert [x["box"] for x in f.boxes] == [[float(v) for v in y["box"]] for y in r.boxes]
        assert [x["cls"] for x in f.boxes] == [y["cls"] for y in r.boxes]
    assert frames[1].stamp_ns - frames[0].stamp_ns == round(1e9 / 30)
    ev = [e for f in frames for e in f.events]
    assert ev == list(src.events)


def test_independent_mcap_reader(bag):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    ref, _ = _frames_direct()
    mcap_file = next(bag.glob("*.mcap"))
    seen = {}
    with open(mcap_file, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for schema, channel, message, msg in reader.iter_decoded_messages():
            assert schema.encoding == "ros2msg"
            k = seen.setdefault(channel.topic, 0)
            seen[channel.topic] += 1
            if channel.topic == "/scene/radiance":
                assert msg.encoding == "32FC3" and msg.step == 12 * W
                rad = np.frombuffer(bytes(msg.data), "<f4").reshape(H, W, 3).transpose(2, 0, 1)
                np.testing.assert_array_equal(rad, ref[k].radiance)
            elif channel.topic == "/scene/boxes":
                assert schema.name == "vision_msgs/msg/Detection2DArray"
                assert [d.results[0].hypothesis.class_id for d in msg.detections] == [b["cls"] for b in ref[k].boxes]
            elif channel.topic == "/scene/info":
                assert json.loads(msg.data)["drive"] == "tunnel"
    assert seen["/scene/radiance"] == N and seen["/scene/boxes"] == N and seen["/scene/info"] == 1


def test_truncated_bag(tmp_path):
    # frames of 1.4 MB: rosbags closes an MCAP chunk (~1 MiB) after each, so damage costs one frame
    rng = np.random.default_rng(0)
    ref = [rng.uniform(0, 1e6, (3, 300, 400)).astype(np.float32) for _ in range(5)]
    path = tmp_path / "big"
    with sb.SceneBagWriter(path, 400, 300, 30.0, dict(drive="synthetic")) as w:
        for i, r in enumerate(ref):
            w.write(i, r, [dict(cls="car_van", box=[1, 2, 30, 40], id=1)])
    f = next(path.glob("*.mcap"))
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(sb.SceneBagError, match="truncated") as ei:
        sb.read_scene_bag(path)
    assert str(f) in str(ei.value) and "allow_truncated" in str(ei.value)
    b = sb.read_scene_bag(path, allow_truncated=True)
    assert b.warnings and b.info["drive"] == "synthetic"
    got = list(b.frames())
    assert 2 <= len(got) < 5 and [g.index for g in got] == list(range(len(got)))
    for g in got:  # nothing before the damage is lost
        np.testing.assert_array_equal(g.radiance, ref[g.index])
        assert g.boxes == [dict(cls="car_van", box=[1.0, 2.0, 30.0, 40.0], id=1)]


def _write_custom(path, image_kw=None, topics=("/scene/radiance", "/scene/boxes")):
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = sb.typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        if "/scene/radiance" in topics:
            conns["/scene/radiance"] = w.add_connection("/scene/radiance", sb.IMAGE_T, typestore=ts)
        if "/scene/boxes" in topics:
            conns["/scene/boxes"] = w.add_connection("/scene/boxes", sb.DET_T, typestore=ts)
        ns = sb.START_NS
        kw = dict(height=4, width=5, encoding="32FC3", is_bigendian=0, step=60, data=np.zeros(240, np.uint8))
        kw.update(image_kw or {})
        if "/scene/radiance" in conns:
            img = ts.types[sb.IMAGE_T](header=sb._header(ts, ns), **kw)
            w.write(conns["/scene/radiance"], ns, ts.serialize_cdr(img, sb.IMAGE_T))
        if "/scene/boxes" in conns:
            w.write(conns["/scene/boxes"], ns, ts.serialize_cdr(sb._detections(ts, ns, [], 1.0), sb.DET_T))


def test_missing_topic(tmp_path):
    p = tmp_path / "nobox"
    _write_custom(p, topics=("/scene/radiance",))
    with pytest.raises(sb.SceneBagError, match="/scene/boxes") as ei:
        sb.read_scene_bag(p)
    assert str(p) in str(ei.value)


@pytest.mark.parametrize("kw, msg", [
    (dict(encoding="16UC1", step=10, data=np.zeros(40, np.uint8)), "encoding '16UC1'"),
    (dict(data=np.zeros(100, np.uint8)), "100 bytes"),
    (dict(step=64), "step 64"),
])
def test_bad_radiance_frames(tmp_path, kw, msg):
    p = tmp_path / "bad"
    _write_custom(p, image_kw=kw)
    b = sb.read_scene_bag(p)
    with pytest.raises(sb.SceneBagError, match=msg) as ei:
        list(b.frames())
    assert str(p) in str(ei.value) and "/scene/radiance" in str(ei.value)


def test_not_a_bag(tmp_path):
    (tmp_path / "junk").mkdir()
    with pytest.raises(sb.SceneBagError, match="not a readable rosbag2"):
        sb.read_scene_bag(tmp_path / "junk")
    with pytest.raises(sb.SceneBagError, match="no such bag"):
        sb.read_scene_bag(tmp_path / "missing")


def test_writer_rejects_wrong_shape(tmp_path):
    with sb.SceneBagWriter(tmp_path / "w", 8, 6, 30.0) as w:
        with pytest.raises(sb.SceneBagError, match="shape"):
            w.write(0, np.zeros((3, 5, 8), np.float32), [])
        with pytest.raises(sb.SceneBagError, match="finite float"):
            w.write(0, np.zeros((3, 6, 8), np.int32), [])
    with pytest.raises(sb.SceneBagError, match="already exists"):
        sb.SceneBagWriter(tmp_path / "w", 8, 6, 30.0)


def test_cli_record_scene(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_scenes.add_commands(sub)
    out = tmp_path / "pan"
    args = parser.parse_args(["record-scene", "--drive", "panorama_pan", "--frames", "12", "--seed", "1",
                              "--out", str(out), "--width", "64", "--height", "40", "--quiet", "--compress"])
    assert args.func(args) == 0
    b = sb.read_scene_bag(out)
    frames = list(b.frames())
    assert len(frames) == 12
    kinds = {e["kind"]: e["factor"] for e in b.info["events"]}
    assert kinds == {"tunnel_entry": 1e-3, "tunnel_exit": 1e3}
    entry = next(e["frame"] for e in b.info["events"] if e["kind"] == "tunnel_entry")
    # the scripted tunnel scales the whole frame by exactly 1e-3
    src = DriveSource("panorama_pan", 64, 40, seed=1, num_frames=12)
    np.testing.assert_allclose(frames[entry].radiance, src.render(entry, with_objects=True).radiance, rtol=0)
    assert frames[entry].radiance.mean() < 2e-3 * frames[entry - 1].radiance.mean()


def test_compressed_bag_reads_independently(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    rad = np.random.default_rng(0).uniform(0, 1e6, (3, 20, 30)).astype(np.float32)
    with sb.SceneBagWriter(tmp_path / "z", 30, 20, 10.0, compress=True) as w:
        w.write(0, rad, [])
    np.testing.assert_array_equal(next(sb.read_scene_bag(tmp_path / "z").frames()).radiance, rad)
    with open(next((tmp_path / "z").glob("*.mcap")), "rb") as fh:
        msgs = [m for _, c, _, m in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages()
                if c.topic == "/scene/radiance"]
    assert len(msgs) == 1 and msgs[0].encoding == "32FC3"


def test_frames_are_streamed_one_at_a_time(bag, monkeypatch):
    """frames() yields a frame as soon as its stamp is complete (it does not read the whole bag
    first): a read error in a later frame still lets the frames before it through."""
    reader = sb.read_scene_bag(bag)
    real = reader._messages
    seen_stamps = []

    def failing_after_two_frames():
        for topic, ty, ns, raw in real():
            if topic == sb.TOPIC_RADIANCE:
                seen_stamps.append(ns)
                if len(seen_stamps) == 4:  # the first message of frame 3: frames 0-1 are out, 2 is open
                    raise sb.SceneBagError("simulated damage after two frames")
            yield topic, ty, ns, raw

    monkeypatch.setattr(reader, "_messages", failing_after_two_frames)
    got = []
    with pytest.raises(sb.SceneBagError, match="simulated damage"):
        for frame in reader.frames():
            got.append(frame.index)
    assert got == [0, 1]
