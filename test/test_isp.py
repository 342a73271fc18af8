"""Differentiable ISP: against OpenCV on the same raw (PSNR), gradients, shapes, bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from neural_ae_ros.imaging.isp import (Isp, IspInputError, IspParams, _half_res_weight, psnr,
                               srgb_oetf)
from neural_ae_ros.imaging.hdr_io import load_radiance
from neural_ae_ros.imaging.sensor import bayer_sample_rggb
from neural_ae_ros.scenes.panorama import PANORAMA_DIR

torch.set_num_threads(1)
BLACK, WHITE = 64.0, 4095.0
PANORAMA = PANORAMA_DIR / "courtyard.exr"


def _reference_rgb(h=240, w=320) -> np.ndarray:
    """Linear RGB (3, H, W) in [0, 1]: a crop of a shipped HDR panorama (real edges and texture)."""
    img = load_radiance(PANORAMA).astype(np.float64)[:, 140:140 + h, 300:300 + w]
    crop = img / np.percentile(img, 99) * 0.9
    return np.clip(crop, 0, 1).astype(np.float32)


def _raw_from_rgb(rgb: np.ndarray) -> np.ndarray:
    mosaic = bayer_sample_rggb(rgb)
    return np.round(BLACK + mosaic * (WHITE - BLACK)).astype(np.uint16)


def test_bilinear_matches_opencv_and_demosaic_choice_explains_the_rest():
    rgb = _reference_rgb()
    raw = _raw_from_rgb(rgb)
    isp_b = Isp(IspParams(demosaic="bilinear"))
    isp_m = Isp(IspParams(demosaic="malvar"))
    with torch.no_grad():
        ours_b = isp_b.linear_rgb(torch.from_numpy(raw.astype(np.float32))).numpy()
        ours_m = isp_m.linear_rgb(torch.from_numpy(raw.astype(np.float32))).numpy()
    # OpenCV on the same raw: black level removed, RGGB = COLOR_BayerBG2RGB, bilinear
    cv_in = np.clip(raw.astype(np.int32) - int(BLACK), 0, None).astype(np.uint16)
    cv_rgb = cv2.cvtColor(cv_in, cv2.COLOR_BayerBG2RGB).astype(np.float64).transpose(2, 0, 1) / (WHITE - BLACK)
    inner = (slice(None), slice(2, -2), slice(2, -2))  # OpenCV treats the 1-2 px border differently
    p_same = psnr(ours_b[inner], cv_rgb[inner])
    assert p_same > 70, p_same  # same algorithm: only OpenCV's integer rounding differs
    assert psnr(ours_b, cv_rgb) > 35  # incl. borders
    # against the truth: the demosaic choice explains the remaining differences
    gt = rgb.astype(np.float64)
    p_b, p_m, p_cv = psnr(ours_b[inner], gt[inner]), psnr(ours_m[inner], gt[inner]), psnr(cv_rgb[inner], gt[inner])
    assert abs(p_b - p_cv) < 0.05
    assert p_m > p_b + 1.0  # Malvar beats bilinear, as published
    # Malvar vs OpenCV bilinear differ by about what bilinear's own error is
    assert psnr(ours_m[inner], cv_rgb[inner]) > p_b - 3


def test_full_pipeline_matches_independent_numpy_opencv_pipeline():
    rgb = _reference_rgb()
    raw = _raw_from_rgb(rgb * 0.8)
    wb = (1.8, 1.0, 1.5)
    ccm = ((1.6, -0.4, -0.2), (-0.3, 1.5, -0.2), (0.0, -0.5, 1.5))
    isp = Isp(IspParams(wb_gains=wb, ccm=ccm, digital_gain=1.2, demosaic="bilinear"))
    ours = isp.to_rgb8(raw)
    # independent: numpy levels + WB on the mosaic, OpenCV demosaic, numpy CCM and sRGB
    x = (raw.astype(np.float64) - BLACK) / (WHITE - BLACK)
    g = np.ones_like(x)
    g[0::2, 0::2], g[1::2, 1::2] = wb[0], wb[2]
    x = np.clip(x * g, 0, 1)
    demo = cv2.cvtColor(np.round(x * 65535).astype(np.uint16), cv2.COLOR_BayerBG2RGB) / 65535.0
    lin = np.clip(demo @ (np.array(ccm) * 1.2).T, 0, 1)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    ref = np.round(srgb * 255)
    inner = (slice(2, -2), slice(2, -2))
    p = psnr(ours[inner].astype(np.float64), ref[inner], peak=255)
    assert p > 45, p
    assert np.abs(ours[inner].astype(int) - ref[inner].astype(int)).max() <= 2


def test_sparse_demosaic_equals_dense_convolution():
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(2, 20, 28, generator=g) * 4000 + 64
    for method in ("bilinear", "malvar"):
        isp = Isp(IspParams(demosaic=method))
        p = isp.planes(raw)
        dense = torch.nn.functional.pixel_shuffle(
            torch.nn.functional.conv2d(p, _half_res_weight(method).reshape(12, 4, 3, 3)), 2)
        assert torch.allclose(isp.demosaic(p), dense, atol=1e-6)
        assert torch.allclose(isp.demosaic(p, layout="hwc").permute(0, 3, 1, 2), dense, atol=1e-6)


def test_shapes_flat_field_and_binning():
    isp = Isp(IspParams())
    flat = torch.full((3, 16, 24), BLACK + 0.25 * (WHITE - BLACK))
    out = isp(flat)
    assert out.shape == (3, 3, 16, 24)
    assert torch.allclose(out, srgb_oetf(torch.tensor(0.25)).expand_as(out), atol=1e-6)
    assert isp(flat[0]).shape == (3, 16, 24)
    assert isp(flat[None]).shape == (1, 3, 3, 16, 24)
    binned = Isp(IspParams(binning=True))
    assert binned(flat).shape == (3, 3, 8, 12)
    assert binned.to_rgb8(flat[0].numpy().astype(np.uint16)).shape == (8, 12, 3)
    rgb8 = isp.to_rgb8(flat[0].numpy().astype(np.uint16))
    assert rgb8.shape == (16, 24, 3) and rgb8.dtype == np.uint8
    # saturated pixels stay white even with white-balance gains > 1
    sat = Isp(IspParams(wb_gains=(2.0, 1.0, 1.7)))
    assert (sat.to_rgb8(np.full((8, 8), 4095, np.uint16)) == 255).all()
    assert (sat.to_rgb8(np.zeros((8, 8), np.uint16)) == 0).all()


def test_rgb8_agrees_with_float_forward():
    g = torch.Generator().manual_seed(1)
    raw = (torch.rand(48, 64, generator=g) * 4100).round().clamp(0, 4095)
    for params in (IspParams(), IspParams(demosaic="malvar", ccm=((1.2, -0.2, 0), (0, 1, 0), (0, -0.1, 1.1)))):
        isp = Isp(params)
        with torch.no_grad():
            ref = (isp(raw) * 255).round().permute(1, 2, 0).numpy()
        got = isp.to_rgb8(raw.numpy().astype(np.uint16)).astype(np.float64)
        assert np.abs(got - ref).max() <= 1


def test_gradients_flow_to_input_and_learnable_parameters():
    isp = Isp(IspParams(learnable={"wb_gains": True, "ccm": True, "digital_gain": True, "gamma": True}))
    raw = (torch.rand(2, 16, 16) * 2000 + 200).requires_grad_(True)
    out = isp(raw)
    out.mean().backward()
    assert raw.grad is not None and raw.grad.abs().sum() > 0 and torch.isfinite(raw.grad).all()
    for p in (isp.wb_gains, isp.ccm, isp.log_digital_gain, isp.log_gamma):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    frozen = Isp(IspParams(learnable={"ccm": False, "digital_gain": False, "gamma": False}))
    assert not any(p.requires_grad for p in frozen.parameters())
    # gradient also at black (0) pixels stays finite (sRGB linear toe, no pow at 0)
    z = torch.full((8, 8), BLACK, requires_grad=True)
    Isp(IspParams())(z + 1.0).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_yaml_and_bad_input(tmp_path):
    p = IspParams.from_yaml()
    assert p.white_level_dn == 4095 and p.demosaic in ("bilinear", "malvar")
    isp = Isp(p)
    for bad in (np.zeros((7, 8), np.uint16), np.zeros((8,), np.uint16), np.zeros((2, 2), np.uint16),
                np.zeros((8, 8), bool), [[1, 2], [3, 4]]):
        with pytest.raises(IspInputError):
            isp.to_rgb8(bad)
    with pytest.raises(IspInputError, match="encoding"):
        isp.to_rgb8(np.zeros((8, 8), np.uint16), encoding="rgb8")
    with pytest.raises(IspInputError):
        isp.to_rgb8(np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(ValueError):
        IspParams(demosaic="nearest")
    with pytest.raises(ValueError):
        IspParams(black_level_dn=5000)
    bad_yaml = tmp_path / "isp.yaml"
    bad_yaml.write_text("isp:\n  blak_level_dn: 64\n")
    with pytest.raises(ValueError, match="unknown"):
        IspParams.from_yaml(bad_yaml)


def test_raw_from_buffer():
    from neural_ae_ros.imaging.image_buffers import ImageFormatError, raw_from_buffer

    a = (np.arange(48, dtype=np.uint16) * 80).reshape(6, 8)
    got = raw_from_buffer(a.tobytes(), 6, 8, "bayer_rggb16", step=16)
    assert np.array_equal(got, a)
    assert np.array_equal(raw_from_buffer(a.astype(">u2").tobytes(), 6, 8, "bayer_rggb16", is_bigendian=True), a)
    with pytest.raises(ImageFormatError, match="encoding"):
        raw_from_buffer(a.tobytes(), 6, 8, "mono16")
    with pytest.raises(ImageFormatError, match="bytes"):
        raw_from_buffer(a.tobytes()[:-2], 6, 8, "bayer_rggb16")
    with pytest.raises(IspInputError, match="expected"):
        Isp().to_rgb8(a, expected_hw=(1200, 1920))
