"""The project's object detector: a small ResNet-like backbone and an anchor-free one-stage head.

Why this design
---------------
* **Backbone: ResNet-like with bottleneck blocks, "conv2" at stride 4 with 128 channels.**
  Paper 000 (Section 4.2) feeds the output of ResNet ``conv2`` into the semantic AE branch and
  compresses its 128 channels to 26. We keep ResNet's stage naming (``conv1`` = stem at stride
  2, max-pool, ``conv2`` = first residual stage at stride 4, ``conv3`` stride 8, ``conv4``
  stride 16) and its bottleneck block (1x1 reduce, 3x3, 1x1 expand, identity/projection
  shortcut), with widths cut down (128/192/256 outputs, 4x bottleneck reduction) so that the
  whole detector trains on a CPU in minutes and runs at >= 10 fps on 2 cores. The stage-2
  map is returned as ``features["conv2"]`` (N, 128, H/4, W/4).
* **Head: one-stage, anchor-free, CenterNet-style heatmap with TTFNet-style box regression
  on the stride-4 map.** Automotive objects are often small (traffic lights and signs are a
  few pixels even at the scenes' 640x384): a stride-4 output keeps them separable, and the stride-4
  map is the conv2 map we must compute anyway (a light top-down neck adds conv3/conv4
  context to it). The heatmap (one channel per class, Gaussian peaks at box centres, focal
  loss) needs no anchors and no anchor tuning; the box branch regresses distances to the
  four box sides at every pixel inside a Gaussian area around the centre with a GIoU loss
  (Liu et al., "Training-Time-Friendly Network", AAAI 2020), which converges far faster
  than CenterNet's single-pixel size regression - important with CPU-only training. Decoding
  is a 3x3 max-pool peak pick plus top-k; a class-wise NMS (own torch code) removes the rare
  duplicates. No anchors, no RoI ops, no NMS library, nothing from torchvision.
  A two-stage detector (Faster R-CNN, what the paper's [19, 55] use) would need RoI pooling
  and far more compute than 2 CPU cores allow at 10 fps.

Size and speed: 0.44 M parameters (~1 MB as an fp16 checkpoint). The network is fully
convolutional: it trains on 320x192 crops of the 640x384 scene renders (CPU-friendly) and
runs on whole 640x384 frames (the default ``input_size``; larger camera frames are resized
to it by :class:`~neural_ae_ros.detector.inference.DetectorRuntime`).

Input: float RGB (N, 3, H, W) in [0, 1] (the ISP output), H and W multiples of 16.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neural_ae_ros.classes import CLASS_NAMES

#: Channels of the stage-2 ("ResNet conv2") feature map the semantic AE branch consumes.
CONV2_CHANNELS = 128
CONV2_STRIDE = 4
OUTPUT_STRIDE = 4
#: Box distances are predicted as relu(x) * BOX_SCALE input pixels.
BOX_SCALE = 16.0


@dataclass
class DetectorConfig:
    """Architecture and input description, stored with every checkpoint."""

    classes: tuple[str, ...] = CLASS_NAMES
    #: (width, height) of the network input in pixels, multiples of 16.
    input_size: tuple[int, int] = (640, 384)
    stem_channels: int = 32
    #: output channels of conv2 (stride 4), conv3 (stride 8), conv4 (stride 16)
    stage_channels: tuple[int, int, int] = (CONV2_CHANNELS, 192, 256)
    stage_blocks: tuple[int, int, int] = (2, 2, 2)
    neck_channels: int = 64
    head_channels: int = 32

    def __post_init__(self):
        self.classes = tuple(self.classes)
        self.input_size = tuple(int(v) for v in self.input_size)
        self.stage_channels = tuple(int(v) for v in self.stage_channels)
        self.stage_blocks = tuple(int(v) for v in self.stage_blocks)
        if len(self.classes) == 0:
            raise ValueError("at least one class is needed")
        w, h = self.input_size
        if w % 16 or h % 16 or w < 32 or h < 32:
            raise ValueError(f"input_size {self.input_size} must be multiples of 16, >= 32")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["input_size"] = list(self.input_size)
        d["stage_channels"] = list(self.stage_channels)
        d["stage_blocks"] = list(self.stage_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown detector config field(s) {sorted(unknown)}")
        return cls(**d)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce -> 3x3 (stride) -> 1x1 expand, plus shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1, reduction: int = 4):
        super().__init__()
        mid = max(cout // reduction, 8)
        self.body = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride), conv_bn(mid, cout, 1, relu=False))
        nn.init.zeros_(self.body[-1][1].weight)  # zero-init last BN: block starts as identity
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = conv_bn(cin, cout, 1, stride, relu=False)

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + s, inplace=True)


class Backbone(nn.Module):
    """ResNet-like feature extractor returning ``{"conv1", "conv2", "conv3", "conv4"}``."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        c0 = cfg.stem_channels
        self.conv1 = nn.Sequential(conv_bn(3, c0 // 2, 3, 2), conv_bn(c0 // 2, c0, 3, 1))  # stride 2
        self.pool = nn.MaxPool2d(3, 2, 1)  # stride 4
        stages, cin = [], c0
        for i, (cout, n) in enumerate(zip(cfg.stage_channels, cfg.stage_blocks)):
            stride = 1 if i == 0 else 2
            blocks = [Bottleneck(cin, cout, stride)] + [Bottleneck(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.conv2, self.conv3, self.conv4 = stages
        self.register_buffer("mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        c1 = self.conv1(x)
        c2 = self.conv2(self.pool(c1))
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        return {"conv1": c1, "conv2": c2, "conv3": c3, "conv4": c4}


class Detector(nn.Module):
    """Backbone + top-down neck to stride 4 + heatmap / box heads.

    ``forward(images)`` returns a dict with ``heatmap`` logits (N, C, H/4, W/4), ``box``
    distances (N, 4, H/4, W/4) to the left, top, right, bottom box sides in input pixels,
    and ``features`` (the backbone dict; ``features["conv2"]`` is (N, 128, H/4, W/4)).
    """

    def __init__(self, cfg: DetectorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else DetectorConfig()
        self.backbone = Backbone(cfg)
        c2, c3, c4 = cfg.stage_channels
        n = cfg.neck_channels
        self.lat4 = conv_bn(c4, n, 1)
        self.lat3 = conv_bn(c3, n, 1)
        self.lat2 = conv_bn(c2, n, 1)
        self.smooth = conv_bn(n, n, 3)
        h = cfg.head_channels
        self.heat_head = nn.Sequential(nn.Conv2d(n, h, 3, padding=1), nn.ReLU(inplace=True),
                                       nn.Conv2d(h, cfg.num_classes, 1))
        self.box_head = nn.Sequential(nn.Conv2d(n, h, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(h, 4, 1))
        prior = 0.05
        nn.init.constant_(self.heat_head[-1].bias, -math.log((1 - prior) / prior))
        nn.init.normal_(self.heat_head[-1].weight, std=0.01)
        nn.init.normal_(self.box_head[-1].weight, std=0.01)
        nn.init.constant_(self.box_head[-1].bias, 1.0)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.cfg.classes

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | dict]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-1] % 16 or images.shape[-2] % 16:
            raise ValueError(f"image height and width must be multiples of 16, got {tuple(images.shape[-2:])}")
        f = self.backbone(images)
        p = self.lat4(f["conv4"])
        p = F.interpolate(p, size=f["conv3"].shape[-2:], mode="nearest") + self.lat3(f["conv3"])
        p = F.interpolate(p, size=f["conv2"].shape[-2:], mode="nearest") + self.lat2(f["conv2"])
        p = self.smooth(p)
        heat = self.heat_head(p)
        box = F.relu(self.box_head(p)) * BOX_SCALE
        return {"heatmap": heat, "box": box, "features": f}

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """Only the backbone up to conv2: the (N, 128, H/4, W/4) map of paper 000 Sec. 4.2."""
        b = self.backbone
        x = (images - b.mean) / b.std
        return b.conv2(b.pool(b.conv1(x)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
