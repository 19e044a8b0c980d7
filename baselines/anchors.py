"""The anchors of a leaderboard: `gt` (the ground truth itself, the upper bound), `gray` (no colour at all, the lower
bound) and `tint` (the gray plus one constant colour: what a metric gives for colour without any understanding of the
photo). They see the RGB ground truth, unlike the models, which see only its gray."""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from metrics.color import gray_to_rgb, lab_to_rgb, rgb_to_gray, rgb_to_lab

#: Mean CIELAB (a*, b*) (D65) of the training photos `imagenet-train-sample` + `bsds-trainval` of ../shared/data
#: (1274 colour photos), computed by ``mean_training_chroma([imagenet-train-sample, bsds-trainval])`` (each photo
#: squashed to 256x256 as the trainer sees it, its pixels' mean a*, b*, then the mean over photos).
TRAINING_MEAN_CHROMA = (0.7682, 8.9449)


def _check_rgb(images: torch.Tensor, who: str) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{who}: expected RGB images (N, 3, H, W) float in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"{who}: expected float images in [0, 1], got {images.dtype}")


class GroundTruthAnchor:
    """`gt`: returns the ground truth unchanged (PSNR inf, SSIM 1 against itself)."""

    name = "gt"
    input_size = None
    sha256 = None

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """images: (N, 3, H, W) sRGB float in [0, 1] -> the same values (a copy)."""
        _check_rgb(images, self.name)
        return images.clone()


class GrayAnchor:
    """`gray`: returns the BT.601 gray of the ground truth repeated over RGB (colourfulness 0)."""

    name = "gray"
    input_size = None
    sha256 = None

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """images: (N, 3, H, W) sRGB float in [0, 1] -> (N, 3, H, W) with R = G = B = 0.299 R + 0.587 G + 0.114 B."""
        _check_rgb(images, self.name)
        return gray_to_rgb(rgb_to_gray(images)).clamp(0.0, 1.0)


def mean_training_chroma(sources: Iterable[str | os.PathLike], policy: str = "squash256",
                         progress: bool = False) -> tuple[float, float, int]:
    """``(mean a*, mean b*, photos)`` of the colour photos in ``sources`` (folders or list files, as ``scgan train
    --data`` takes them): each photo resized by the training ``policy``, converted to CIELAB (D65, metrics.color), its
    mean a* and b* over pixels; then the plain mean over photos. Gray photos are left out, as the trainer leaves them
    out (``scgan.data.is_gray``). An empty set is an InputError naming the sources."""
    from tqdm import tqdm

    from scgan.data import is_gray, list_images, load_image, resize_image, to_tensor
    from scgan.errors import InputError

    sources = [str(source) for source in sources]
    entries = [entry for source in sources for entry in list_images(source)]
    sums = torch.zeros(2, dtype=torch.float64)
    photos = 0
    for entry in tqdm(entries, desc="mean chroma", unit="img", disable=not progress):
        image = load_image(entry.path)
        if is_gray(image):
            continue
        lab = rgb_to_lab(to_tensor(resize_image(image, policy)).unsqueeze(0).double())
        sums += lab[0, 1:].mean(dim=(1, 2))
        photos += 1
    if photos == 0:
        raise InputError(f"{', '.join(sources)}: no colour photo to average")
    a, b = (sums / photos).tolist()
    return a, b, photos


class TintAnchor:
    """`tint`: the BT.601 gray of the ground truth with one constant chroma (a*, b*) for every pixel of every photo,
    by default the training photos' mean (``TRAINING_MEAN_CHROMA``): a colorizer that has learnt only the average
    colour. L* is the gray's, so under a luminance-keeping protocol it differs from `gray` only by the tint."""

    name = "tint"
    input_size = None
    sha256 = None

    def __init__(self, chroma: tuple[float, float] = TRAINING_MEAN_CHROMA) -> None:
        a, b = (float(value) for value in chroma)
        if not all(abs(value) < 128 for value in (a, b)):  # also refuses nan
            raise ValueError(f"tint: chroma must be two finite CIELAB values in (-128, 128), got {chroma}")
        self.chroma = (a, b)

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """images: (N, 3, H, W) sRGB float in [0, 1] -> (N, 3, H, W): L* of their gray, a*, b* = ``self.chroma``."""
        _check_rgb(images, self.name)
        lightness = rgb_to_lab(gray_to_rgb(rgb_to_gray(images.to(torch.float32))))[:, :1]
        chroma = torch.tensor(self.chroma, dtype=lightness.dtype, device=lightness.device).view(1, 2, 1, 1)
        lab = torch.cat((lightness, chroma.expand(lightness.shape[0], -1, *lightness.shape[2:])), 1)
        return lab_to_rgb(lab).clamp(0.0, 1.0)
