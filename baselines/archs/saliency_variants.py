"""The saliency-guided variants of the SCGAN paper's Table III: pix2pix+Sal and UResNet+Sal.

The paper adds SCGAN's saliency branch to two other generators to show that saliency guidance helps beyond its own
architecture. No weights exist for either (trained here); the layouts are this project's, documented here and in
docs/baselines.md. Both take gray ``2 y - 1`` (N, 1, H, W) and return ``(rgb, saliency)`` like SCGAN's generator:
rgb (N, 3, H, W) tanh in [-1, 1], saliency (N, 1, H, W) sigmoid in [0, 1], so SCGAN's trainer (L1 + attention loss
+ GAN) trains them unchanged.

Saliency head (``SaliencyHead``, as SCGAN's branch, docs/model.md): decoder features at 1/8, 1/4 and 1/2 of the
input (before their skip concatenation) are each brought to 128 channels at 1/2 resolution (two, one and zero
"upsample-convs": nearest x2 + 3x3 conv + BN + LeakyReLU(0.2)), concatenated (384), one more upsample-conv to 128 at
full resolution, a 3x3 conv to 1 channel and a sigmoid.

- ``pix2pix-sal``: pix2pix's U-Net (4x4 stride-2 convs, BN, LeakyReLU(0.2) down; transposed 4x4 convs, BN, ReLU up,
  dropout 0.5 in the ``num_downs - 5`` decoder levels after the innermost (three at 8 levels), tanh out) written flat
  (``down.<i>``, ``up.<i>``) so the head can read the decoder levels; 8 levels at 256 (``num_downs``), ngf 64.
- ``uresnet-sal``: a U-Net whose every level is a residual block (two 3x3 conv + BN with an identity shortcut,
  ResNet "basic block") after a stride-2 3x3 conv down / nearest-upsample 3x3 conv up; 5 levels (1/32), widths
  64-128-256-512-512, tanh out.
"""

from __future__ import annotations

import torch
from torch import nn

from scgan.state_dict import load_state_dict_strict

PIX2PIX_SAL = "pix2pix-sal"
URESNET_SAL = "uresnet-sal"
PAPER = (
    "Zhao, Po, Cheung, Feng, Chen, Liu, Yang. SCGAN: Saliency Map-guided Colorization with Generative Adversarial "
    "Network. IEEE TCSVT 2020 (Table III variant)"
)
INPUT_SIZE = 256


def _up_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2.0, mode="nearest"),
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, True),
    )


class SaliencyHead(nn.Module):
    """SCGAN-style saliency branch.

    ``forward(f8, f4, f2)``: decoder features at 1/8, 1/4, 1/2 of the input -> saliency (N, 1, H, W) in [0, 1].
    """

    def __init__(self, c8: int, c4: int, c2: int, width: int = 128) -> None:
        super().__init__()
        self.from8 = nn.Sequential(_up_conv(c8, width), _up_conv(width, width))
        self.from4 = _up_conv(c4, width)
        self.from2 = nn.Sequential(
            nn.Conv2d(c2, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)
        )
        self.merge = _up_conv(3 * width, width)
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, f8, f4, f2):
        x = torch.cat([self.from8(f8), self.from4(f4), self.from2(f2)], dim=1)
        return torch.sigmoid(self.out(self.merge(x)))


class Pix2PixSal(nn.Module):
    """pix2pix U-Net + saliency head.

    ``forward(gray_pm1)`` -> ``(rgb_pm1, saliency01)``; H, W multiples of 2**num_downs.
    """

    def __init__(self, num_downs: int = 8, ngf: int = 64, use_dropout: bool = True) -> None:
        super().__init__()
        if num_downs < 4:
            raise ValueError(f"num_downs must be at least 4 (the head reads 1/8 of the input), got {num_downs}")
        self.num_downs = num_downs
        widths = [min(ngf * 2**i, ngf * 8) for i in range(num_downs)]  # encoder output channels per level
        self.down = nn.ModuleList()
        cin = 1
        for i, cout in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
            if 0 < i < num_downs - 1:
                layers.append(nn.BatchNorm2d(cout))
            self.down.append(nn.Sequential(*layers))
            cin = cout
        # Decoder level j produces the resolution of encoder level num_downs-2-j (then concatenated with its skip).
        self.up = nn.ModuleList()
        for j in range(num_downs - 1):
            level = num_downs - 2 - j
            cin = widths[-1] if j == 0 else 2 * widths[level + 1]
            cout = widths[level]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
            if use_dropout and 1 <= j <= num_downs - 5:  # as the authors: the num_downs - 5 levels after the innermost
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.final = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(2 * widths[0], 3, 4, 2, 1), nn.Tanh())
        self.saliency = SaliencyHead(widths[2], widths[1], widths[0])

    def forward(self, gray):
        skips = []
        x = gray
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        features = {}
        for j, layer in enumerate(self.up):
            level = self.num_downs - 2 - j
            y = layer(x)
            features[level] = y  # resolution 1 / 2**(level+1), before the skip concatenation
            x = torch.cat([skips[level], y], dim=1)
        rgb = self.final(x)
        return rgb, self.saliency(features[2], features[1], features[0])


class ResidualBlock(nn.Module):
    """ResNet basic block: ``x + BN(conv(ReLU(BN(conv(x)))))`` then ReLU; channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class UResNetSal(nn.Module):
    """Residual U-Net + saliency head. ``forward(gray_pm1)`` -> ``(rgb_pm1, saliency01)``; H, W multiples of 32."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 512)) -> None:
        super().__init__()
        if len(widths) < 4:
            raise ValueError(f"at least 4 levels are needed (the head reads 1/8 of the input), got {len(widths)}")
        self.widths = tuple(widths)
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)
        )
        self.down = nn.ModuleList()
        cin = widths[0]
        for cout in widths:
            self.down.append(
                nn.Sequential(
                    nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(True),
                    ResidualBlock(cout),
                )
            )
            cin = cout
        # Up level j goes from 1/2**(L-j) to 1/2**(L-j-1); skips are the encoder outputs of the same resolution
        # (the stem output at full resolution for the last one).
        self.up = nn.ModuleList()
        levels = len(widths)
        for j in range(levels):
            target = levels - 2 - j  # index of the encoder output at the new resolution (-1: the stem)
            cin = widths[-1] if j == 0 else 2 * widths[target + 1]
            cout = widths[max(target, 0)]
            self.up.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2.0, mode="nearest"),
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(True),
                    ResidualBlock(cout),
                )
            )
        self.out = nn.Sequential(nn.Conv2d(2 * widths[0], 3, 3, padding=1), nn.Tanh())
        self.saliency = SaliencyHead(widths[2], widths[1], widths[0])

    def forward(self, gray):
        skips = [self.stem(gray)]
        x = skips[0]
        for layer in self.down:
            x = layer(x)
            skips.append(x)  # skips[k] is at 1/2**k
        levels = len(self.widths)
        features = {}
        for j, layer in enumerate(self.up):
            y = layer(x)
            scale = levels - 1 - j  # y is at 1/2**scale
            features[scale] = y
            x = torch.cat([skips[scale], y], dim=1)
        rgb = self.out(x)
        return rgb, self.saliency(features[3], features[2], features[1])


def build_pix2pix_sal(num_downs: int = 8, ngf: int = 64) -> Pix2PixSal:
    return Pix2PixSal(num_downs=num_downs, ngf=ngf)


def build_uresnet_sal(widths: tuple[int, ...] = (64, 128, 256, 512, 512)) -> UResNetSal:
    return UResNetSal(widths=widths)


def load_weights(model: nn.Module, state_dict, released: bool = True) -> None:
    """Load weights in this project's layout (strict); no weights were ever released for these variants."""
    load_state_dict_strict(model, state_dict, f"{type(model).__name__} weights", fill_batchnorm_counters=True)


class Colorizer(nn.Module):
    """Contract wrapper: gray (N, 1, H, W) in [0, 1] -> (rgb (N, 3, H, W) [0, 1], saliency (N, 1, H, W) [0, 1])."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, gray: torch.Tensor):
        rgb, saliency = self.net(gray * 2.0 - 1.0)
        return (rgb + 1.0) * 0.5, saliency
