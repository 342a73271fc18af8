"""Paper 000 Section 4: the exposure networks (histogram, semantic and hybrid NN) in torch.

One module per method serves training (batched, differentiable) and the running node (a batch
of one). Each maps what it looks at to the exposure adjustment ``u_t`` of Eq. 4,

    u_t = exp(2 (sigmoid(x) - 0.5) log M_exp),   u_t in [1 / M_exp, M_exp],  M_exp = 10,

relative to the effective exposure of the observed frame (Eq. 5 then filters it, Eq. 6 splits it).

Where the paper defers to its supplement we chose, and say so:

* Histogram branch (Section 4.1): input the 59 x 256 stack (bins along the sequence axis, the 59
  regions as channels), each histogram normalised to fractions x 256 (so a flat histogram is 1
  per bin, independent of the image size); three Conv1d layers (kernel 4, stride 4: 256 -> 64
  -> 16 -> 4 bins; 64, 64, 64 channels), then dense 256 -> 128 -> 64; ReLU after layers 1-5;
  layer 6 (dense 64 -> 1) is the head, followed by Eq. 4.
* Semantic branch (Section 4.2): the detector's ``conv2`` map (N, 128, H/4, W/4); channel
  compression 128 -> 26 (1x1 conv + ReLU, the compressed feature map CFM); pyramid pooling at
  4 scales: the coarsest is the average of the conv2 map over both spatial axes (128 values),
  the three finer ones max and average pooling of the CFM onto 2x2, 4x4 and 8x8 grids
  ("growing size"); flattened, concatenated, dense -> 64 + ReLU.
* Hybrid (Section 4.2, last paragraph): the two 64-d branch vectors summed, one common dense
  layer (the head) and Eq. 4.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "M_EXP",
    "exposure_activation",
    "HistogramBranch",
    "SemanticBranch",
    "ExposureNet",
    "NETWORK_METHODS",
    "build_network",
    "normalise_histograms",
]

#: Paper 000 Eq. 4: largest exposure change per frame (factor).
M_EXP = 10.0
#: Histogram stack shape (paper 000 Section 4.1: 1 + 9 + 49 regions, 256 bins).
NUM_REGIONS = 59
NUM_BINS = 256
#: Detector stage-2 ("ResNet conv2") channels and the CFM channels of paper 000 Section 4.2.
CONV2_CHANNELS = 128
CFM_CHANNELS = 26
#: Width of each branch's feature vector (summed in the hybrid model).
FEATURE_WIDTH = 64
#: Grids of the three finer pyramid-pooling scales (the coarsest is the global average).
PYRAMID_GRIDS = (2, 4, 8)

#: Method names (docs/design.md) of the learned methods and the inputs each uses.
NETWORK_METHODS = {
    "histogram_nn": ("histograms",),
    "semantic_nn": ("features",),
    "hybrid_nn": ("histograms", "features"),
}


def exposure_activation(x: torch.Tensor, m_exp: float = M_EXP) -> torch.Tensor:
    """Eq. 4: ``u = exp(2 (sigmoid(x) - 0.5) log M_exp)``, bounded to ``[1/M_exp, M_exp]``."""
    if not (m_exp > 1.0 and math.isfinite(m_exp)):
        raise ValueError(f"M_exp={m_exp!r} must be a finite number > 1")
    return torch.exp(2.0 * (torch.sigmoid(x) - 0.5) * math.log(m_exp))


def normalise_histograms(counts: torch.Tensor) -> torch.Tensor:
    """(N, 59, 256) counts -> fractions x 256 per region (flat histogram = 1 per bin).

    Raises ``ValueError`` on a wrong shape or non-finite or negative counts (the network would
    silently produce garbage otherwise).
    """
    if counts.ndim == 2:
        counts = counts.unsqueeze(0)
    if counts.ndim != 3 or counts.shape[1:] != (NUM_REGIONS, NUM_BINS):
        raise ValueError(f"histograms must be (N, {NUM_REGIONS}, {NUM_BINS}), got {tuple(counts.shape)}")
    counts = counts.to(torch.float32)
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise ValueError("histograms hold non-finite or negative counts")
    totals = counts.sum(dim=2, keepdim=True).clamp_min(1.0)
    return counts * (NUM_BINS / totals)


class HistogramBranch(nn.Module):
    """Layers 1-5 of the histogram NN: three Conv1d (k 4, s 4) and two dense, ReLU after each."""

    def __init__(self, channels: int = 64, hidden: int = 128, width: int = FEATURE_WIDTH) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(NUM_REGIONS, channels, kernel_size=4, stride=4), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=4, stride=4), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=4, stride=4), nn.ReLU(),
        )
        self.dense = nn.Sequential(nn.Linear(channels * (NUM_BINS // 64), hidden), nn.ReLU(),
                                   nn.Linear(hidden, width), nn.ReLU())

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        x = self.convs(normalise_histograms(counts))
        return self.dense(x.flatten(1))


class SemanticBranch(nn.Module):
    """CFM compression, 4-scale pyramid pooling, dense: conv2 map (N, 128, h, w) -> (N, 64)."""

    def __init__(self, width: int = FEATURE_WIDTH) -> None:
        super().__init__()
        self.compress = nn.Sequential(nn.Conv2d(CONV2_CHANNELS, CFM_CHANNELS, kernel_size=1), nn.ReLU())
        pooled = CONV2_CHANNELS + 2 * CFM_CHANNELS * sum(g * g for g in PYRAMID_GRIDS)
        self.dense = nn.Sequential(nn.Linear(pooled, width), nn.ReLU())

    @staticmethod
    def check_features(features: torch.Tensor) -> None:
        if features.ndim != 4 or features.shape[1] != CONV2_CHANNELS:
            raise ValueError(f"features must be (N, {CONV2_CHANNELS}, h, w) conv2 maps, got {tuple(features.shape)}")
        h, w = features.shape[-2:]
        if h < max(PYRAMID_GRIDS) or w < max(PYRAMID_GRIDS):
            raise ValueError(f"conv2 map {h}x{w} is smaller than the {max(PYRAMID_GRIDS)}x{max(PYRAMID_GRIDS)} pyramid grid")
        if not bool(torch.isfinite(features).all()):
            raise ValueError("features hold NaN or inf")

    def pyramid(self, features: torch.Tensor) -> torch.Tensor:
        """The flattened, concatenated pyramid-pooled vector (N, 128 + 2 * 26 * 84)."""
        self.check_features(features)
        cfm = self.compress(features)
        parts = [features.mean(dim=(2, 3))]
        for g in PYRAMID_GRIDS:
            parts.append(F.adaptive_max_pool2d(cfm, g).flatten(1))
            parts.append(F.adaptive_avg_pool2d(cfm, g).flatten(1))
        return torch.cat(parts, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(self.pyramid(features))


class ExposureNet(nn.Module):
    """``histogram_nn``, ``semantic_nn`` or ``hybrid_nn``: branch(es), summed, head, Eq. 4.

    ``forward(histograms=..., features=...)`` returns ``u`` of shape (N,).
    """

    def __init__(self, method: str, m_exp: float = M_EXP) -> None:
        super().__init__()
        if method not in NETWORK_METHODS:
            raise ValueError(f"unknown network method {method!r}; expected one of {', '.join(NETWORK_METHODS)}")
        self.method = method
        self.m_exp = float(m_exp)
        self.inputs = NETWORK_METHODS[method]
        self.histogram_branch = HistogramBranch() if "histograms" in self.inputs else None
        self.semantic_branch = SemanticBranch() if "features" in self.inputs else None
        self.head = nn.Linear(FEATURE_WIDTH, 1)
        # Start near u = 1 (no change), the neutral policy before training; small, not zero,
        # weights so that the loss reaches the branches from the first step.
        nn.init.normal_(self.head.weight, std=1e-2)
        nn.init.zeros_(self.head.bias)

    def preactivation(self, histograms: Optional[torch.Tensor] = None,
                      features: Optional[torch.Tensor] = None) -> torch.Tensor:
        vec = None
        if self.histogram_branch is not None:
            if histograms is None:
                raise ValueError(f"{self.method} needs histograms")
            vec = self.histogram_branch(histograms)
        if self.semantic_branch is not None:
            if features is None:
                raise ValueError(f"{self.method} needs detector conv2 features")
            sem = self.semantic_branch(features)
            vec = sem if vec is None else vec + sem
        return self.head(vec).squeeze(1)

    def forward(self, histograms: Optional[torch.Tensor] = None,
                features: Optional[torch.Tensor] = None) -> torch.Tensor:
        return exposure_activation(self.preactivation(histograms, features), self.m_exp)

    def ae_weights_l2(self) -> torch.Tensor:
        """Sum of squared weights (paper 000 Section 5.3: the weighted L2 penalty on the AE net)."""
        return sum((p ** 2).sum() for n, p in self.named_parameters() if p.dim() > 1)


def build_network(method: str, state_dict: Optional[Dict[str, torch.Tensor]] = None) -> ExposureNet:
    """A network for ``method``; ``state_dict`` (from a checkpoint) is loaded strictly."""
    net = ExposureNet(method)
    if state_dict is not None:
        net.load_state_dict(state_dict, strict=True)
    return net
