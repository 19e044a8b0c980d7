"""Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017 (pix2pix):
the U-Net generator and the PatchGAN discriminator of junyanz/pytorch-CycleGAN-and-pix2pix.

Generator ``UnetGenerator`` (``--netG unet_256``: 8 downsamplings, ngf 64, BatchNorm), built recursively from
``UnetSkipConnectionBlock``s exactly as the authors do, so that their saved state dicts load with identical keys:
the outermost block is ``model.model``: [0 downconv, 1 submodule, 2 ReLU, 3 upconv (with bias), 4 Tanh]; a middle
block's ``model`` is [0 LeakyReLU(0.2), 1 downconv, 2 BN, 3 submodule, 4 ReLU, 5 upconv, 6 BN(, 7 Dropout(0.5))];
the innermost is [0 LeakyReLU, 1 downconv, 2 ReLU, 3 upconv, 4 BN]. Down convs 4x4 stride 2 padding 1, up convs
transposed 4x4 stride 2 padding 1; with BatchNorm the inner convs have no bias. Keys therefore nest as
``model.model.1.model.3.model.3...``. Dropout layers carry no parameters (keys are the same with or without).

This project's colorization setting: input gray ``2 y - 1`` (1 channel), output RGB through tanh, ``(x + 1) / 2``
(the same normalisation as SCGAN); ``input_nc`` / ``output_nc`` are parameters so the authors' other released
generators (3 -> 3 channels) load too. No colorization weights were released for pix2pix: trained here.
Inference runs in eval mode (BatchNorm running statistics, no dropout); the authors' test script keeps train mode
unless ``--eval`` is given.
"""

from __future__ import annotations

import torch
from torch import nn

from scgan.state_dict import load_state_dict_strict

NAME = "pix2pix"
PAPER = "Isola, Zhu, Zhou, Efros. Image-to-Image Translation with Conditional Adversarial Networks. CVPR 2017"
INPUT_SIZE = 256
NUM_DOWNS = 8


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> cat([x, up(sub(down(x)))])`` (outermost: no concatenation)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        # BatchNorm has its own shift, so the authors drop the conv biases (use_bias = norm is InstanceNorm).
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, nn.ReLU(True), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True), upconv, nn.BatchNorm2d(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.BatchNorm2d(inner_nc), submodule]
            layers += [nn.ReLU(True), upconv, nn.BatchNorm2d(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(nn.Module):
    """The authors' U-Net. ``forward(x)``: (N, input_nc, H, W) in [-1, 1] -> (N, output_nc, H, W) tanh in [-1, 1];
    H and W multiples of ``2 ** num_downs`` (256 for unet_256)."""

    def __init__(
        self, input_nc: int = 1, output_nc: int = 3, num_downs: int = NUM_DOWNS, ngf: int = 64, use_dropout: bool = True
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5 (the authors' structure), got {num_downs}")
        self.num_downs = num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The authors' PatchGAN (``--netD basic``, 70x70 receptive field for n_layers=3), keys ``model.<i>``.

    ``forward(x)``: (N, input_nc, H, W) -> (N, 1, h, w) patch logits (30x30 at 256). For pix2pix the input is the
    condition concatenated with the real or generated image (1 + 3 = 4 channels here).
    """

    def __init__(self, input_nc: int = 4, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            previous, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * previous, ndf * mult, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        previous, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * previous, ndf * mult, 4, 1, 1, bias=False),
            nn.BatchNorm2d(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, 1, 1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def build(num_downs: int = NUM_DOWNS, ngf: int = 64) -> UnetGenerator:
    return UnetGenerator(input_nc=1, output_nc=3, num_downs=num_downs, ngf=ngf)


def load_weights(model: UnetGenerator, state_dict, released: bool = True) -> None:
    """Load a state dict in the authors' nested key layout (``model.model.1.model.1.weight`` ...; strict)."""
    load_state_dict_strict(model, state_dict, f"{NAME} weights", fill_batchnorm_counters=True)


class Colorizer(nn.Module):
    """Contract wrapper: gray (N, 1, H, W) in [0, 1] -> sRGB (N, 3, H, W) in [0, 1] (the net works in [-1, 1])."""

    def __init__(self, net: UnetGenerator) -> None:
        super().__init__()
        self.net = net

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        return (self.net(gray * 2.0 - 1.0) + 1.0) * 0.5
