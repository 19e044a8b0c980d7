"""Functional metrics: one call on one batch, run by the evaluation engine on the registry's metric objects (the same
code as ``MetricSuite`` and the streaming objects of ``metrics.registry``).

Image-level metrics return a float64 tensor (N,) with one value per image, on the input's device; dataset-level
metrics return a float. Images: (N, 3, H, W) RGB, float in [0, 1] or uint8 in 0..255 (scaled by 1/255).
"""

from __future__ import annotations

import torch

from metrics.engine import PRED, prepare_batch
from metrics.image import AUC_MAX_THRESHOLD
from metrics.registry import create_metric

__all__ = ["psnr", "ssim", "ssim_scgan", "cci", "cf_abs", "delta_e00", "auc_ab", "cni", "lab_metrics"]
__all__ += ["psnr_salient", "psnr_background", "cci_salient", "cci_background", "bleeding"]
__all__ += ["cci_ratio", "delta_cf", "top1", "top5", "top1_agree", "fid_effl0"]


def _image_values(names: list[str], options: dict, pred, target=None, saliency=None) -> dict[str, torch.Tensor]:
    """Per-image values of metrics ``names`` on one batch (one engine pass): name -> float64 (N,) on pred's device."""
    metric_list = [create_metric(name, **options) for name in names]
    inputs = prepare_batch(metric_list, pred, target, saliency=saliency)
    device = inputs.sides[PRED].images.device
    return {m.info.name: torch.from_numpy(m.per_image(inputs)).to(device) for m in metric_list}


def psnr(pred, target, quantize: bool = True) -> torch.Tensor:
    """PSNR in dB over RGB on 0..255 values (float input rounded to 8 bits unless ``quantize=False``); (N,)."""
    return _image_values(["psnr"], {"quantize": quantize}, pred, target)["psnr"]


def ssim(pred, target, quantize: bool = True, precision: str = "float32", workers: int | None = None) -> torch.Tensor:
    """SSIM of Wang et al. (Gaussian 11x11, sigma 1.5, range 255) on 0..255 values; (N,)."""
    options = {"quantize": quantize, "precision": precision, "workers": workers}
    return _image_values(["ssim"], options, pred, target)["ssim"]


def ssim_scgan(pred, target) -> torch.Tensor:
    """SSIM as the SCGAN paper computed it (floats as given, uniform 7x7, data range 2); (N,)."""
    return _image_values(["ssim_scgan"], {}, pred, target)["ssim_scgan"]


def cci(pred, quantize: bool = True) -> torch.Tensor:
    """Colourfulness of Hasler and Suesstrunk (signed opponents) on 0..255 values; (N,)."""
    return _image_values(["cci"], {"quantize": quantize}, pred)["cci"]


def cf_abs(pred, quantize: bool = True) -> torch.Tensor:
    """Colourfulness with absolute opponents (the "CF" of DDColor, CT2, ColorFormer); (N,)."""
    return _image_values(["cf_abs"], {"quantize": quantize}, pred)["cf_abs"]


def delta_e00(pred, target) -> torch.Tensor:
    """Mean CIEDE2000 colour difference per image (Lab D65, float input as given); (N,)."""
    return _image_values(["delta_e00"], {}, pred, target)["delta_e00"]


def auc_ab(pred, target, max_threshold: float = AUC_MAX_THRESHOLD) -> torch.Tensor:
    """Raw-accuracy AuC of the ab error over [0, max_threshold] (Zhang et al. 2016); (N,)."""
    return _image_values(["auc_ab"], {"max_threshold": max_threshold}, pred, target)["auc_ab"]


def cni(pred) -> torch.Tensor:
    """Colour naturalness index of the SCGAN evaluation code (``metrics.naturalness``); (N,)."""
    return _image_values(["cni"], {}, pred)["cni"]


def lab_metrics(pred, target, max_threshold: float = AUC_MAX_THRESHOLD) -> dict[str, torch.Tensor]:
    """``{"delta_e00": ..., "auc_ab": ...}`` of the same image pairs from one Lab conversion per pair: float64 (N,)
    each, the values ``delta_e00`` and ``auc_ab`` return."""
    delta_e = create_metric("delta_e00")
    auc = create_metric("auc_ab", max_threshold=max_threshold)
    inputs = prepare_batch([delta_e, auc], pred, target)
    device = inputs.sides[PRED].images.device
    return {m.info.name: torch.from_numpy(m.per_image(inputs)).to(device) for m in (delta_e, auc)}


def psnr_salient(pred, target, saliency, threshold: float = 0.5) -> torch.Tensor:
    """PSNR over the salient pixels (saliency (N, 1, H, W) >= threshold); NaN where there are none; (N,)."""
    return _image_values(["psnr_salient"], {"threshold": threshold}, pred, target, saliency)["psnr_salient"]


def psnr_background(pred, target, saliency, threshold: float = 0.5) -> torch.Tensor:
    """PSNR over the non-salient pixels; NaN where there are none; (N,)."""
    return _image_values(["psnr_background"], {"threshold": threshold}, pred, target, saliency)["psnr_background"]


def cci_salient(pred, saliency, threshold: float = 0.5) -> torch.Tensor:
    """Signed CCI over the salient pixels of ``pred``; NaN where there are none; (N,)."""
    return _image_values(["cci_salient"], {"threshold": threshold}, pred, saliency=saliency)["cci_salient"]


def cci_background(pred, saliency, threshold: float = 0.5) -> torch.Tensor:
    """Signed CCI over the non-salient pixels of ``pred``; NaN where there are none; (N,)."""
    return _image_values(["cci_background"], {"threshold": threshold}, pred, saliency=saliency)["cci_background"]


def bleeding(pred, target, saliency, threshold: float = 0.5, band_px: int = 5) -> torch.Tensor:
    """Mean Lab ab error within ``band_px`` pixels of the salient object's boundary; NaN without a boundary; (N,)."""
    options = {"threshold": threshold, "band_px": band_px}
    return _image_values(["bleeding"], options, pred, target, saliency)["bleeding"]


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
