"""Classifier input preprocessing, in torch: resize the short side, centre crop, normalise.

Images: float (N, 3, H, W) RGB sRGB in [0, 1] of any size (uint8 tensors are accepted and scaled by 1/255).

Resize: bicubic with ``antialias=True``. PyTorch's anti-aliased bicubic uses the Keys kernel with a = -0.5 and widens
its support by the scale factor when shrinking, which is exactly Pillow's ``Image.BICUBIC`` resampling (the tool the
reference ImageNet pipelines use); the plain ``antialias=False`` path uses a = -0.75 and no widening, which differs
from Pillow by a few grey levels when upsampling and aliases when downsampling. The tests compare with Pillow. The
result is clamped to [0, 1] as Pillow's 8-bit output is (bicubic overshoots at edges); it is not quantised to 8 bits.

Sizes follow the torchvision convention: the long side becomes ``int(long * 256 / short)``; the centre crop starts at
``round((size - 224) / 2)``.

Normalisations (:data:`NORMALIZATIONS`):
- ``tf-lite``: ``(x*255 - 127) / 128`` (EfficientNet-Lite's training input; ImageNet mean/std costs it 5-11 points
  of top-1, see tests/test_classifier.py);
- ``imagenet``: ``(x - mean) / std`` with mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225) (torchvision models,
  VGG-16);
- ``unit``: the [0, 1] values unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("tf-lite", "imagenet", "unit")


def check_image_structure(images: torch.Tensor, name: str = "images") -> None:
    """Check type, rank, channels, emptiness and dtype (not the values) of an image batch; ValueError if wrong."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"{name}: expected shape (N, 3, H, W), got {tuple(images.shape)}")
    if images.shape[1] != 3:
        raise ValueError(f"{name}: expected 3 RGB channels in dim 1, got shape {tuple(images.shape)}")
    if images.numel() == 0:
        raise ValueError(f"{name}: empty batch, shape {tuple(images.shape)}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"{name}: expected float in [0, 1] or uint8, got dtype {images.dtype}")


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Validate an image batch and return it as floating point in [0, 1].

    Accepts float (N, 3, H, W) RGB in [0, 1] (float16/32/64 keep their dtype) or uint8 (scaled by 1/255 to float32).
    Raises ValueError naming what is wrong: not a tensor, wrong rank or channel count, empty, NaN/inf, out of range.
    """
    check_image_structure(images, name)
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    values = images.detach()  # checks need no gradient (and must not warn when the caller differentiates)
    if not torch.isfinite(values).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    lo, hi = float(values.min()), float(values.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name}: values must be in [0, 1], got min {lo:.4g}, max {hi:.4g}")
    return images


def resize_short_side(images: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Bicubic (Pillow-like, anti-aliased) resize so the short side is ``size``; aspect ratio kept.

    (N, 3, H, W) float [0, 1] -> (N, 3, H', W') float [0, 1] with min(H', W') == size; returned unchanged when the
    short side already is ``size``.
    """
    h, w = images.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    if short == size:
        return images
    new_long = int(long * size / short)
    new_h, new_w = (size, new_long) if h <= w else (new_long, size)
    compute_dtype = images.dtype if images.dtype in (torch.float32, torch.float64) else torch.float32
    out = F.interpolate(images.to(compute_dtype), size=(new_h, new_w), mode="bicubic", align_corners=False,
                        antialias=True)
    return out.clamp(0.0, 1.0).to(images.dtype)


def center_crop(images: torch.Tensor, size: int = 224) -> torch.Tensor:
    """Centre crop to (size, size). Raises ValueError when the image is smaller than ``size``."""
    h, w = images.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"center_crop: image {h}x{w} is smaller than the crop {size}x{size}")
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return images[..., top:top + size, left:left + size]


def normalize(images01: torch.Tensor, normalization: str) -> torch.Tensor:
    """Map [0, 1] RGB to the network's input range; ``normalization`` is one of :data:`NORMALIZATIONS`."""
    if normalization == "tf-lite":
        return (images01 * 255.0 - 127.0) / 128.0
    if normalization == "imagenet":
        mean = torch.tensor(IMAGENET_MEAN, dtype=images01.dtype, device=images01.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=images01.dtype, device=images01.device).view(1, 3, 1, 1)
        return (images01 - mean) / std
    if normalization == "unit":
        return images01
    raise ValueError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")


@dataclass(frozen=True)
class Preprocessing:
    """Short side to ``resize`` (bicubic, anti-aliased; None: keep the size), centre crop ``crop``, normalization."""

    resize: int | None = 256
    crop: int = 224
    normalization: str = "tf-lite"

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
        if self.resize is not None and self.resize < self.crop:
            raise ValueError(f"resize ({self.resize}) must be at least the crop size ({self.crop})")

    def __call__(self, images01: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB [0, 1] (float or uint8) -> (N, 3, crop, crop) normalised float."""
        x = check_images(images01)
        if self.resize is not None:
            x = resize_short_side(x, self.resize)
        return normalize(center_crop(x, self.crop), self.normalization)


#: EfficientNet-Lite0: short side 256, centre 224, (x*255 - 127) / 128.
EFFICIENTNET_LITE0_PREPROCESSING = Preprocessing(256, 224, "tf-lite")
#: torchvision ImageNet models (VGG-16): short side 256, centre 224, ImageNet mean/std.
IMAGENET_PREPROCESSING = Preprocessing(256, 224, "imagenet")


def efficientnet_lite0_preprocess(images01: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite0 input: (N, 3, H, W) RGB [0, 1] of any size -> (N, 3, 224, 224) ``(x*255 - 127) / 128``.

    Short side to 256 (bicubic, anti-aliased like Pillow), centre crop 224. Differentiable in the images.
    """
    return EFFICIENTNET_LITE0_PREPROCESSING(images01)


def efficientnet_lite0_normalize(images01: torch.Tensor) -> torch.Tensor:
    """Only the value mapping ``(x*255 - 127) / 128`` of RGB [0, 1] (no resize/crop), e.g. for perceptual losses on
    training crops."""
    return normalize(images01, "tf-lite")
