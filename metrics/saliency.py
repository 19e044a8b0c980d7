"""Saliency-aware per-image metrics: PSNR and colourfulness inside vs outside the salient object, and colour bleeding
across its boundary (``docs/leaderboard.md``). Registered as ``psnr_salient``, ``psnr_background``, ``cci_salient``,
``cci_background`` and ``bleeding`` (``metrics.registry``); the engine gives them the 8-bit images, the masks and the
float32 Lab images.

Masks: ``salient = saliency >= threshold`` (N, 1, H, W) bool; an empty region gives NaN (no value to report).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["boundary_band", "masked_psnr", "masked_cci", "bleeding"]


def boundary_band(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Pixels within ``k`` pixels (Chebyshev distance, a (2k+1)x(2k+1) square) of the mask's boundary.

    mask: bool (N, 1, H, W). Returns bool (N, 1, H, W): ``dilate(mask, k) AND NOT erode(mask, k)``.
    """
    m = mask.to(torch.float32)
    dilated = F.max_pool2d(F.pad(m, (k, k, k, k), value=0.0), 2 * k + 1, stride=1)
    # Erosion with the outside treated as salient, so the image border itself is not a boundary.
    eroded = -F.max_pool2d(F.pad(-m, (k, k, k, k), value=-1.0), 2 * k + 1, stride=1)
    return (dilated > 0.5) & ~(eroded > 0.5)


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR (dB, range 255) of 0..255 values (N, 3, H, W) over the pixels where ``mask`` (N, 1, H, W) bool is set;
    NaN for an empty mask. Float64 (N,)."""
    diff = pred.to(torch.float64) - target.to(torch.float64)
    weight = mask.to(torch.float64)
    count = weight.sum(dim=(1, 2, 3)) * 3.0
    sse = (diff.square() * weight).sum(dim=(1, 2, 3))
    mse = sse / count
    out = 10.0 * torch.log10((255.0**2) / mse)
    return torch.where(count > 0, out, torch.full_like(out, math.nan))


def masked_cci(pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hasler-Suesstrunk colourfulness (signed rg/yb, population std) of 0..255 values over the masked pixels; NaN for
    an empty mask. Float64 (N,)."""
    rgb = pred.to(torch.float64)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    weight = mask[:, 0].to(torch.float64)
    count = weight.sum(dim=(1, 2))
    safe = torch.clamp(count, min=1.0)
    mean_rg = (rg * weight).sum(dim=(1, 2)) / safe
    mean_yb = (yb * weight).sum(dim=(1, 2)) / safe
    var_rg = ((rg - mean_rg[:, None, None]).square() * weight).sum(dim=(1, 2)) / safe
    var_yb = ((yb - mean_yb[:, None, None]).square() * weight).sum(dim=(1, 2)) / safe
    out = torch.sqrt(var_rg + var_yb) + 0.3 * torch.sqrt(mean_rg.square() + mean_yb.square())
    return torch.where(count > 0, out, torch.full_like(out, math.nan))


def bleeding(lab_pred: torch.Tensor, lab_target: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Mean ab error (L2 of CIE Lab a, b) over the boundary band (N, 1, H, W) bool; NaN for an empty band.
    lab_pred, lab_target: float CIE Lab (N, 3, H, W). Float64 (N,)."""
    ab_error = torch.sqrt((lab_pred[:, 1:] - lab_target[:, 1:]).to(torch.float64).square().sum(dim=1, keepdim=True))
    band_w = band.to(torch.float64)
    band_count = band_w.sum(dim=(1, 2, 3))
    value = (ab_error * band_w).sum(dim=(1, 2, 3)) / torch.clamp(band_count, min=1.0)
    return torch.where(band_count > 0, value, torch.full_like(value, math.nan))
