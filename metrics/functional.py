"""Functional metrics: one call on one batch, the same code as the streaming objects of ``metrics.registry``.

Image-level metrics return a float64 tensor (N,) with one value per image; dataset-level metrics return a float.
Images: (N, 3, H, W) RGB, float in [0, 1] or uint8 in 0..255 (scaled by 1/255).
"""

from __future__ import annotations

from metrics.image import auc_ab, cci, cf_abs, delta_e00, lab_metrics, psnr, ssim, ssim_scgan
from metrics.registry import create_metric

__all__ = ["psnr", "ssim", "ssim_scgan", "cci", "cf_abs", "delta_e00", "auc_ab", "lab_metrics"]
__all__ += ["cci_ratio", "delta_cf", "top1", "top5", "top1_agree", "fid_effl0"]


def _dataset_value(name: str, options: dict, pred, target=None, labels=None) -> float:
    """The dataset value of metric ``name`` on one batch: a fresh streaming object, one update, compute."""
    metric = create_metric(name, **options)
    metric.update(pred, target, labels)
    return metric.compute()


def cci_ratio(pred, **options) -> float:
    """Fraction of ``pred`` images (N, 3, H, W) whose CCI lies in [16, 20] (inclusive)."""
    return _dataset_value("cci_ratio", options, pred)


def delta_cf(pred, target, **options) -> float:
    """``|mean cf_abs(pred) - mean cf_abs(target)|`` (``variant="signed"`` uses ``cci``)."""
    return _dataset_value("delta_cf", options, pred, target)


def top1(pred, labels, **options) -> float:
    """Top-1 accuracy of the classifier (option ``classifier=``: object or spec, default EfficientNet-Lite0)."""
    return _dataset_value("top1", options, pred, labels=labels)


def top5(pred, labels, **options) -> float:
    """Top-5 accuracy of the classifier (option ``classifier=``)."""
    return _dataset_value("top5", options, pred, labels=labels)


def top1_agree(pred, target, **options) -> float:
    """Fraction of images with the same top-1 class on ``pred`` and on ``target`` (option ``classifier=``)."""
    return _dataset_value("top1_agree", options, pred, target)


def fid_effl0(pred, target, **options) -> float:
    """Frechet distance of EfficientNet-Lite0 pooled features of ``pred`` vs ``target`` (not standard FID)."""
    return _dataset_value("fid_effl0", options, pred, target)
