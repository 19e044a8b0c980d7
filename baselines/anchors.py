"""The two anchors of every leaderboard: `gt` (the ground truth itself, the upper bound) and `gray` (no colour at all,
the lower bound). They see the RGB ground truth, unlike the models, which see only its gray."""

from __future__ import annotations

import torch

from metrics.color import gray_to_rgb, rgb_to_gray


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
