"""Detector: shapes, conv2 features, NMS, decoding, checkpoint errors, input errors, a tiny overfit."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neural_ae_ros.detector import (CheckpointError, Detector, DetectorConfig, DetectorInputError,
                                    DetectorRuntime, decode, load_checkpoint, load_detector, nms,
                                    save_checkpoint)
from neural_ae_ros.detector.dataset import DetectionDataset, collate, synthetic_samples
from neural_ae_ros.detector.loss import build_targets, collate_targets, detection_loss
from neural_ae_ros.detector.postprocess import batched_nms, box_iou
from neural_ae_ros.classes import CLASS_NAMES

torch.set_num_threads(1)
SMALL = (128, 96)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return Detector(DetectorConfig(input_size=SMALL)).eval()


def test_forward_shapes_and_conv2(small_model):
    x = torch.rand(2, 3, SMALL[1], SMALL[0])
    with torch.no_grad():
        out = small_model(x)
    h4, w4 = SMALL[1] // 4, SMALL[0] // 4
    assert out["heatmap"].shape == (2, 6, h4, w4)
    assert out["box"].shape == (2, 4, h4, w4)
    assert (out["box"] >= 0).all()
    c2 = out["features"]["conv2"]
    assert c2.shape == (2, 128, h4, w4)  # paper 000 Sec. 4.2: 128 channels; stride 4
    assert out["features"]["conv3"].shape[-1] == SMALL[0] // 8
    assert out["features"]["conv4"].shape[-1] == SMALL[0] // 16
    with torch.no_grad():
        assert torch.allclose(small_model.extract_features(x), c2)
    with pytest.raises(ValueError):
        small_model(torch.rand(1, 3, 50, 64))
    with pytest.raises(ValueError):
        small_model(torch.rand(1, 1, 64, 64))


def test_nms_matches_bruteforce():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(60, 2, generator=g) * 100
    wh = torch.rand(60, 2, generator=g) * 40 + 5
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(60, generator=g)
    keep = nms(boxes, scores, 0.5)
    # reference: plain python greedy
    order = sorted(range(60), key=lambda i: -float(scores[i]))
    iou = box_iou(boxes, boxes)
    ref = []
    for i in order:
        if all(iou[i, j] <= 0.5 for j in ref):
            ref.append(i)
    assert keep.tolist() == ref
    # kept boxes never overlap above the threshold
    k = boxes[keep]
    m = box_iou(k, k) - torch.eye(len(k))
    assert (m <= 0.5).all()
    # class-wise: identical boxes of different classes both survive
    b = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10.5]])
    kept = batched_nms(b, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0]), 0.5)
    assert sorted(kept.tolist()) == [0, 1]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_decode_roundtrip_of_targets():
    """Decoding perfect head outputs (targets as logits) returns the ground-truth boxes."""
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0], [70.0, 8.0, 90.0, 40.0]])
    labels = torch.tensor([2, 4])
    t = build_targets(boxes, labels, 6, (24, 32))
    logits = torch.logit(t["heatmap"].clamp(1e-4, 1 - 1e-4))[None]
    ys = (torch.arange(24) + 0.5) * 4
    xs = (torch.arange(32) + 0.5) * 4
    tb = t["box"]
    dist = torch.stack([xs[None, :] - tb[0], ys[:, None] - tb[1], tb[2] - xs[None, :], tb[3] - ys[:, None]])
    dets = decode(logits, dist[None].clamp(min=0), score_threshold=0.5)[0]
    assert len(dets) == 2
    order = torch.argsort(dets.labels)
    assert dets.labels[order].tolist() == [2, 4]
    assert torch.allclose(dets.boxes[order], boxes, atol=1e-4)


def test_loss_decreases_tiny_overfit_on_synthetic_samples():
    torch.manual_seed(0)
    samples = synthetic_samples(8, (96, 64), seed=3)
    ds = DetectionDataset(samples, augment=False)
    imgs, boxes, labels, ignore = collate([ds[i] for i in range(len(ds))])
    model = Detector(DetectorConfig(input_size=(96, 64)))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    targets = collate_targets(boxes, labels, 6, (16, 24), ignore)
    losses = []
    for _ in range(20):
        model.train()
        out = model(imgs)
        loss = detection_loss(out, targets)["loss"]
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses


def test_checkpoint_roundtrip_and_errors(tmp_path, small_model):
    p = tmp_path / "det.pt"
    pt, js = save_checkpoint(small_model, p, {"training_data": {"scenes": "x"}})
    meta = json.loads(js.read_text())
    assert meta["classes"] == list(CLASS_NAMES) and meta["input_size"] == {"width": SMALL[0], "height": SMALL[1]}
    assert "commit" in meta and meta["training_data"]["scenes"] == "x"
    model, meta2 = load_checkpoint(p)
    x = torch.rand(1, 3, SMALL[1], SMALL[0])
    with torch.no_grad():
        a, b = small_model(x)["heatmap"], model(x)["heatmap"]
    assert torch.allclose(a, b, atol=2e-2)  # fp16 weights

    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(trunc)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else", "state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="classes"):
        load_checkpoint(p, expected_classes=("car", "person"))
    with pytest.raises(CheckpointError, match="input size"):
        load_checkpoint(p, expected_input_size=(640, 384))
    # weights of another architecture under this config
    blob = torch.load(p, weights_only=True)
    blob["config"]["head_channels"] = 16
    mism = tmp_path / "mismatch.pt"
    torch.save(blob, mism)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_checkpoint(mism)
    # metadata that belongs to another model
    (tmp_path / "mismatch.json").write_text(json.dumps({"classes": ["a"]}))
    blob["config"]["head_channels"] = DetectorConfig().head_channels
    torch.save(blob, mism)
    with pytest.raises(CheckpointError, match="no weights_sha256"):
        load_checkpoint(mism)
    with pytest.raises(CheckpointError, match="metadata classes"):
        load_checkpoint(mism, allow_unverified=True)


def test_checkpoint_with_a_zeroed_block_is_refused_naming_the_file(tmp_path, small_model):
    p = tmp_path / "det.pt"
    save_checkpoint(small_model, p)
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = bytes(4096)  # 4 KiB of zeros inside the weights
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"det\.pt: sha256 .* does not match weights_sha256 .* det\.json"):
        load_checkpoint(p)


def test_shipped_default_checkpoint_is_verified_by_sha256():
    model, meta = load_checkpoint()
    assert meta["integrity"] == "sha256" and len(meta["weights_sha256"]) == 64


def test_runtime_input_errors_and_scaling(small_model):
    det = DetectorRuntime(small_model)
    img = np.zeros((192, 256, 3), np.uint8)
    out = det.detect(img, want_features=True)
    assert out.features.shape == (1, 128, SMALL[1] // 4, SMALL[0] // 4)
    assert det.detect(img).features is None
    if len(out):
        assert out.boxes[:, 2].max() <= 256 + 1e-3
    for bad, enc in [(img, "mono8"), (img.astype(np.uint16), "rgb8"), (img[..., 0], "rgb8"),
                     (np.zeros((16, 16, 3), np.uint8), "rgb8"), (np.zeros((100, 400, 3), np.uint8), "rgb8"),
                     ([[1, 2, 3]], "rgb8")]:
        with pytest.raises(DetectorInputError):
            det.detect(bad, encoding=enc)


def test_rgb_from_buffer():
    from neural_ae_ros.imaging.image_buffers import ImageFormatError, rgb_from_buffer

    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    padded = np.concatenate([img.reshape(4, 15), np.zeros((4, 1), np.uint8)], 1)
    assert np.array_equal(rgb_from_buffer(padded.tobytes(), 4, 5, "rgb8", step=16), img)
    with pytest.raises(ImageFormatError, match="encoding"):
        rgb_from_buffer(img.tobytes(), 4, 5, "bayer_rggb16")
    with pytest.raises(ImageFormatError, match="bytes"):
        rgb_from_buffer(img.tobytes(), 5, 5, "rgb8")


def test_shipped_default_checkpoint_loads():
    from neural_ae_ros.detector import DEFAULT_CHECKPOINT
    assert DEFAULT_CHECKPOINT.is_file(), f"{DEFAULT_CHECKPOINT}: the shipped checkpoint is missing"
    assert DEFAULT_CHECKPOINT.stat().st_size < 10e6
    det = load_detector(expected_classes=CLASS_NAMES)
    w, h = det.input_size
    out = det.detect(np.full((h * 2, w * 2, 3), 128, np.uint8), want_features=True)
    assert out.features.shape[1] == 128
