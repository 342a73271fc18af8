"""Attention-aware exposure network of paper 001 (Yang et al.), Sections 4.2 and 7.1.

A light fully convolutional backbone (written here; the paper trims SqueezeNet after "fire7")
followed by dropout 0.5 and two 1x1-conv heads:

* ``EM`` exposure map, ``tanh`` -> [-1, 1] (local exposure adjustment, normalised units),
* ``AM`` attention map, ``sigmoid`` -> (0, 1) (spatial importance),

aggregated by Eq. 1::

    Delta = 1/(H W) * sum_{x,y} EM[x, y] * AM[x, y]          (normalised, in (-1, 1))

Paper 001 Section 7.2 normalises the labels to [-1, 1] for the -2 .. +2 EV re-exposure range,
so the network's normalised output maps to EV by ``Delta_EV = EV_RANGE * Delta`` with
``EV_RANGE = 2`` EV. The Gaussian policy of Section 5.2 lives in the same normalised units.

Input: the ISP's RGB frame (float [0, 1], ``(N, 3, H, W)``) area-resized to ``INPUT_SIZE``, 64 x 64
(128 x 128 in the paper; see ``INPUT_SIZE``). The backbone is a 4 x 4 stride-4 stem and three SqueezeNet-style "fire" blocks
(1x1 squeeze with batch norm, parallel 1x1 and 3x3 expand; SqueezeNet has no batch norm, but
without it this small net from scratch often sits on a plateau of dead ReLUs), a 2 x 2 max
pooling after the first: 8 x 8 maps for a
64 x 64 input, ~6 k weights, ~0.6 M multiply-adds per frame: small
enough to train many personalised models on 2 shared CPU cores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from neural_ae_ros.weights import read_weights, write_weights

#: EV that the normalised output +-1 stands for (paper 001 Sec. 7.2: labels -2..+2 EV -> [-1, 1]).
EV_RANGE = 2.0
#: (height, width) of the network input. Paper 001 Sec. 7.2 uses 128 x 128; we halve it: on 2
#: shared CPU cores the 128 x 128 stem costs 3-4x the time of the whole 64 x 64 network, and
#: exposure is a low-frequency decision (the 8 x 8 maps are the same).
INPUT_SIZE = (64, 64)
FORMAT = "neural_ae_ros.attention_rl/1"


class CheckpointError(RuntimeError):
    """An attention-network weights file that cannot be used; the message names file and reason."""


class Fire(nn.Module):
    """SqueezeNet fire block: 1x1 squeeze to ``s`` channels, then 1x1 and 3x3 expand, concatenated."""

    def __init__(self, c_in: int, s: int, e: int):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, s, 1, bias=False)
        self.bn = nn.BatchNorm2d(s)
        self.e1 = nn.Conv2d(s, e, 1)
        self.e3 = nn.Conv2d(s, e, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.bn(self.squeeze(x)))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class AttentionExposureNet(nn.Module):
    """Backbone + attention module (paper 001 Fig. 3). ``forward`` returns the normalised
    Delta (N,) of Eq. 1, ``maps`` returns (Delta, EM, AM)."""

    def __init__(self, width: int = 12, dropout: float = 0.5):
        super().__init__()
        w = int(width)
        self.width = w
        self.stem = nn.Conv2d(3, w, 4, stride=4, bias=False)            # 1/4, w ch
        self.stem_bn = nn.BatchNorm2d(w)
        self.fire1 = Fire(w, w // 2, w)                                 # 1/4, 2w ch
        self.fire2 = Fire(2 * w, w // 2, w)                             # after pool: 1/8, 2w ch
        self.fire3 = Fire(2 * w, w, 2 * w)                              # 1/8, 4w ch
        self.drop = nn.Dropout(dropout)
        self.exposure_head = nn.Conv2d(4 * w, 1, 1)
        self.attention_head = nn.Conv2d(4 * w, 1, 1)
        # Paper 001 Sec. 8.1.1: new layers start from N(0, 0.01).
        for head in (self.exposure_head, self.attention_head):
            nn.init.normal_(head.weight, 0.0, 0.01)
            nn.init.zeros_(head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.fire1(x)
        x = F.max_pool2d(x, 2)
        x = self.fire2(x)
        x = self.fire3(x)
        return self.drop(x)

    def maps(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Delta (N,), EM (N, h, w) in [-1, 1], AM (N, h, w) in (0, 1)); Delta by Eq. 1."""
        f = self.features(x)
        em = torch.tanh(self.exposure_head(f))[:, 0]
        am = torch.sigmoid(self.attention_head(f))[:, 0]
        return aggregate_eq1(em, am), em, am

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps(x)[0]


def aggregate_eq1(exposure_map: torch.Tensor, attention_map: torch.Tensor) -> torch.Tensor:
    """Paper 001 Eq. 1: ``Delta = 1/(HW) sum EM * AM`` over the last two axes (normalised units)."""
    if exposure_map.shape != attention_map.shape:
        raise ValueError(f"exposure map {tuple(exposure_map.shape)} and attention map "
                         f"{tuple(attention_map.shape)} must have the same shape")
    return (exposure_map * attention_map).mean(dim=(-2, -1))


def to_ev(delta_normalised):
    """Normalised network output -> EV (``EV_RANGE`` EV per unit)."""
    return delta_normalised * EV_RANGE


def to_normalised(delta_ev):
    return delta_ev / EV_RANGE


def prepare_input(rgb: torch.Tensor, size: Tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """ISP RGB float [0, 1] ``(3, H, W)`` or ``(N, 3, H, W)`` (or uint8) -> ``(N, 3, 64, 64)``
    float, area-averaged (the paper resizes every input to 128 x 128)."""
    if rgb.dtype == torch.uint8:
        rgb = rgb.float().div_(255.0)
    if rgb.ndim == 3:
        rgb = rgb[None]
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected RGB (N, 3, H, W), got {tuple(rgb.shape)}")
    if tuple(rgb.shape[-2:]) != tuple(size):
        rgb = F.interpolate(rgb, size=size, mode="area") if rgb.shape[-1] >= size[1] and rgb.shape[-2] >= size[0] \
            else F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
    return rgb.contiguous()


@torch.no_grad()
def predict_ev(net: AttentionExposureNet, rgb: torch.Tensor) -> Tuple[float, torch.Tensor, torch.Tensor]:
    """One ISP frame -> (Delta_EV in EV, EM (h, w), AM (h, w)); the network in eval mode."""
    was = net.training
    net.eval()
    try:
        d, em, am = net.maps(prepare_input(rgb))
    finally:
        net.train(was)
    return float(to_ev(d[0])), em[0], am[0]


# ----------------------------------------------------------------------------- files
def save_weights(net: AttentionExposureNet, path, metadata: Optional[Dict] = None) -> Path:
    """Write ``path`` (.pt: format, width, state_dict) atomically and ``<stem>.json`` metadata
    carrying the file's sha256 (checked by :func:`load_weights`)."""
    blob = {"format": FORMAT, "width": net.width,
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
    return write_weights(blob, path, dict(metadata or {}, width=net.width, ev_range=EV_RANGE,
                                           input_size=list(INPUT_SIZE)))


def load_weights(path) -> Tuple[AttentionExposureNet, Dict]:
    """Load a network written by :func:`save_weights`; :class:`CheckpointError` names the file
    and the reason (missing, checksum mismatch, not this format, weights that do not fit)."""
    blob, meta = read_weights(path, FORMAT, "attention_rl weights", CheckpointError)
    try:
        net = AttentionExposureNet(width=int(blob["width"]))
        net.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not fit the attention network: {e}") from e
    for name, p in net.state_dict().items():
        if not torch.isfinite(p).all():
            raise CheckpointError(f"{path}: parameter {name} has non-finite values")
    return net.eval(), meta
