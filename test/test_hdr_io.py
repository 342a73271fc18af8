"""HDR file loading: EXR / Radiance .hdr round trips, shipped panoramas, clear errors."""
import numpy as np
import pytest

from neural_ae_ros.imaging import hdr_io
from neural_ae_ros.scenes import panorama


def _img(h=12, w=20, seed=0):
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(-6, 8, (3, h, w))).astype(np.float32)


def test_exr_round_trip(tmp_path):
    a = _img()
    p = tmp_path / "a.exr"
    hdr_io.write_exr(p, a)
    b = hdr_io.load_radiance(p)
    assert b.shape == a.shape and b.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    c = hdr_io.load_radiance(p, scale_e_per_s=1e3)
    np.testing.assert_allclose(c, a * 1e3, rtol=1e-6)


def test_hdr_round_trip_within_rgbe_precision(tmp_path):
    a = _img(9, 33)
    p = tmp_path / "a.hdr"
    hdr_io.write_hdr(p, a)
    b = hdr_io.load_radiance(p)
    assert b.shape == a.shape
    # RGBE: 8-bit mantissa shared by the pixel's largest channel
    err = np.abs(b - a) / a.max(0, keepdims=True)
    assert err.max() < 1.0 / 128


def test_hdr_flat_scanlines_and_small_width(tmp_path):
    a = _img(5, 4)  # width < 8: flat scanlines
    p = tmp_path / "s.hdr"
    hdr_io.write_hdr(p, a)
    b = hdr_io.load_radiance(p)
    assert np.max(np.abs(b - a) / a.max(0, keepdims=True)) < 1.0 / 128


@pytest.mark.parametrize("name", sorted(panorama.PANORAMA_INFO))
def test_shipped_panoramas_load(name):
    a = hdr_io.load_radiance(panorama.PANORAMA_DIR / f"{name}.exr")
    assert a.shape == (3, 512, 1024)
    assert np.isfinite(a).all() and a.min() >= 0


def test_panorama_license_shipped():
    text = (panorama.PANORAMA_DIR / "LICENSE.txt").read_text()
    assert "CC0" in text


def test_unreadable_files_name_the_path(tmp_path):
    for name in ("bad.exr", "bad.hdr"):
        p = tmp_path / name
        p.write_bytes(b"this is not an image")
        with pytest.raises(hdr_io.HDRLoadError) as ei:
            hdr_io.load_radiance(p)
        assert str(p) in str(ei.value)
    with pytest.raises(hdr_io.HDRLoadError, match="no such file"):
        hdr_io.load_radiance(tmp_path / "missing.exr")
    with pytest.raises(hdr_io.HDRLoadError, match="unknown HDR file type"):
        (tmp_path / "x.png").write_bytes(b"x")
        hdr_io.load_radiance(tmp_path / "x.png")


def test_truncated_hdr(tmp_path):
    p = tmp_path / "t.hdr"
    hdr_io.write_hdr(p, _img(10, 16))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(hdr_io.HDRLoadError, match="truncated"):
        hdr_io.load_radiance(p)


def test_non_finite_and_negative(tmp_path):
    a = _img()
    a[1, 2, 3] = np.nan
    p = tmp_path / "nan.exr"
    hdr_io.write_exr(p, a)
    with pytest.raises(hdr_io.HDRLoadError, match="non-finite") as ei:
        hdr_io.load_radiance(p)
    assert str(p) in str(ei.value)
    b = _img()
    b[0, 0, 0] = -0.5 * b.max()
    p2 = tmp_path / "neg.exr"
    hdr_io.write_exr(p2, b)
    with pytest.raises(hdr_io.HDRLoadError, match="negative"):
        hdr_io.load_radiance(p2)
    # compression-noise negatives are tolerated and clamped
    c = _img()
    c[0, 0, 0] = -1e-4 * float(np.percentile(c, 99))
    d = hdr_io.validate_radiance(c, "c")
    assert d.min() == 0


def test_wrong_shapes():
    with pytest.raises(hdr_io.HDRLoadError, match="shape"):
        hdr_io.validate_radiance(np.ones((4, 5)), "x")
    with pytest.raises(hdr_io.HDRLoadError, match="3 colour channels"):
        hdr_io.validate_radiance(np.ones((4, 5, 6)), "x")
    with pytest.raises(hdr_io.HDRLoadError, match="empty"):
        hdr_io.validate_radiance(np.ones((3, 0, 5)), "x")
    hwc = np.ones((4, 5, 3), np.float32)
    assert hdr_io.validate_radiance(hwc, "x").shape == (3, 4, 5)


def test_rec709_luminance_weights():
    np.testing.assert_allclose(hdr_io.luminance_weights(), [0.2126, 0.7152, 0.0722], atol=2e-4)


def _write_yc_exr(path, rgb_hwc, sampling=2, chromaticities=None):
    """A luminance/chroma EXR as OpenEXR's RgbaOutputFile(WRITE_YC) stores it (Y, RY, BY)."""
    import OpenEXR

    kw = {} if chromaticities is None else {"chromaticities": tuple(chromaticities)}
    w_r, w_g, w_b = hdr_io.luminance_weights(*([chromaticities] if chromaticities else []))
    y = rgb_hwc[..., 0] * w_r + rgb_hwc[..., 1] * w_g + rgb_hwc[..., 2] * w_b
    sub = (slice(None, None, sampling), slice(None, None, sampling))  # chroma at even x and y
    ry = ((rgb_hwc[..., 0] - y) / y)[sub]
    by = ((rgb_hwc[..., 2] - y) / y)[sub]

    def subsampled(c):
        # openexr 3.5 takes a full-size array and writes its first H/s * W/s values, row-major
        full = np.zeros(y.shape, np.float16)
        full.reshape(-1)[:c.size] = c.reshape(-1)
        return OpenEXR.Channel(full, sampling, sampling)

    channels = {"Y": OpenEXR.Channel(y.astype(np.float16)), "RY": subsampled(ry), "BY": subsampled(by)}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **kw}
    with OpenEXR.File(header, channels) as f:
        f.write(str(path))
    with OpenEXR.File(str(path)) as f:  # the file holds the subsampled chroma
        np.testing.assert_array_equal(f.channels()["RY"].pixels, ry.astype(np.float16))


@pytest.mark.parametrize("chromaticities", [None, (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)])
def test_luminance_chroma_exr_loads_in_colour(tmp_path, chromaticities):
    rng = np.random.default_rng(3)
    blocks = np.exp(rng.uniform(-2, 3, (6, 9, 3))).astype(np.float32)  # colour constant per 2x2 block
    rgb = blocks.repeat(2, 0).repeat(2, 1)
    p = tmp_path / "yc.exr"
    _write_yc_exr(p, rgb, chromaticities=chromaticities)
    got = hdr_io.load_radiance(p)
    assert got.shape == (3, 12, 18)
    # half-float storage of Y, RY, BY: ~0.1 % per value, a few 0.1 % after the conversion
    np.testing.assert_allclose(np.moveaxis(got, 0, -1), rgb, rtol=2e-2, atol=2e-3 * rgb.max())
    assert np.abs(got[0] - got[1]).max() > 0.1, "loaded as grey"


def test_radiance_exposure_header_is_divided_out(tmp_path):
    a = _img(6, 16)
    p = tmp_path / "a.hdr"
    hdr_io.write_hdr(p, a)
    plain = hdr_io.load_radiance(p)
    data = p.read_bytes()
    p.write_bytes(data.replace(b"\n\n", b"\nEXPOSURE=4.0\n\n", 1))
    np.testing.assert_allclose(hdr_io.load_radiance(p), plain / 4, rtol=1e-6)


def test_radiance_orientation_other_than_standard_is_refused_by_name(tmp_path):
    p = tmp_path / "flip.hdr"
    hdr_io.write_hdr(p, _img(6, 16))
    p.write_bytes(p.read_bytes().replace(b"-Y 6 +X 16", b"+Y 6 +X 16"))
    with pytest.raises(hdr_io.HDRLoadError, match="orientation") as ei:
        hdr_io.load_radiance(p)
    assert str(p) in str(ei.value)
