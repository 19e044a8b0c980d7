"""CNI, the colour naturalness index of the SCGAN paper's released evaluation code (Zhao et al., TCSVT 2020;
``evaluation/indexes_CCI.py``, ``SingleImageCNI`` of zhaoyuzhi/Semantic-Colorization-GAN), vectorised over pixels.

Per pixel, on 8-bit RGB scaled by 1/255 in float64: HSL (hue in degrees [0, 360), lightness ``(max + min) / 2``,
saturation ``(max - min) / (1 - |2 L - 1|)``). Pixels with S > 0.1 and 0.2 < L < 0.8 are sorted by hue into skin
(25..70 degrees), grass (95..135) and sky (185..260), bounds inclusive. Each class's mean saturation ``s`` is scored by
the Gaussian ``exp(-((s - mu) / sigma)^2 / 2)`` of that class; the image's CNI is the mean of the three scores weighted
by the classes' pixel counts (0 when no pixel falls in any class). Higher is more natural, 1 at most.
"""

from __future__ import annotations

import math

import torch

__all__ = ["CNI_CLASSES", "cni"]

# (name, lowest hue, highest hue, mean saturation mu, sigma) of each class, as in the released code.
CNI_CLASSES = (
    ("skin", 25.0, 70.0, 0.76, 0.52),
    ("grass", 95.0, 135.0, 0.81, 0.53),
    ("sky", 185.0, 260.0, 0.43, 0.22),
)
MIN_SATURATION = 0.1
LIGHTNESS_RANGE = (0.2, 0.8)  # exclusive bounds


def _hue_saturation_lightness(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 (3, P) RGB in [0, 1] -> hue (degrees), saturation, lightness (P,) each, with the reference's branch
    order (max equal to R first, then G, then B) and its ``% 360``."""
    r, g, b = rgb.unbind(0)
    c_max = torch.maximum(torch.maximum(r, g), b)
    c_min = torch.minimum(torch.minimum(r, g), b)
    spread = c_max - c_min
    gray = spread == 0
    safe = torch.where(gray, torch.ones_like(spread), spread)  # the gray pixels' hue and saturation are 0
    hue = torch.where(c_max == r, 60.0 * ((g - b) / safe) + 360.0,
                      torch.where(c_max == g, 60.0 * ((b - r) / safe) + 120.0, 60.0 * ((r - g) / safe) + 240.0))
    # x % 360 for x in [60, 420] (the three branches' ranges): exact, as x - 360 is for x in [360, 720].
    hue = torch.where(hue >= 360.0, hue - 360.0, hue)
    hue = torch.where(gray, torch.zeros_like(hue), hue)
    lightness = (c_max + c_min) / 2.0
    saturation = torch.where(gray, torch.zeros_like(spread), safe / (1.0 - (2.0 * lightness - 1.0).abs()))
    return hue, saturation, lightness


def _one_image(image_u8: torch.Tensor) -> float:
    rgb = image_u8.reshape(3, -1).to(torch.float64) / 255.0
    hue, saturation, lightness = _hue_saturation_lightness(rgb)
    kept = (saturation > MIN_SATURATION) & (lightness > LIGHTNESS_RANGE[0]) & (lightness < LIGHTNESS_RANGE[1])
    weighted, total = 0.0, 0
    for _, low, high, mu, sigma in CNI_CLASSES:
        member = kept & (hue >= low) & (hue <= high)
        count = int(member.sum())
        mean = float(saturation[member].sum()) / count if count else 0.0
        weighted += count * math.exp(-0.5 * ((mean - mu) / sigma) ** 2)
        total += count
    return weighted / total if total else 0.0


def cni(images_u8: torch.Tensor) -> torch.Tensor:
    """CNI per image of uint8 RGB images (N, 3, H, W); float64 (N,) on the input's device."""
    with torch.no_grad():
        values = [_one_image(images_u8[i]) for i in range(images_u8.shape[0])]
    return torch.tensor(values, dtype=torch.float64, device=images_u8.device)
