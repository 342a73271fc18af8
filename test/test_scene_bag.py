"""Scene radiance bags: round trip within the stated precision, old format still read, independent
MCAP decoding, clear errors on bad or damaged input."""
import argparse
import json
import math
import re

import numpy as np
import pytest

from neural_ae_ros.cli import scenes as cli_scenes
from neural_ae_ros.scenes import scene_bag as sb
from neural_ae_ros.scenes.drives import DriveSource

W, H, N = 96, 64, 6
F16_REL = 2.0**-11  # format v2: half floats, round to nearest


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
        assert f.radiance.dtype == np.float32 and f.radiance.shape == (H, W)  # RGGB mosaic
        np.testing.assert_allclose(f.radiance, sb.mosaic_rggb(r.radiance), rtol=F16_REL, atol=0)
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
    seen, scales = {}, {}
    with open(mcap_file, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for schema, channel, message, msg in reader.iter_decoded_messages():
            assert schema.encoding == "ros2msg"
            k = seen.setdefault(channel.topic, 0)
            seen[channel.topic] += 1
            if channel.topic == "/scene/radiance":
                assert msg.encoding == "16FC1" and msg.step == 2 * W
                scale_exp = scales[k]
                rad = np.frombuffer(bytes(msg.data), "<f2").reshape(H, W).astype(np.float64) * 2.0**-scale_exp
                np.testing.assert_allclose(rad, sb.mosaic_rggb(ref[k].radiance), rtol=F16_REL)
            elif channel.topic == "/scene/radiance_meta":
                scales[k] = json.loads(msg.data)["scale_exp"]
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
    with sb.SceneBagWriter(path, 400, 300, 30.0, dict(drive="synthetic"), encoding="32FC3") as w:
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


def _write_custom(path, image_kw=None, topics=("/scene/info", "/scene/radiance", "/scene/boxes"), info=None):
    from rosbags.rosbag2 import StoragePlugin, Writer

    ts = sb.typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        if "/scene/info" in topics:
            c = w.add_connection("/scene/info", sb.STRING_T, typestore=ts)
            rec = {**dict(format=sb.FORMAT_V1, width=5, height=4, fps=30.0), **(info or {})}
            w.write(c, sb.START_NS, ts.serialize_cdr(ts.types[sb.STRING_T](data=json.dumps(rec)), sb.STRING_T))
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


@pytest.mark.parametrize("topics, info, msg", [
    (("/scene/info", "/scene/radiance"), dict(labelled=True), "says labelled but topic /scene/boxes is missing"),
    (("/scene/info", "/scene/boxes"), None, r"missing topic\(s\) \['/scene/radiance'\]"),
    (("/scene/radiance", "/scene/boxes"), None, r"missing topic\(s\) \['/scene/info'\]"),
    (("/scene/info", "/scene/radiance"), dict(events=[{"kind": "x"}]), "bad event"),
    (("/scene/info", "/scene/radiance"), dict(fps="fast"), "key 'fps' = 'fast', expected int or float"),
])
def test_missing_topic_or_bad_info_is_refused_naming_the_file(tmp_path, topics, info, msg):
    p = tmp_path / "nobox"
    _write_custom(p, topics=topics, info=info)
    with pytest.raises(sb.SceneBagError, match=msg) as ei:
        sb.read_scene_bag(p)
    assert str(ei.value).startswith(str(p))


def test_a_bag_without_labels_reads_with_labelled_false(tmp_path):
    p = tmp_path / "nolabels"
    rad = np.full((3, 4, 6), 1000.0, np.float32)
    with sb.SceneBagWriter(p, 6, 4, 10.0, labelled=False) as w:
        for i in range(3):
            w.write(i, rad * (i + 1), [])
    b = sb.read_scene_bag(p)
    assert not b.labelled and "/scene/boxes" not in b.topics and b.frame_count == 3
    frames = list(b.frames())
    assert [f.index for f in frames] == [0, 1, 2] and all(f.boxes == [] for f in frames)
    np.testing.assert_allclose(frames[2].radiance, 3000.0, rtol=1e-3)
    # an older bag (no 'labelled' key) with a boxes topic counts as labelled
    q = tmp_path / "old"
    _write_custom(q)
    assert sb.read_scene_bag(q).labelled


@pytest.mark.parametrize("kw, msg", [
    (dict(encoding="16UC1", step=10, data=np.zeros(40, np.uint8)), "encoding '16UC1'"),
    (dict(data=np.full(240, 0xFF, np.uint8)), "non-finite"),
    (dict(data=np.frombuffer(np.full(60, -1.0, "<f4").tobytes(), np.uint8)), "negative radiance"),
    (dict(encoding="16FC1", step=10, data=np.zeros(40, np.uint8)), "no /scene/radiance_meta"),
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
    np.testing.assert_allclose(frames[entry].radiance, sb.mosaic_rggb(src.render(entry, with_objects=True).radiance),
                               rtol=F16_REL)
    assert frames[entry].radiance.mean() < 2e-3 * frames[entry - 1].radiance.mean()


def test_compressed_bag_reads_independently(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    rad = np.random.default_rng(0).uniform(0, 1e6, (3, 20, 30)).astype(np.float32)
    with sb.SceneBagWriter(tmp_path / "z", 30, 20, 10.0, compress=True) as w:
        w.write(0, rad, [])
    np.testing.assert_allclose(next(sb.read_scene_bag(tmp_path / "z").frames()).radiance, sb.mosaic_rggb(rad),
                               rtol=F16_REL)
    with open(next((tmp_path / "z").glob("*.mcap")), "rb") as fh:
        msgs = [m for _, c, _, m in make_reader(fh, decoder_factories=[DecoderFactory()]).iter_decoded_messages()
                if c.topic == "/scene/radiance"]
    assert len(msgs) == 1 and msgs[0].encoding == "16FC1"


def test_frames_are_streamed_one_at_a_time(bag, monkeypatch):
    """frames() yields a frame as soon as its stamp is complete (it does not read the whole bag
    first): a read error in a later frame still lets the frames before it through."""
    reader = sb.read_scene_bag(bag)
    real = reader._messages
    seen_stamps = []

    def failing_after_two_frames():
        for topic, ty, ns, raw in real():
            if topic != sb.TOPIC_INFO and ns not in seen_stamps:
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


def test_v2_precision_is_far_below_the_sensor_shot_noise(tmp_path):
    """Half-float round trip over a 150 dB scene: relative error <= 2^-11 everywhere, which is
    at most 1/11 of the smallest relative shot noise the sensor has (at the full well)."""
    from neural_ae_ros.imaging.sensor import SensorParams

    rng = np.random.default_rng(1)
    rad = (10.0 ** rng.uniform(-1.0, 6.5, (3, 40, 60))).astype(np.float32)
    with sb.SceneBagWriter(tmp_path / "p", 60, 40, 30.0) as w:
        w.write(0, rad, [])
    got = next(sb.read_scene_bag(tmp_path / "p").frames()).radiance
    want = sb.mosaic_rggb(rad).astype(np.float64)
    rel = np.abs(got - want) / want
    assert rel.max() <= F16_REL and 1e-5 < rel.mean() < 3e-4  # really encoded, not stored losslessly
    min_shot_noise_rel = 1.0 / math.sqrt(SensorParams.from_yaml().full_well_e)
    assert rel.max() < min_shot_noise_rel / 10


def test_v1_bags_still_read_as_rgb(tmp_path):
    rad = np.random.default_rng(2).uniform(0, 1e6, (3, 20, 30)).astype(np.float32)
    with sb.SceneBagWriter(tmp_path / "v1", 30, 20, 30.0, encoding="32FC3") as w:
        w.write(0, rad, [])
    b = sb.read_scene_bag(tmp_path / "v1")
    assert b.format == sb.FORMAT_V1
    np.testing.assert_array_equal(next(b.frames()).radiance, rad)


def test_unknown_format_is_refused_by_name(tmp_path):
    with sb.SceneBagWriter(tmp_path / "v9", 30, 20, 30.0, info=dict(format="neural_ae_ros.scene_bag/9")) as w:
        w.write(0, np.ones((3, 20, 30), np.float32), [])
    with pytest.raises(sb.SceneBagError, match="scene_bag/9.*not supported"):
        sb.read_scene_bag(tmp_path / "v9")


def test_writer_refuses_negative_radiance(tmp_path):
    rad = np.ones((3, 6, 8), np.float32)
    rad[1, 2, 3] = -1.0
    with sb.SceneBagWriter(tmp_path / "n", 8, 6, 30.0) as w:
        with pytest.raises(sb.SceneBagError, match="/scene/radiance frame 4: negative"):
            w.write(4, rad, [])


def _record_big(path, frames, width=320, height=240, **kw):
    rng = np.random.default_rng(3)
    rad = [rng.uniform(1.0, 1e5, (3, height, width)).astype(np.float32) for _ in range(frames)]
    with sb.SceneBagWriter(path, width, height, 30.0, dict(drive="synthetic"), **kw) as w:
        for i, r in enumerate(rad):
            w.write(i, r, [])
    return next(path.glob("*.mcap")), rad


def _overwrite(mcap, offset, data):
    with open(mcap, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


@pytest.mark.parametrize("fill", [b"\x00", b"\xff", "random"])
def test_bag_with_200kb_overwritten_is_refused_naming_frame_and_topic(tmp_path, fill):
    """200 KB overwritten inside frame 2's radiance (v2, 640 x 480: 614 KB per frame): frames 0
    and 1 replay, frame 2 is refused (checksum) with its frame and topic named."""
    mcap, rad = _record_big(tmp_path / "d", 4, 640, 480)
    start = mcap.read_bytes().find(sb.encode_mosaic_f16(rad[2])[0][:4096].tobytes())
    assert start > 0
    data = np.random.default_rng(4).bytes(200_000) if fill == "random" else fill * 200_000
    _overwrite(mcap, start + 100_000, data)
    got = []
    with pytest.raises(sb.SceneBagError, match=r"topic /scene/radiance frame 2: checksum mismatch"):
        for f in sb.read_scene_bag(mcap.parent).frames():
            got.append(f.index)
    assert got == [0, 1]


@pytest.mark.parametrize("fill", [b"\x00", b"\xff"])
def test_bag_with_records_overwritten_is_refused_naming_frame_and_topic(tmp_path, fill):
    """200 KB overwritten somewhere in the middle of the file, record headers and chunk indexes
    included (frames of 614 KB; rosbags closes a ~1 MiB chunk every two): the frames before
    the damaged chunk replay, the damage is reported with a frame and a topic."""
    mcap, _ = _record_big(tmp_path / "d", 6, 640, 480)
    _overwrite(mcap, mcap.stat().st_size // 2, fill * 200_000)
    got = []
    with pytest.raises(sb.SceneBagError) as ei:
        for f in sb.read_scene_bag(mcap.parent).frames():
            got.append(f.index)
    msg = str(ei.value)
    assert re.search(r"frame \d", msg) and "/scene/" in msg, msg
    assert got == list(range(len(got))) and 1 <= len(got) < 6


def test_v1_bag_with_bytes_overwritten_is_refused_naming_frame_and_topic(tmp_path):
    mcap, _ = _record_big(tmp_path / "d1", 3, encoding="32FC3")
    _overwrite(mcap, mcap.stat().st_size // 2, b"\xff" * 200_000)  # NaNs in float32
    with pytest.raises(sb.SceneBagError, match=r"/scene/radiance frame 1: non-finite"):
        list(sb.read_scene_bag(mcap.parent).frames())


def test_bag_source_reads_ahead_and_stops_at_damage(tmp_path):
    """The camera's bag source hands out frames in order from its reader thread; a damaged
    frame is raised once (frame and topic named), then the recording ends."""
    from neural_ae_ros.scenes.sources import EndOfSource, SceneBagSource

    mcap, rad = _record_big(tmp_path / "s", 4, 64, 48)
    src = SceneBagSource(str(mcap.parent), prefetch_frames=2)
    radiance, boxes = src.frame(0)
    np.testing.assert_allclose(radiance, sb.mosaic_rggb(rad[0]), rtol=F16_REL)
    with pytest.raises(ValueError, match="in order"):
        src.frame(0)
    assert src.frame(1)[0].shape == (48, 64)
    src.close()
    data = bytearray(mcap.read_bytes())
    start = bytes(data).find(sb.encode_mosaic_f16(rad[2])[0][:256].tobytes())
    data[start + 100:start + 600] = b"\x00" * 500
    mcap.write_bytes(bytes(data))
    src = SceneBagSource(str(mcap.parent))
    src.frame(0), src.frame(1)
    with pytest.raises(sb.SceneBagError, match="/scene/radiance frame 2: checksum"):
        src.frame(2)
    with pytest.raises(EndOfSource, match="unreadable from frame 2"):
        src.frame(3)
    assert src.num_frames == 2


def test_zero_copy_image_view_agrees_with_rosbags():
    ts = sb.typestore()
    for frame_id, enc, w in (("scene", "16FC1", 6), ("", "32FC3", 5), ("abcdefg", "16FC1", 2)):
        data = np.arange(w * 2 * 3, dtype=np.uint8)
        img = ts.types[sb.IMAGE_T](header=sb._header(ts, sb.START_NS + 5, frame_id), height=3, width=w,
                                   encoding=enc, is_bigendian=0, step=2 * w, data=data)
        raw = ts.serialize_cdr(img, sb.IMAGE_T)
        v = sb._image_view(raw)
        ref = ts.deserialize_cdr(raw, sb.IMAGE_T)
        assert (v.height, v.width, v.encoding, v.is_bigendian, v.step) == \
            (ref.height, ref.width, ref.encoding, ref.is_bigendian, ref.step)
        np.testing.assert_array_equal(v.data, ref.data)
        assert sb._image_view(bytes(raw)[:-1]) is None  # truncated: the full decoder reports it


@pytest.mark.parametrize("compress", [False, True])
def test_mmap_mcap_reader_yields_what_rosbags_reads(tmp_path, compress):
    from rosbags.rosbag2 import Reader

    mcap, _ = _record_big(tmp_path / "m", 3, 64, 48, compress=compress)
    ours = [(t, ns, bytes(raw)) for t, _, ns, raw in sb._iter_mcap_mmap(mcap)]
    with Reader(mcap.parent) as r:
        theirs = [(c.topic, ns, bytes(raw)) for c, ns, raw in r.messages()]
    assert ours == theirs and len(ours) == 1 + 3 * 4  # info + (meta, radiance, boxes, ignored) x 3


def test_readme_schema_tables_are_generated():
    """The README's topic and /scene/info tables are the schema's own (writer and reader use it)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- scene-bag-schema:[^\n]*-->\n(.*?)<!-- /scene-bag-schema -->", readme, re.S)
    assert m, "README lacks the generated scene-bag schema block"
    assert m.group(1) == sb.schema_markdown()
    # every key a writer puts in /scene/info is documented, and the drive's own keys are used
    assert {k.name for k in sb.INFO_KEYS} >= {"format", "width", "height", "fps", "frames", "labelled", "events"}


def test_writer_refuses_an_undocumented_info_key_and_the_reader_notes_one(tmp_path):
    with pytest.raises(sb.SceneBagError, match=r"undocumented key\(s\) \['camera_model'\]"):
        sb.SceneBagWriter(tmp_path / "x", 8, 6, 30.0, dict(camera_model="imx"))
    assert not (tmp_path / "x").exists()
    p = tmp_path / "newer"  # a newer writer's extra key: read, noted, not used
    _write_custom(p, topics=("/scene/info", "/scene/radiance"), info=dict(camera_model="imx"))
    b = sb.read_scene_bag(p)
    assert any("undocumented key(s) ['camera_model']" in w and "not used" in w for w in b.warnings)


def test_a_cut_short_recording_ends_where_its_frames_end(tmp_path):
    """/scene/info announces 8 frames, the bag holds 3 (a recording stopped early): the source
    (and so the camera and `neural-ae loop --bag`) ends after 3, never waits for the other 5."""
    from neural_ae_ros.scenes.sources import EndOfSource, SceneBagSource

    p = tmp_path / "short"
    with sb.SceneBagWriter(p, 6, 4, 30.0, dict(frames=8)) as w:
        for i in range(3):
            w.write(i, np.full((3, 4, 6), 100.0 * (i + 1), np.float32), [])
    bag = sb.read_scene_bag(p)
    assert bag.frame_count == 3 and any("announces 8 frames, the bag holds 3" in x for x in bag.warnings)
    src = SceneBagSource(str(p))
    try:
        assert src.num_frames == 3
        for i in range(3):
            rad, _ = src.frame(i)
            assert float(rad.mean()) == pytest.approx(100.0 * (i + 1), rel=1e-3)
        with pytest.raises(EndOfSource):
            src.frame(3)
    finally:
        src.close()


def _truncated(tmp_path):
    path = tmp_path / "trunc"
    rng = np.random.default_rng(0)
    with sb.SceneBagWriter(path, 400, 300, 30.0, encoding="32FC3") as w:
        for i in range(4):
            w.write(i, rng.uniform(0, 1e6, (3, 300, 400)).astype(np.float32), [])
    f = next(path.glob("*.mcap"))
    f.write_bytes(f.read_bytes()[: int(f.stat().st_size * 0.6)])
    return path, "truncated or damaged bag"


def _wrong_type(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    path = tmp_path / "wrongtype"
    ts = sb.typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        w.add_connection("/scene/info", sb.STRING_T, typestore=ts)
        c = w.add_connection("/scene/radiance", sb.STRING_T, typestore=ts)
        w.write(c, sb.START_NS, ts.serialize_cdr(ts.types[sb.STRING_T](data="x"), sb.STRING_T))
    return path, "topic /scene/radiance has type std_msgs/msg/String, expected sensor_msgs/msg/Image"


def _no_radiance(tmp_path):
    path = tmp_path / "noradiance"
    _write_custom(path, topics=("/scene/info", "/scene/boxes"))
    return path, r"missing topic(s) ['/scene/radiance']"


@pytest.mark.parametrize("make", [_truncated, _wrong_type, _no_radiance])
def test_neural_ae_loop_on_a_bad_bag_is_one_line_naming_the_file(tmp_path, make):
    import os
    import subprocess
    import sys
    from pathlib import Path

    path, msg = make(tmp_path)
    exe = str(Path(sys.executable).parent / "neural-ae")
    p = subprocess.run([exe, "loop", "--bag", str(path), "--log-dir", str(tmp_path / "logs")], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", "44")))
    err = p.stderr.strip()
    assert p.returncode == 1, (p.returncode, err)
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert err.startswith("neural-ae loop: error: SceneBagError: " + str(path)) and msg in err, err
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir()), "nodes were started"
