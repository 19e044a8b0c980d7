"""The colorize pipeline: one path from input images to colorized images, shared by every entry point.

``scgan colorize``, the baselines runner and the leaderboard all call :func:`colorize` (or :func:`colorize_images`
for images of different sizes) with a :class:`Colorizer`; only the colorizer differs (an SCGAN generator here, an ONNX
session in ``baselines``).

Steps (images are float ``(N, 3 or 1, H, W)`` sRGB in ``[0, 1]``):

1. gray: colour inputs are converted to ITU-R BT.601 luma (``metrics.color.rgb_to_gray``); 1-channel inputs are
   taken as that luma already.
2. resize to the colorizer's ``input_size`` (square; the aspect ratio is not kept, as in the paper's ``squash256``):
   bilinear with half-pixel centres, antialiased when shrinking (``torch.nn.functional.interpolate(...,
   mode="bilinear", align_corners=False, antialias=True)``). Not resized when the image already has that size or the
   colorizer takes any size (``input_size=None``).
3. the colorizer: ``colorize_at_size(gray01 (N, 1, S, S)) -> rgb01 (N, 3, S, S)``.
4. output at the input's size:
   - ``raw=True``: the network's RGB, resized back (same resampling as step 2). This is what the paper evaluates
     (at 256 x 256 inputs there is no resize at all).
   - ``raw=False`` (default, for user photos): CIE L*a*b* recombination: the predicted a*, b* (from the colorizer's
     RGB at S x S) are resized to H x W and put together with the full-resolution L* of the input, then converted back
     to sRGB (out-of-gamut colours clipped per channel, as ``skimage.color.lab2rgb``). The output's L* equals the
     input's wherever the result is in gamut; fine detail comes from the input, colour from the network.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from scgan.errors import InputError

__all__ = [
    "Colorizer",
    "ScganColorizer",
    "BN_MODES",
    "to_gray",
    "resize_images",
    "recombine_lab",
    "colorize",
    "colorize_images",
    "colorize_with_saliency",
]

BN_MODES = ("eval", "train")

# Float images may overshoot [0, 1] by float rounding before it is an error.
_RANGE_SLACK = 1e-4

#: How far a model's RGB output may leave [0, 1] (half a level of an 8-bit image) before it is an error of the model:
#: values outside are never clamped silently (the leaderboard checks every method's output against it too).
OUTPUT_RANGE_TOLERANCE = 0.5 / 255


@runtime_checkable
class Colorizer(Protocol):
    """What the pipeline needs from a colorization model.

    ``name``: shown in reports. ``input_size``: the square size the model runs at (``None``: any size, no resize).
    ``colorize_at_size(gray01)``: gray ``(N, 1, S, S)`` float32 BT.601 luma in ``[0, 1]`` -> RGB ``(N, 3, S, S)``
    float32 in ``[0, 1]``. Optional, for :func:`colorize_with_saliency`: ``predict(gray01) -> (rgb01, saliency01 (N, 1,
    S, S) in [0, 1] or None)`` (``ScganColorizer`` and the baselines' ONNX colorizer have it).
    """

    name: str
    input_size: int | None

    def colorize_at_size(self, gray01: torch.Tensor) -> torch.Tensor: ...


class ScganColorizer:
    """An SCGAN generator behind the :class:`Colorizer` protocol.

    Handles the model's normalisation (``[0, 1]`` <-> ``[-1, 1]``), runs without gradients in eval mode (BatchNorm
    running statistics) or, with ``bn_mode="train"``, with the released code's train-mode BatchNorm (batch
    statistics; results depend on the batch, the released validation used batch size 1; running statistics are not
    changed). Inputs are moved to the generator's device and results returned on the input's device.
    """

    def __init__(self, generator, *, name: str | None = None, bn_mode: str = "eval", sha256: str | None = None):
        if bn_mode not in BN_MODES:
            raise InputError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
        self.generator = generator.eval()
        self.config = generator.config
        self.name = name or self.config.name
        self.input_size: int | None = self.config.image_size
        self.bn_mode = bn_mode
        self.sha256 = sha256
        self.device = next(generator.parameters()).device

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", *, bn_mode: str = "eval", name=None
    ) -> ScganColorizer:
        """Load a checkpoint (strict, ``scgan.checkpoint.load_generator``); ``sha256`` is that of the file."""
        from scgan.checkpoint import file_sha256, load_generator

        generator, _ = load_generator(path, device)
        return cls(generator, name=name or Path(path).stem, bn_mode=bn_mode, sha256=file_sha256(path))

    def predict(self, gray01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """gray ``(N, 1, S, S)`` in ``[0, 1]`` -> (rgb ``(N, 3, S, S)`` in ``[0, 1]``, saliency ``(N, 1, S, S)`` in
        ``[0, 1]`` or ``None`` without a saliency branch)."""
        from scgan.model import batchnorm_batch_statistics

        _check_images(gray01, "gray01", channels=(1,))
        size = self.input_size
        if tuple(gray01.shape[2:]) != (size, size):
            raise InputError(f"gray01: {self.name} runs at {size}x{size}, got {tuple(gray01.shape[2:])}")
        x = gray01.to(self.device, torch.float32) * 2.0 - 1.0
        self.generator.eval()
        with torch.no_grad():
            if self.bn_mode == "train":
                with batchnorm_batch_statistics(self.generator):
                    rgb, saliency = self.generator(x)
            else:
                rgb, saliency = self.generator(x)
        rgb = ((rgb + 1.0) * 0.5).clamp(0.0, 1.0).to(gray01.device)
        if saliency is not None:
            saliency = saliency.to(gray01.device)
        return rgb, saliency

    def colorize_at_size(self, gray01: torch.Tensor) -> torch.Tensor:
        return self.predict(gray01)[0]


# ---------------------------------------------------------------------------------------------------------- steps
def _check_images(images, what: str, channels=(1, 3)) -> None:
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{what}: expected a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] not in channels:
        want = " or ".join(str(c) for c in channels)
        raise InputError(f"{what}: expected (N, {want}, H, W) RGB/gray in [0, 1], got shape {tuple(images.shape)}")
    if images.numel() == 0:
        raise InputError(f"{what}: empty batch or image, shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise InputError(f"{what}: expected float in [0, 1], got dtype {images.dtype} (divide uint8 by 255)")
    low, high = float(images.min()), float(images.max())
    if not (low >= -_RANGE_SLACK and high <= 1 + _RANGE_SLACK):  # also false for NaN
        raise InputError(f"{what}: values must be in [0, 1], got [{low:.4g}, {high:.4g}]")


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` sRGB -> ``(N, 1, H, W)`` BT.601 luma; ``(N, 1, H, W)`` is returned as is (float32)."""
    from metrics.color import rgb_to_gray

    images = images.to(torch.float32)
    return images if images.shape[1] == 1 else rgb_to_gray(images)


def resize_images(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize with half-pixel centres, antialiased when shrinking; a no-op at the same size."""
    if tuple(images.shape[2:]) == (height, width):
        return images
    shrink = height < images.shape[2] or width < images.shape[3]
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)


def recombine_lab(images: torch.Tensor, rgb_small: torch.Tensor) -> torch.Tensor:
    """Put the chroma of ``rgb_small`` onto the luminance of ``images``.

    images: ``(N, 3 or 1, H, W)`` sRGB/gray in ``[0, 1]`` (full resolution); rgb_small: ``(N, 3, S, S)`` in
    ``[0, 1]``. Returns ``(N, 3, H, W)`` sRGB in ``[0, 1]``: L* of ``images``, a*/b* of ``rgb_small`` resized.
    """
    from metrics.color import gray_to_rgb, lab_to_rgb, rgb_to_lab

    images = images.to(torch.float32)
    full = images if images.shape[1] == 3 else gray_to_rgb(images)
    lightness = rgb_to_lab(full)[:, :1]
    chroma = rgb_to_lab(rgb_small.to(device=images.device, dtype=torch.float32))[:, 1:]
    chroma = resize_images(chroma, images.shape[2], images.shape[3])
    return lab_to_rgb(torch.cat((lightness, chroma), 1)).clamp(0.0, 1.0)


def _model_inputs(colorizer: Colorizer, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each image ``(C, H, W)`` -> gray at the colorizer's size, stacked ``(N, 1, S, S)``."""
    grays = [to_gray(img.unsqueeze(0)) for img in images]
    size = colorizer.input_size
    if size is None:
        shapes = {tuple(g.shape[2:]) for g in grays}
        if len(shapes) > 1:
            raise InputError(
                f"{colorizer.name} runs at the input size; a batch must have one size, got {sorted(shapes)}"
            )
        return torch.cat(grays, 0)
    return torch.cat([resize_images(g, size, size) for g in grays], 0).clamp(0.0, 1.0)


def _finish(image: torch.Tensor, rgb_small: torch.Tensor, raw: bool) -> torch.Tensor:
    """One image's output at its own size: raw RGB resized back, or the Lab recombination."""
    height, width = image.shape[1:]
    if raw:
        return resize_images(rgb_small.unsqueeze(0), height, width).clamp(0.0, 1.0)[0]
    return recombine_lab(image.unsqueeze(0), rgb_small.unsqueeze(0))[0]


def check_rgb_values(values, who: str, where: str = "") -> None:
    """A model's RGB output (tensor or array) must be float values in [0, 1], up to ``OUTPUT_RANGE_TOLERANCE``:
    anything else is an ``InputError`` (``"<who> returned ...<where>"``), never clamped into a plausible image."""
    import numpy as np

    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{who} returned dtype {values.dtype}, expected float values in [0, 1]{where}")
    if not np.isfinite(array).all():
        raise InputError(f"{who} returned NaN or infinite values{where}")
    low, high = float(array.min()), float(array.max())
    if low < -OUTPUT_RANGE_TOLERANCE or high > 1.0 + OUTPUT_RANGE_TOLERANCE:
        raise InputError(f"{who} returned values in [{low:.4g}, {high:.4g}]{where}, outside [0, 1]: not an sRGB "
                         "image in [0, 1] (values are not clamped)")


def _run(colorizer: Colorizer, images: Sequence[torch.Tensor], raw: bool, with_saliency: bool):
    for i, img in enumerate(images):
        _check_images(img.unsqueeze(0) if isinstance(img, torch.Tensor) else img, f"images[{i}]")
    gray = _model_inputs(colorizer, images)
    saliency = None
    if with_saliency:
        if not hasattr(colorizer, "predict"):
            raise InputError(f"{colorizer.name} predicts no saliency map")
        rgb_small, saliency = colorizer.predict(gray)
    else:
        rgb_small = colorizer.colorize_at_size(gray)
    expected = (gray.shape[0], 3, *gray.shape[2:])
    if not isinstance(rgb_small, torch.Tensor) or tuple(rgb_small.shape) != expected:
        shape = tuple(rgb_small.shape) if isinstance(rgb_small, torch.Tensor) else type(rgb_small).__name__
        raise InputError(f"{colorizer.name}: colorize_at_size returned {shape}, expected {expected}")
    check_rgb_values(rgb_small, f"{colorizer.name}: the model")
    rgb_small = rgb_small.to(device=images[0].device, dtype=torch.float32)
    outputs = [_finish(img, rgb_small[i], raw) for i, img in enumerate(images)]
    saliency_maps = None
    if saliency is not None:
        saliency_maps = [
            resize_images(saliency[i : i + 1].to(img.device), *img.shape[1:])[0].clamp(0.0, 1.0)
            for i, img in enumerate(images)
        ]
    return outputs, saliency_maps


# ------------------------------------------------------------------------------------------------------ entry points
def colorize(colorizer: Colorizer, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
    """Colorize a batch: images ``(N, 3 or 1, H, W)`` float sRGB/gray in ``[0, 1]`` -> ``(N, 3, H, W)`` sRGB in
    ``[0, 1]`` (float32). ``raw=True``: the network's RGB resized back; default: Lab recombination (module doc)."""
    _check_images(images, "images")
    outputs, _ = _run(colorizer, list(images), raw, with_saliency=False)
    return torch.stack(outputs, 0)


def colorize_images(colorizer: Colorizer, images: Sequence[torch.Tensor], raw: bool = False) -> list[torch.Tensor]:
    """Like :func:`colorize` for images of different sizes: a list of ``(3 or 1, H_i, W_i)`` -> list of
    ``(3, H_i, W_i)``; the model still runs them as one batch (all resized to its input size)."""
    if len(images) == 0:
        return []
    return _run(colorizer, list(images), raw, with_saliency=False)[0]


def colorize_with_saliency(
    colorizer: ScganColorizer, images: Sequence[torch.Tensor] | torch.Tensor, raw: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """:func:`colorize_images` plus the predicted saliency maps ``(1, H_i, W_i)`` in ``[0, 1]`` (resized to each
    input's size), or ``None`` when the model has no saliency branch."""
    if isinstance(images, torch.Tensor):
        _check_images(images, "images")
    if len(images) == 0:
        return [], None
    return _run(colorizer, list(images), raw, with_saliency=True)
