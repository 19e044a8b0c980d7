"""Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016 (the `eccv16` model of richzhang/colorization).

Network (parameter names as in the authors' PyTorch release ``colorization_release_v2-9b330a0b.pth``): eight
``nn.Sequential`` blocks ``model1`` .. ``model8`` of 3x3 convs with ReLU, each of blocks 1-7 ending in BatchNorm
(indices: conv at even positions, BN last); strides 2 at the end of blocks 1-3 (1/8 resolution), dilation 2 in
blocks 5 and 6; ``model8`` = transposed conv 4x4 stride 2 (to 1/4) + two 3x3 convs + a 1x1 conv to the 313 ab bins
(index 6). ``model_out`` (1x1 conv 313 -> 2, no bias) holds the bin centres divided by 110, so that
``softmax(logits) -> model_out`` is the mean of the predicted ab distribution; bilinear x4 upsampling to the input
size; ``ab = 110 * out``. Input: L* normalised as ``(L - 50) / 100``.

Annealed mean (paper section 3.3): ``H(Z) = E[f_T(Z)]`` with ``f_T(z) = exp(log z / T) / sum(...)`` and T = 0.38,
i.e. a softmax of ``logits / T``. The Caffe deploy model applies it as a Scale layer (2.606 = 1/0.38) before the
softmax; the PyTorch release has no such layer, so its ``model8.6`` logits carry the factor already. Therefore
``annealing_temperature`` is 1.0 after loading released weights and 0.38 for networks built (and trained) here, where
the logits are the plain class scores the cross-entropy loss trains.

The 313 bin centres ("pts_in_hull"): the ab grid with step 10 restricted to the in-gamut points; see ``ab_bins``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._common import gray01_to_lab_l, lab_to_rgb01, load_state_dict_strict

NAME = "zhang-eccv16"
PAPER = "Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016"
INPUT_SIZE = 256
SIZE_MULTIPLE = 8
TEMPERATURE = 0.38
L_CENTER, L_NORM, AB_NORM = 50.0, 100.0, 110.0

# The in-gamut ab bins, grid step 10, as (a, b_min, b_max): for each a, the b values b_min, b_min+10, ..., b_max are
# bins. This is the content of the authors' `resources/pts_in_hull.npy` (313 points, a-major order, b ascending), as
# tabulated in public re-implementations; it cannot be re-derived exactly offline: the bins an 8-bit sRGB colour
# quantises to (nearest grid point) number 261, the grid points inside the convex hull of the sRGB ab gamut 233. The
# authors' set is wider (it covers the gamut at every L, with margin), which is why it is written down here as data.
_AB_BIN_ROWS = (
    (-90, 50, 90),
    (-80, 20, 90),
    (-70, 0, 90),
    (-60, -20, 90),
    (-50, -30, 100),
    (-40, -40, 100),
    (-30, -50, 100),
    (-20, -50, 100),
    (-10, -60, 100),
    (0, -70, 100),
    (10, -80, 90),
    (20, -80, 90),
    (30, -90, 90),
    (40, -100, 90),
    (50, -100, 80),
    (60, -110, 80),
    (70, -110, 80),
    (80, -110, 70),
    (90, -110, 70),
    (100, -90, 0),
)


def ab_bins() -> np.ndarray:
    """The Q = 313 ab bin centres, float64 (313, 2) as (a, b), in the authors' order (a-major, b ascending)."""
    points = [(a, b) for a, b_min, b_max in _AB_BIN_ROWS for b in range(b_min, b_max + 1, 10)]
    return np.asarray(points, dtype=np.float64)


NUM_BINS = 313


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=True)


def _block(channels: list[int], last_stride: int = 1, dilation: int = 1, norm: bool = True) -> nn.Sequential:
    """Convs with ReLU after each (conv at even indices), the last conv strided, then BatchNorm (authors' order)."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        stride = last_stride if i == len(channels) - 2 else 1
        layers += [_conv(cin, cout, stride=stride, dilation=dilation), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCVGenerator(nn.Module):
    """The ECCV 2016 network. ``forward(L)``: L* (N, 1, H, W) in [0, 100] -> a*b* (N, 2, H, W) (H, W multiples of 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _block([1, 64, 64], last_stride=2)
        self.model2 = _block([64, 128, 128], last_stride=2)
        self.model3 = _block([128, 256, 256, 256], last_stride=2)
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1, bias=True),
            nn.ReLU(True),
            _conv(256, 256),
            nn.ReLU(True),
            _conv(256, 256),
            nn.ReLU(True),
            nn.Conv2d(256, NUM_BINS, kernel_size=1, bias=True),
        )
        self.model_out = nn.Conv2d(NUM_BINS, 2, kernel_size=1, bias=False)
        # The decoding weights are the bin centres, not learned (ab / 110 so that the final x110 restores ab units).
        with torch.no_grad():
            centres = torch.from_numpy(ab_bins() / AB_NORM).float()
            self.model_out.weight.copy_(centres.t().reshape(2, NUM_BINS, 1, 1))
        self.model_out.weight.requires_grad_(False)
        self.annealing_temperature = TEMPERATURE

    def logits(self, lightness: torch.Tensor) -> torch.Tensor:
        """Class scores over the 313 bins at 1/4 resolution: (N, 313, H/4, W/4) (what the training loss sees)."""
        x = (lightness - L_CENTER) / L_NORM
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7):
            x = block(x)
        return self.model8(x)

    def decode(self, logits: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """Annealed mean of the bin distribution -> a*b* (N, 2, H, W), bilinear upsampling to ``output_size``."""
        probabilities = torch.softmax(logits / self.annealing_temperature, dim=1)
        ab = self.model_out(probabilities)
        ab = nn.functional.interpolate(ab, size=output_size, mode="bilinear", align_corners=False)
        return ab * AB_NORM

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.decode(self.logits(lightness), tuple(lightness.shape[-2:]))


def build() -> ECCVGenerator:
    return ECCVGenerator()


def load_weights(model: ECCVGenerator, state_dict, released: bool = True) -> None:
    """Load weights in the authors' key layout (the same names as this module; strict).

    ``released=True``: the authors' PyTorch release, whose logits include the 1/T annealing factor (module docstring),
    so the temperature becomes 1. ``released=False``: weights trained with this project (plain logits, T = 0.38).
    """
    load_state_dict_strict(model, state_dict, what=f"{NAME} weights")
    model.annealing_temperature = 1.0 if released else TEMPERATURE


class Colorizer(nn.Module):
    """Contract wrapper: gray (N, 1, H, W) BT.601 in [0, 1] -> sRGB (N, 3, H, W) in [0, 1] (Lab L of the gray + ab)."""

    def __init__(self, net: ECCVGenerator) -> None:
        super().__init__()
        self.net = net

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        lightness = gray01_to_lab_l(gray)
        return lab_to_rgb01(lightness, self.net(lightness))
