"""Zhang, Zhu, Isola, Geng, Lin, Yu, Efros, "Real-Time User-Guided Image Colorization with Learned Deep Priors",
SIGGRAPH 2017 (the `siggraph17` model of richzhang/colorization), in automatic mode (no user hints).

Network (parameter names as in the authors' PyTorch release ``siggraph17-df00044c.pth``): input = concatenation of
``(L - 50) / 100``, the hint ``ab / 110`` and the hint mask (4 channels); in automatic mode the hint ab and the mask are
zero. ``model1``..``model7`` as in ECCV 2016 but stride 1 everywhere (the subsampling is ``x[:, :, ::2, ::2]`` between
blocks 1-2, 2-3, 3-4; indices: conv at even positions, BatchNorm last); a U-Net-like decoder with additive shortcuts:
``model8up`` (transposed conv 512->256) + ``model3short8`` (3x3 conv on conv3_3), ``model8`` = [ReLU, conv, ReLU,
conv, ReLU, BN]; ``model9up`` + ``model2short9``, ``model9`` = [ReLU, conv, ReLU, BN]; ``model10up`` +
``model1short10``, ``model10`` = [ReLU, conv, LeakyReLU(0.2)]; ``model_out`` = [1x1 conv 128->2, tanh];
``ab = 110 * out``. ``model_class`` (1x1 conv 256 -> 529, the classification head used in training) is part of the
released weights and kept so they load strictly; it does not affect the colorization.
"""

from __future__ import annotations

import torch
from torch import nn

from scgan.state_dict import load_state_dict_strict

from ._common import LabColorizer

NAME = "zhang-siggraph17"
PAPER = (
    "Zhang, Zhu, Isola, Geng, Lin, Yu, Efros. Real-Time User-Guided Image Colorization with Learned Deep Priors. "
    "SIGGRAPH 2017"
)
INPUT_SIZE = 256
SIZE_MULTIPLE = 8
L_CENTER, L_NORM, AB_NORM = 50.0, 100.0, 110.0
NUM_CLASSES = 529


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=dilation, dilation=dilation, bias=True)


def _block(channels: list[int], dilation: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        layers += [_conv(cin, cout, dilation), nn.ReLU(True)]
    layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=True))


class SIGGRAPHGenerator(nn.Module):
    """The SIGGRAPH 2017 network.

    ``forward(L, hint_ab=None, hint_mask=None)``: L* (N, 1, H, W) in [0, 100] -> a*b* (N, 2, H, W); H, W multiples
    of 8; hint ab (N, 2, H, W) in ab units and mask (N, 1, H, W) default to zero (automatic mode).
    """

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _block([4, 64, 64])
        self.model2 = _block([64, 128, 128])
        self.model3 = _block([128, 256, 256, 256])
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.model8up = _up(512, 256)
        self.model3short8 = nn.Sequential(_conv(256, 256))
        self.model8 = nn.Sequential(
            nn.ReLU(True), _conv(256, 256), nn.ReLU(True), _conv(256, 256), nn.ReLU(True), nn.BatchNorm2d(256)
        )
        self.model9up = _up(256, 128)
        self.model2short9 = nn.Sequential(_conv(128, 128))
        self.model9 = nn.Sequential(nn.ReLU(True), _conv(128, 128), nn.ReLU(True), nn.BatchNorm2d(128))
        self.model10up = _up(128, 128)
        self.model1short10 = nn.Sequential(_conv(64, 128))
        self.model10 = nn.Sequential(nn.ReLU(True), _conv(128, 128), nn.LeakyReLU(negative_slope=0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, NUM_CLASSES, kernel_size=1, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, kernel_size=1, bias=True), nn.Tanh())

    def features(self, lightness, hint_ab=None, hint_mask=None):
        """(conv8_3 at 1/4 resolution, final normalised ab in [-1, 1]) for the colorization and the class head."""
        if hint_ab is None:
            hint_ab = torch.zeros_like(lightness).expand(-1, 2, -1, -1)
        if hint_mask is None:
            hint_mask = torch.zeros_like(lightness)
        x = torch.cat([(lightness - L_CENTER) / L_NORM, hint_ab / AB_NORM, hint_mask], dim=1)
        conv1_2 = self.model1(x)
        conv2_2 = self.model2(conv1_2[:, :, ::2, ::2])
        conv3_3 = self.model3(conv2_2[:, :, ::2, ::2])
        conv4_3 = self.model4(conv3_3[:, :, ::2, ::2])
        conv7_3 = self.model7(self.model6(self.model5(conv4_3)))
        conv8_3 = self.model8(self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv9_3 = self.model9(self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv10_2 = self.model10(self.model10up(conv9_3) + self.model1short10(conv1_2))
        return conv8_3, self.model_out(conv10_2)

    def forward(self, lightness, hint_ab=None, hint_mask=None):
        return self.features(lightness, hint_ab, hint_mask)[1] * AB_NORM


def build() -> SIGGRAPHGenerator:
    return SIGGRAPHGenerator()


def load_weights(model: SIGGRAPHGenerator, state_dict, released: bool = True) -> None:
    """Load weights in the authors' key layout (identical names; strict). ``released`` makes no difference here."""
    load_state_dict_strict(model, state_dict, f"{NAME} weights", fill_batchnorm_counters=True)


class Colorizer(LabColorizer):
    """Contract wrapper: gray (N, 1, H, W) in [0, 1] -> sRGB (N, 3, H, W) in [0, 1]; automatic mode (no hints)."""
