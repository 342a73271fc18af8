"""Paper 000 Section 5.3: one differentiable two-frame training example.

1. Frame 1 is captured at ``e_1 = kappa * e_base`` (Eq. 1-3, no gradient: it is an input),
   ``e_base = 0.5 M_white / (gamma mean I_hdr)`` (:func:`neural_ae_ros.imaging.exposure.base_exposure_s`).
2. The exposure network looks at frame 1 (its 59 x 256 histograms and/or the detector's conv2
   features of its ISP output) and predicts ``u`` (Eq. 4).
3. Frame 2 (the scene's next frame) is captured at ``e_2 = e_1 * u``, split with Eq. 6 (gain
   uncapped so every shift is realisable, as in training), through the sensor model with its
   straight-through quantiser, the differentiable ISP and the detector.
4. Only the detection loss on frame 2 (plus a weighted L2 on the AE weights) trains the chain.

No EMA here: Eq. 5 is a property of the running loop; the training example is one step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch

from neural_ae_ros.ae.networks import ExposureNet
from neural_ae_ros.detector.inference import resize_rgb
from neural_ae_ros.detector.loss import collate_targets, detection_loss
from neural_ae_ros.detector.model import OUTPUT_STRIDE, Detector
from neural_ae_ros.imaging import sensor as sensor_mod
from neural_ae_ros.imaging.histograms import histogram_stack_torch
from neural_ae_ros.imaging.isp import Isp

__all__ = ["differentiable_split", "base_exposure_batch", "TwoFrameBatch", "two_frame_loss"]


def differentiable_split(effective_exposure_s: torch.Tensor, t_max_s: float):
    """Eq. 6 on tensors: ``K = max(1, e / T_max)``, ``t = e / K`` (differentiable in e)."""
    k = torch.clamp(effective_exposure_s / float(t_max_s), min=1.0)
    return effective_exposure_s / k, k


def base_exposure_batch(mosaics: torch.Tensor, sensor: sensor_mod.SensorParams) -> torch.Tensor:
    """``e_base`` (s) per mosaic of a (B, H, W) batch of radiance mosaics in e-/s."""
    mean = mosaics.double().mean(dim=(1, 2)).clamp_min(1e-12)
    return (0.5 * float(sensor.white_level_dn) / (float(sensor.g1_dn_per_e) * mean)).to(mosaics.dtype)


@dataclass
class TwoFrameBatch:
    """A batch of two-frame examples: radiance mosaics (B, H, W) in e-/s of frames 1 and 2,
    exposure shifts ``kappa`` (B,), and frame 2's boxes/labels/ignored boxes in the detector's
    input pixels (lists of tensors)."""

    frame1: torch.Tensor
    frame2: torch.Tensor
    kappa: torch.Tensor
    boxes: Sequence[torch.Tensor]
    labels: Sequence[torch.Tensor]
    ignored: Optional[Sequence[torch.Tensor]] = None


def two_frame_loss(net: ExposureNet, detector: Detector, isp: Isp, batch: TwoFrameBatch,
                   sensor: sensor_mod.SensorParams, t_max_s: float = 0.015, l2_weight: float = 1e-4,
                   generator: Optional[torch.Generator] = None, noise: bool = True) -> Dict[str, torch.Tensor]:
    """Loss of one batch (Section 5.3); returns ``loss``, its parts and the chosen ``u``."""
    w, h = detector.cfg.input_size
    e1 = batch.kappa.to(batch.frame1.dtype) * base_exposure_batch(batch.frame1, sensor)
    t1, k1 = differentiable_split(e1, t_max_s)
    with torch.no_grad():
        raw1 = sensor_mod.capture(batch.frame1, t1[:, None, None], k1[:, None, None], sensor,
                                  generator=generator, noise=noise)
        histograms = histogram_stack_torch(raw1, int(sensor.white_level_dn)) if "histograms" in net.inputs else None
    features = None
    if "features" in net.inputs:
        # Frame 1's detector features; the detector fine-tunes jointly, so keep their gradient.
        rgb1 = resize_rgb(isp(raw1), (w, h)).clamp(0, 1)
        features = detector.extract_features(rgb1)
    u = net(histograms=histograms, features=features)
    e2 = e1 * u
    t2, k2 = differentiable_split(e2, t_max_s)
    raw2 = sensor_mod.capture(batch.frame2, t2[:, None, None], k2[:, None, None], sensor,
                              generator=generator, noise=noise)
    rgb2 = resize_rgb(isp(raw2), (w, h)).clamp(0, 1)
    out = detector(rgb2)
    grid = (h // OUTPUT_STRIDE, w // OUTPUT_STRIDE)
    targets = collate_targets(list(batch.boxes), list(batch.labels), detector.cfg.num_classes, grid,
                              list(batch.ignored) if batch.ignored is not None else None)
    parts = detection_loss(out, targets)
    l2 = net.ae_weights_l2()
    return {"loss": parts["loss"] + l2_weight * l2, "detection": parts["loss"], "ae_l2": l2,
            "u": u.detach(), "e2_over_e_base": (e2 / (e1 / batch.kappa)).detach()}
