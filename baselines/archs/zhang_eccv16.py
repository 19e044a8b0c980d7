"""Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016 (the `eccv16` model of richzhang/colorization).

Network (parameter names as in the authors' PyTorch release ``colorization_release_v2-9b330a0b.pth``): eight
``nn.Sequential`` blocks ``model1`` .. ``model8`` of 3x3 convs with ReLU, each of blocks 1-7 ending in BatchNorm
(indices: conv at even positions, BN last); strides 2 at the end of blocks 1-3 (1/8 resolution), dilation 2 in
blocks 5 and 6; ``model8`` = transposed conv 4x4 stride 2 (to 1/4) + two 3x3 convs + a 1x1 conv to the 313 ab bins
(index 6). ``model_out`` (1x1 conv 313 -> 2, no bias; its weights are part of the released file, and built here
they are the bin centres / 110) turns the bin distribution into its mean; bilinear x4 upsampling to the input size;
``ab = 110 * out``. Input: L* normalised as ``(L - 50) / 100``.

Decoding (paper section 3.3, eq. 5): the annealed mean ``H(Z) = sum_q f_T(Z)_q c_q`` with
``f_T(z) = exp(log z / T) / sum_q exp(log z_q / T)`` and T = 0.38. With ``z = softmax(s)`` of the class scores ``s``,
``f_T(z) = softmax(s / T)``, so decoding is ``softmax(s / T)`` followed by ``model_out``.

What the two releases do (facts from the authors' code):

- Caffe (``colorization_deploy_v2.prototxt``): ``conv8_313`` -> ``conv8_313_rh``, a Scale layer filled with 2.606
  (1 / 2.606 = 0.384: the paper's T = 0.38) -> Softmax -> ``class8_ab`` (1x1 conv 313 -> 2, weights set to
  ``pts_in_hull`` by the demo). ``colorization_train_val_v2.prototxt`` puts the softmax cross-entropy on
  ``conv8_313`` itself (through a rebalancing layer that scales gradients only): those are the plain class scores.
- PyTorch (``colorizers/eccv16.py``, weights ``colorization_release_v2-9b330a0b.pth``): ``softmax(model8(x))`` ->
  ``model_out`` (1x1 conv 313 -> 2, no bias, its weights in the file) -> bilinear x4 -> x110. There is no scale layer
  and no temperature anywhere in the code. Whether the Caffe-to-PyTorch conversion folded the 2.606 into
  ``model8.6`` is not documented (the question, richzhang/colorization issue #93, is unanswered), so the release's
  forward is the annealed mean with T = 0.38 if it was folded, the plain mean (T = 1) if not.

What this project does: the divisor of the class scores is ``annealing_temperature``. For a network built or trained
here (plain class scores, as the cross-entropy loss trains them) it is 0.38: the paper's decoding. After loading the
released PyTorch weights it is 1.0, i.e. exactly the authors' released PyTorch inference, whatever the conversion
did. The build option ``temperature`` (``scgan export --baseline zhang-eccv16 --option temperature=0.38``) fixes it
for any weights: with the release, 0.38 applies the paper's T to the release's scores (right if the conversion did
not fold the 2.606 in, doubly annealed if it did).

The 313 bin centres ("pts_in_hull"): the ab grid with step 10 restricted to the in-gamut points; see ``ab_bins``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from scgan.state_dict import load_state_dict_strict

from ._common import LabColorizer

NAME = "zhang-eccv16"
PAPER = "Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016"
INPUT_SIZE = 256
SIZE_MULTIPLE = 8
TEMPERATURE = 0.38  # the paper's annealed-mean temperature
RELEASED_FORWARD_TEMPERATURE = 1.0  # the released PyTorch forward: softmax of model8's output as it is
L_CENTER, L_NORM, AB_NORM = 50.0, 100.0, 110.0

# The in-gamut ab bins, grid step 10, as (a, b_min, b_max): for each a, the b values b_min, b_min+10, ..., b_max are
# bins. This is the content of the authors' `resources/pts_in_hull.npy` (313 points, a-major order, b ascending), as
# tabulated in public re-implementations (cross-checked row by row against an independent tabulation); it cannot
# be re-derived exactly offline (the tests check the properties it must have): the bins an 8-bit sRGB colour
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
    """The ECCV 2016 network. ``forward(L)``: L* (N, 1, H, W) in [0, 100] -> a*b* (N, 2, H, W) (H, W multiples of 8).

    ``temperature``: the decoding temperature, fixed whatever weights are loaded; None (default) leaves the choice to
    ``load_weights`` (0.38 for weights trained here, 1.0 for the authors' release; module docstring). ``width``: see
    :func:`build`.
    """

    def __init__(self, temperature: float | None = None, width: float = 1.0) -> None:
        super().__init__()
        if temperature is not None and not float(temperature) > 0:
            raise ValueError(f"{NAME}: temperature must be positive, got {temperature}")
        if not 0 < float(width) <= 1:
            raise ValueError(f"{NAME}: width must be in (0, 1], got {width}")

        def c(channels: int) -> int:  # the paper's widths (64 ... 512) times ``width``, at least 8
            return max(8, int(round(channels * float(width))))

        self.model1 = _block([1, c(64), c(64)], last_stride=2)
        self.model2 = _block([c(64), c(128), c(128)], last_stride=2)
        self.model3 = _block([c(128), c(256), c(256), c(256)], last_stride=2)
        self.model4 = _block([c(256), c(512), c(512), c(512)])
        self.model5 = _block([c(512), c(512), c(512), c(512)], dilation=2)
        self.model6 = _block([c(512), c(512), c(512), c(512)], dilation=2)
        self.model7 = _block([c(512), c(512), c(512), c(512)])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(c(512), c(256), kernel_size=4, stride=2, padding=1, bias=True),
            nn.ReLU(True),
            _conv(c(256), c(256)),
            nn.ReLU(True),
            _conv(c(256), c(256)),
            nn.ReLU(True),
            nn.Conv2d(c(256), NUM_BINS, kernel_size=1, bias=True),
        )
        self.model_out = nn.Conv2d(NUM_BINS, 2, kernel_size=1, bias=False)
        # The decoding weights are the bin centres, not learned (ab / 110 so that the final x110 restores ab units).
        with torch.no_grad():
            centres = torch.from_numpy(ab_bins() / AB_NORM).float()
            self.model_out.weight.copy_(centres.t().reshape(2, NUM_BINS, 1, 1))
        self.model_out.weight.requires_grad_(False)
        self.fixed_temperature = None if temperature is None else float(temperature)
        self.annealing_temperature = TEMPERATURE if temperature is None else float(temperature)

    def logits(self, lightness: torch.Tensor) -> torch.Tensor:
        """Class scores over the 313 bins at 1/4 resolution: (N, 313, H/4, W/4) (what the training loss sees)."""
        x = (lightness - L_CENTER) / L_NORM
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7):
            x = block(x)
        return self.model8(x)

    def decode(self, logits: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """Class scores (N, 313, h, w) -> annealed mean ``model_out(softmax(logits / T))`` -> a*b* (N, 2, H, W),
        bilinearly upsampled to ``output_size``."""
        probabilities = torch.softmax(logits / self.annealing_temperature, dim=1)
        ab = self.model_out(probabilities)
        ab = nn.functional.interpolate(ab, size=output_size, mode="bilinear", align_corners=False)
        return ab * AB_NORM

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.decode(self.logits(lightness), tuple(lightness.shape[-2:]))


def build(temperature: float | None = None, width: float = 1.0) -> ECCVGenerator:
    """``width`` < 1 scales every feature width (not the paper's; the released weights need 1): the shipped
    ``zhang-eccv16:mini`` uses 0.25 (2 M parameters instead of 32 M) to fit the package's 12 MiB per file."""
    return ECCVGenerator(temperature=temperature, width=width)


def load_weights(model: ECCVGenerator, state_dict, released: bool = True) -> None:
    """Load weights in the authors' key layout (the same names as this module, ``model_out.weight`` included; strict).

    Unless the model was built with a fixed ``temperature``: ``released=True`` (the authors' PyTorch release) sets
    T = 1.0, which reproduces their released inference exactly; ``released=False`` (trained with this project, plain
    class scores) sets the paper's T = 0.38. See the module docstring for why.
    """
    load_state_dict_strict(model, state_dict, f"{NAME} weights", fill_batchnorm_counters=True)
    if model.fixed_temperature is None:
        model.annealing_temperature = RELEASED_FORWARD_TEMPERATURE if released else TEMPERATURE


class Colorizer(LabColorizer):
    """Contract wrapper: gray (N, 1, H, W) BT.601 in [0, 1] -> sRGB (N, 3, H, W) in [0, 1] (Lab L of the gray + ab)."""
