"""Bring your own HDR data: bracket folders (N brackets, explicit response and levels), HDR file
sequences and labels into scene bags; refusals and warnings where the files cannot tell."""
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from neural_ae_ros.cli.main import main as neural_ae_main
from neural_ae_ros.imaging import hdr_merge as hm
from neural_ae_ros.imaging.hdr_io import write_exr
from neural_ae_ros.scenes import scene_bag as sb
from neural_ae_ros.scenes import user_data as ud

NEURAL_AE = str(Path(sys.executable).parent / "neural-ae")
H, W = 48, 64
BLACK, WHITE = 64.0, 4095.0  # 12-bit raw in a 16-bit container


def _radiance(seed=0, lo=1e-3, hi=50.0):
    """A known radiance in full scale per second: ~94 dB, log-uniform."""
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(lo), np.log(hi), (3, H, W)))


def _write_brackets(folder: Path, rad_frames, times, response="linear", bits=16, black=BLACK, white=WHITE,
                    levels_in_manifest=True, gains=True, **extra):
    """Brackets of known radiance as PNG files + a manifest. ``response`` is what the files are coded with."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for f, rad in enumerate(rad_frames):
        brs = []
        for i, t in enumerate(times):
            J = np.clip(rad * t, 0.0, 1.0)
            if response == "srgb":
                J = hm.linear_to_srgb(J)
            elif response == "gamma2.2":
                J = J ** (1 / 2.2)
            dt = np.uint16 if bits == 16 else np.uint8
            code = np.round(black + J * (white - black)).astype(dt)
            name = f"f{f:03d}_{i}.png"
            cv2.imwrite(str(folder / name), np.ascontiguousarray(np.moveaxis(code, 0, -1)[..., ::-1]))
            b = {"file": name, "exposure_time_s": t}
            if gains:
                b["analog_gain"] = 1.0
            brs.append(b)
        frames.append({"name": f"f{f:03d}", "brackets": brs})
    meta = {"format": ud.BRACKET_FORMAT, "fps": 10, "frames": frames, **extra}
    if levels_in_manifest:
        meta.update(black_level=black, white_level=white)
    (folder / "brackets.json").write_text(json.dumps(meta))
    return folder


def _quiet(*_):
    pass


@pytest.mark.parametrize("n", [2, 3, 5])
def test_n_bracket_merge_recovers_a_known_radiance(tmp_path, n):
    times = list(np.geomspace(1.0, 1.0 / 4 ** (n - 1), n)) if n > 2 else [1.0, 1.0 / 16]
    rad = _radiance(seed=n)
    spec = ud.read_bracket_manifest(_write_brackets(tmp_path / "b", [rad], times), response="linear",
                                    radiance_scale=1000.0, warn=_quiet)
    merged = ud.BracketSet(spec).merge(0)
    assert merged.radiance_e_per_s.shape == (3, H, W)
    # where some bracket holds the pixel at >= 1 % of full scale the 12-bit quantisation is < 2.5 %
    ok = (rad * max(times) >= 0.01) & (rad * min(times) < 0.98)
    assert ok.mean() > 0.5
    rel = np.abs(merged.radiance_e_per_s[ok] / 1000.0 - rad[ok]) / rad[ok]
    assert np.median(rel) < 2e-3 and rel.max() < 0.03
    assert not hm.nonlinear(merged.checks), [c.describe() for c in merged.checks]
    assert len(merged.checks) >= 1


def test_srgb_coded_brackets_declared_linear_are_reported_with_the_numbers(tmp_path):
    times = [1.0, 0.25, 1.0 / 16]
    rad = _radiance(seed=7, lo=1e-2, hi=20.0)
    folder = _write_brackets(tmp_path / "b", [rad], times, response="srgb", bits=8, black=0, white=255)
    spec = ud.read_bracket_manifest(folder, response="linear", radiance_scale=1.0, warn=_quiet)
    checks = ud.BracketSet(spec).merge(0).checks
    bad = hm.nonlinear(checks)
    assert bad and all(0.3 < c.log_slope < 0.65 for c in bad), [c.describe() for c in checks]
    assert all(abs(c.exposure_ratio - 4.0) < 1e-9 for c in checks)
    # declared right, the same files pass
    spec = ud.read_bracket_manifest(folder, response="srgb", radiance_scale=1.0, warn=_quiet)
    assert not hm.nonlinear(ud.BracketSet(spec).merge(0).checks)
    # across the CLI: a warning line with exposure ratio, level ratio and log-slope; the bag is still written
    out = tmp_path / "bag"
    p = subprocess.run([NEURAL_AE, "record-scene", "--brackets", str(folder),
                        "--response", "linear", "--radiance-scale", "1e6", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stderr.splitlines() if "is not 'linear' as declared" in x)
    assert re.search(r"exposure ratio 4, level ratio [12]\.\d+ \(median over \d+ well-exposed pixels\), "
                     r"log-slope 0\.[3-6]", line), line
    assert "log-slope 0." in line and "--response srgb" in line
    assert sb.read_scene_bag(out).frame_count == 1


def test_a_gamma_response_table_linearises(tmp_path):
    times = [1.0, 1.0 / 8, 1.0 / 64]
    rad = _radiance(seed=2)
    folder = _write_brackets(tmp_path / "b", [rad], times, response="gamma2.2")
    code = np.linspace(0, 1, 257)
    (folder / "response.csv").write_text("code,linear\n" + "\n".join(f"{c},{c ** 2.2}" for c in code))
    spec = ud.read_bracket_manifest(folder, response=str(folder / "response.csv"), radiance_scale=1.0, warn=_quiet)
    merged = ud.BracketSet(spec).merge(0)
    ok = (rad * max(times) >= 0.02) & (rad * min(times) < 0.95)
    rel = np.abs(merged.radiance_e_per_s[ok] - rad[ok]) / rad[ok]
    assert np.median(rel) < 3e-3
    assert not hm.nonlinear(merged.checks)
    (folder / "bad.csv").write_text("0,0\n0.5,0.6\n0.4,0.7\n1,1\n")
    with pytest.raises(ud.UserDataError, match="bad.csv: code and linear columns must both increase"):
        ud.read_bracket_manifest(folder, response=str(folder / "bad.csv"), radiance_scale=1.0, warn=_quiet)


def test_a_missing_level_is_refused_naming_the_flag(tmp_path):
    folder = _write_brackets(tmp_path / "b", [_radiance()], [1.0, 0.1], levels_in_manifest=False)
    with pytest.raises(ud.UserDataError, match=r"black and white level unknown for uint16 files like f000_0.png: "
                                               r"pass --black-level --white-level"):
        ud.read_bracket_manifest(folder, response="linear", radiance_scale=1.0, warn=_quiet)
    with pytest.raises(ud.UserDataError, match=r"white level unknown .* pass --white-level"):
        ud.read_bracket_manifest(folder, response="linear", black_level=64, radiance_scale=1.0, warn=_quiet)
    spec = ud.read_bracket_manifest(folder, response="linear", black_level=64, white_level=4095,
                                    radiance_scale=1.0, warn=_quiet)
    assert (spec.response.black_level, spec.response.white_level) == (64.0, 4095.0)
    # the response and the frame rate are never assumed either
    with pytest.raises(ud.UserDataError, match="the response is unknown: pass --response"):
        ud.read_bracket_manifest(folder, black_level=64, white_level=4095, radiance_scale=1.0, warn=_quiet)
    # 8-bit files: 0 / 255 is assumed, and said
    folder8 = _write_brackets(tmp_path / "b8", [_radiance()], [1.0, 0.1], bits=8, black=0, white=255,
                              levels_in_manifest=False, gains=False)
    said = []
    spec = ud.read_bracket_manifest(folder8, response="srgb", warn=said.append)
    assert (spec.response.black_level, spec.response.white_level) == (0.0, 255.0)
    text = " | ".join(said)
    assert "'black_level' missing: assumed 0" in text and "'white_level' missing: assumed 255" in text
    assert "'analog_gain' missing on 2 bracket(s): assumed 1" in text
    assert "'radiance_scale' missing: assumed 32500 e-/s" in text and spec.radiance_scale_assumed
    assert [f"{folder8 / 'brackets.json'}: {a}" for a in spec.describe()["assumptions"]] == said


def test_missing_level_across_the_cli_is_one_line(tmp_path):
    folder = _write_brackets(tmp_path / "b", [_radiance()], [1.0, 0.1], levels_in_manifest=False)
    p = subprocess.run([NEURAL_AE, "record-scene", "--brackets", str(folder),
                        "--response", "linear", "--out", str(tmp_path / "bag"), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr, p.stderr
    assert "brackets.json" in p.stderr and "--black-level --white-level" in p.stderr
    assert not (tmp_path / "bag").exists()


def test_brackets_with_labels_become_a_labelled_bag(tmp_path):
    times = [1.0, 1.0 / 16, 1.0 / 256]
    rads = [_radiance(seed=s) for s in (1, 2)]
    folder = _write_brackets(tmp_path / "b", rads, times)
    labels = {"format": ud.LABELS_FORMAT, "frames": {
        "f000": {"boxes": [{"cls": "car_van", "box": [2, 3, 20, 30], "id": 4}]},
        "f001": {"boxes": [], "ignored": [{"cls": "person", "box": [0, 0, 5, 9]}]}}}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    out = tmp_path / "bag"
    rc = neural_ae_main(["record-scene", "--brackets", str(folder), "--response", "linear", "--radiance-scale", "2e5",
                        "--labels", str(tmp_path / "labels.json"), "--out", str(out), "--quiet"])
    assert rc == 0
    bag = sb.read_scene_bag(out)
    assert bag.labelled and bag.frame_count == 2 and bag.fps == 10.0 and (bag.width, bag.height) == (W, H)
    src = bag.info["source"]
    assert src["kind"] == "brackets" and src["response"] == "linear" and src["radiance_scale"] == 2e5
    assert (src["black_level"], src["white_level"], src["brackets_per_frame"]) == (BLACK, WHITE, [3])
    frames = list(bag.frames())
    assert frames[0].boxes == [dict(cls="car_van", box=[2.0, 3.0, 20.0, 30.0], id=4)]
    assert frames[1].boxes == [] and frames[1].ignored[0]["cls"] == "person"
    # the green samples of the RGGB mosaic are the merged radiance (x scale), within half-float precision
    g = frames[0].radiance[0::2, 1::2]
    want = rads[0][1, 0::2, 1::2] * 2e5
    ok = (rads[0][1, 0::2, 1::2] >= 0.01) & (rads[0][1, 0::2, 1::2] * min(times) < 0.98)
    assert np.median(np.abs(g[ok] - want[ok]) / want[ok]) < 3e-3


@pytest.mark.parametrize("labels, msg", [
    ({"f000": {"boxes": [{"cls": "dragon", "box": [0, 0, 4, 4]}]}, "f001": {"boxes": []}}, "'cls' must be one of"),
    ({"f000": {"boxes": []}}, r"no labels for 1 frame\(s\), e.g. \['f001'\]"),
    ({"f000": {"boxes": [{"cls": "car_van", "box": [0, 0, 99, 4]}]}, "f001": {"boxes": []}}, "not inside the 64x48"),
    ({"f000": {"boxes": []}, "f001": {"boxes": []}, "f002": {"boxes": []}}, r"unknown frame\(s\) \['f002'\]"),
])
def test_bad_labels_are_refused_naming_file_and_frame(tmp_path, labels, msg):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"format": ud.LABELS_FORMAT, "frames": labels}))
    with pytest.raises(ud.UserDataError, match=msg) as ei:
        ud.read_labels(path, ["f000", "f001"], W, H)
    assert str(ei.value).startswith(str(path))


def test_hdr_sequence_needs_a_scale_and_records_in_colour(tmp_path):
    rng = np.random.default_rng(0)
    seq = tmp_path / "seq"
    seq.mkdir()
    rads = [rng.uniform(0.01, 4.0, (3, 31, 40)).astype(np.float32) for _ in range(3)]  # odd height
    for i, r in enumerate(rads):
        write_exr(seq / f"frame_{i:02d}.exr", r)
    with pytest.raises(ud.UserDataError, match=r"pass --radiance-scale .*frame_00.exr has mean [12]\.\d+ file units; "
                                               r"--radiance-scale 3\.\d+e\+06 puts it at a sunlit road"):
        next(ud.iter_hdr_sequence(ud.hdr_sequence_paths([seq]), None))
    out = tmp_path / "bag"
    rc = neural_ae_main(["record-scene", "--hdr-files", str(seq), "--radiance-scale", "1e5", "--fps", "20",
                        "--out", str(out), "--quiet", "--rgb32"])
    assert rc == 0
    bag = sb.read_scene_bag(out)
    assert not bag.labelled and bag.frame_count == 3 and (bag.width, bag.height) == (40, 30)
    assert bag.info["source"]["kind"] == "hdr_files" and bag.info["source"]["radiance_scale"] == 1e5
    got = [f.radiance for f in bag.frames()]
    for g, r in zip(got, rads):
        np.testing.assert_allclose(g, r[:, :30, :] * 1e5, rtol=1e-6)
    rc = neural_ae_main(["record-scene", "--hdr-files", str(seq), "--fps", "20", "--out", str(tmp_path / "b2"),
                        "--quiet"])
    assert rc == 1 and not (tmp_path / "b2").exists()


def test_hdr_merge_command_writes_exr_in_e_per_s(tmp_path):
    from neural_ae_ros.imaging.hdr_io import load_exr

    rad = _radiance(seed=9)
    folder = _write_brackets(tmp_path / "b", [rad], [1.0, 1.0 / 16, 1.0 / 256], response="linear")
    rc = neural_ae_main(["hdr-merge", str(folder), "--response", "linear", "--radiance-scale", "100",
                        "--out", str(tmp_path / "out")])
    assert rc == 0
    got = load_exr(tmp_path / "out" / "f000.exr")
    ok = (rad >= 0.01) & (rad / 256 < 0.98)
    assert np.median(np.abs(got[ok] / 100 - rad[ok]) / rad[ok]) < 2e-3


def test_a_luminance_chroma_exr_is_recorded_in_colour(tmp_path):
    """Y/RY/BY EXR files (OpenEXR's luminance/chroma form) go into the bag in colour: the R and B
    samples of the recorded RGGB mosaic are the file's R and B, not its luminance."""
    from test_hdr_io import _write_yc_exr

    rng = np.random.default_rng(5)
    blocks = np.exp(rng.uniform(-2, 3, (6, 9, 3))).astype(np.float32)  # colour constant per 2x2 block
    rgb = blocks.repeat(2, 0).repeat(2, 1)
    _write_yc_exr(tmp_path / "yc.exr", rgb)
    out = tmp_path / "bag"
    assert neural_ae_main(["record-scene", "--hdr-files", str(tmp_path / "yc.exr"), "--radiance-scale", "1000",
                           "--fps", "10", "--out", str(out), "--quiet"]) == 0
    mosaic = next(sb.read_scene_bag(out).frames()).radiance
    np.testing.assert_allclose(mosaic[0::2, 0::2], blocks[..., 0] * 1000, rtol=3e-2)
    np.testing.assert_allclose(mosaic[1::2, 1::2], blocks[..., 2] * 1000, rtol=3e-2)
    assert np.abs(mosaic[0::2, 0::2] - mosaic[0::2, 1::2]).max() > 100, "recorded as grey"


def test_codes_above_the_white_level_are_reported(tmp_path):
    """12-bit data declared 10-bit (white 1023): the file holds codes up to ~4095, which is said."""
    folder = _write_brackets(tmp_path / "b", [_radiance(seed=4)], [1.0, 0.1])
    said = []
    spec = ud.read_bracket_manifest(folder, response="linear", white_level=1023, radiance_scale=1.0, warn=_quiet)
    ud.BracketSet(spec, warn=said.append).merge(0)
    assert len(said) == 1 and "above the white level 1023" in said[0] and "f000_" in said[0], said
    said.clear()
    spec = ud.read_bracket_manifest(folder, response="linear", radiance_scale=1.0, warn=_quiet)
    ud.BracketSet(spec, warn=said.append).merge(0)
    assert said == []


def test_the_merge_benchmark_runs_and_prints_time_and_memory():
    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_hdr_merge.py"
    p = subprocess.run([sys.executable, str(bench), "--brackets", "2", "3", "--repeats", "1", "--height", "120",
                        "--width", "192"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [x for x in p.stdout.splitlines() if x.strip().startswith("N=")]
    assert len(lines) == 2 and all("ms per frame" in x and "MiB traced" in x for x in lines), p.stdout
