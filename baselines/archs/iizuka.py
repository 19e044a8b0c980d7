"""Iizuka, Simo-Serra, Ishikawa, "Let there be Color!: Joint End-to-end Learning of Global and Local Image Priors for
Automatic Image Colorization with Simultaneous Classification", SIGGRAPH 2016.

The authors released Torch7 weights (``colornet.t7``), not PyTorch; this module therefore defines this project's own
parameter layout (documented in docs/baselines.md), following the paper's Table 1 layer by layer. Every conv is 3x3
with padding 1, followed by BatchNorm and ReLU ("conv" blocks: keys ``<name>.conv.*``, ``<name>.bn.*``); every fully
connected layer is followed by BatchNorm1d and ReLU (keys ``<name>.fc.*``, ``<name>.bn.*``):

- low-level features ``low.0``..``low.5``: 64 s2, 128 s1, 128 s2, 256 s1, 256 s2, 512 s1 (1/8 resolution);
- mid-level features ``mid.0``, ``mid.1``: 512, 256;
- global features on the 224x224 rescaled image (the low-level weights are shared): ``global_conv.0``..``.3``:
  512 s2, 512 s1, 512 s2, 512 s1 (7x7), then ``global_fc.0``..``.2``: 7*7*512 -> 1024 -> 512 -> 256;
- classification branch from the 512-d global vector: ``classifier.0`` (512 -> 256, BN, ReLU) and
  ``classifier_out`` (256 -> the number of scene classes, 205 for Places as in the paper; logits);
- fusion layer ``fusion``: the 256-d global vector is replicated at every position of the mid-level map,
  concatenated (512 channels) and mixed by a per-pixel fully connected layer (a 1x1 conv) to 256, BN, ReLU;
- colorization network: ``color.0`` conv 128, x2 nearest upsampling, ``color.1`` conv 64, ``color.2`` conv 64,
  x2 upsampling, ``color.3`` conv 32, ``color_out`` conv 32 -> 2 with sigmoid (no BN), x2 upsampling to the input
  size (the paper's output is at half resolution, upsampled).

Normalisation (this project's convention, stated in the ONNX metadata): input ``L / 100`` in [0, 1]; output
chrominance ``s`` in [0, 1] (sigmoid) mapped to ab by ``ab = (2 s - 1) * 110``.
"""

from __future__ import annotations

import torch
from torch import nn

from scgan.state_dict import load_state_dict_strict

from ._common import LabColorizer

NAME = "iizuka"
PAPER = (
    "Iizuka, Simo-Serra, Ishikawa. Let there be Color!: Joint End-to-end Learning of Global and Local Image Priors "
    "for Automatic Image Colorization with Simultaneous Classification. SIGGRAPH 2016"
)
INPUT_SIZE = 224
GLOBAL_SIZE = 224
SIZE_MULTIPLE = 8
NUM_CLASSES = 205
AB_NORM = 110.0


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=True)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class FCBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.fc(x)))


class IizukaNet(nn.Module):
    """``forward(L01)`` -> ``(chroma01, class_logits)``.

    L01: (N, 1, H, W) L*/100 in [0, 1], H and W multiples of 8; chroma01: (N, 2, H, W) in [0, 1]; class_logits
    (N, num_classes). The global branch sees the input resized to ``global_size`` (224 in the paper; smaller values
    give the same structure for tests: the first FC layer takes (global_size/32)^2 * 512 inputs).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, global_size: int = GLOBAL_SIZE) -> None:
        super().__init__()
        if global_size % 32:
            raise ValueError(f"global_size must be a multiple of 32, got {global_size}")
        self.global_size = global_size
        self.low = nn.Sequential(
            ConvBNReLU(1, 64, 2),
            ConvBNReLU(64, 128),
            ConvBNReLU(128, 128, 2),
            ConvBNReLU(128, 256),
            ConvBNReLU(256, 256, 2),
            ConvBNReLU(256, 512),
        )
        self.mid = nn.Sequential(ConvBNReLU(512, 512), ConvBNReLU(512, 256))
        self.global_conv = nn.Sequential(
            ConvBNReLU(512, 512, 2), ConvBNReLU(512, 512), ConvBNReLU(512, 512, 2), ConvBNReLU(512, 512)
        )
        side = global_size // 32
        self.global_fc = nn.Sequential(FCBNReLU(side * side * 512, 1024), FCBNReLU(1024, 512), FCBNReLU(512, 256))
        self.classifier = nn.Sequential(FCBNReLU(512, 256))
        self.classifier_out = nn.Linear(256, num_classes)
        self.fusion = ConvBNReLU(512, 256, kernel_size=1)
        self.color = nn.Sequential(ConvBNReLU(256, 128), ConvBNReLU(128, 64), ConvBNReLU(64, 64), ConvBNReLU(64, 32))
        self.color_out = nn.Conv2d(32, 2, kernel_size=3, padding=1, bias=True)

    def forward(self, l01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = int(l01.shape[-2]), int(l01.shape[-1])
        low = self.low(l01)
        if (height, width) == (self.global_size, self.global_size):
            low_global = low  # the paper's two low-level passes coincide at the global size
        else:
            scaled = nn.functional.interpolate(
                l01, size=(self.global_size, self.global_size), mode="bilinear", align_corners=False
            )
            low_global = self.low(scaled)
        g = self.global_conv(low_global).flatten(1)
        g512 = self.global_fc[1](self.global_fc[0](g))
        g256 = self.global_fc[2](g512)
        class_logits = self.classifier_out(self.classifier(g512))
        mid = self.mid(low)
        fused = torch.cat([mid, g256[:, :, None, None].expand(-1, -1, mid.shape[2], mid.shape[3])], dim=1)
        x = self.fusion(fused)
        x = self.color[0](x)
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.color[2](self.color[1](x))
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        x = torch.sigmoid(self.color_out(self.color[3](x)))
        chroma01 = nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        return chroma01, class_logits


def build(global_size: int = GLOBAL_SIZE, num_classes: int = NUM_CLASSES) -> IizukaNet:
    return IizukaNet(num_classes=num_classes, global_size=global_size)


def load_weights(model: IizukaNet, state_dict, released: bool = True) -> None:
    """Load weights in this project's layout (strict). The authors' Torch7 file must be converted to it first."""
    load_state_dict_strict(model, state_dict, f"{NAME} weights", fill_batchnorm_counters=True)


def chroma01_to_ab(chroma01: torch.Tensor) -> torch.Tensor:
    """Network chrominance in [0, 1] -> a*b* in [-110, 110]."""
    return (2.0 * chroma01 - 1.0) * AB_NORM


def ab_to_chroma01(ab: torch.Tensor) -> torch.Tensor:
    """a*b* -> the network's [0, 1] target (clamped), the inverse of ``chroma01_to_ab``."""
    return torch.clamp(ab / (2.0 * AB_NORM) + 0.5, 0.0, 1.0)


class Colorizer(LabColorizer):
    """Contract wrapper: gray (N, 1, H, W) in [0, 1] -> sRGB (N, 3, H, W) in [0, 1] (the class logits are dropped)."""

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        chroma01, _ = self.net(lightness / 100.0)
        return chroma01_to_ab(chroma01)
