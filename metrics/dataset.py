"""Dataset-level metric formulas, computed from per-image values (the rows ``scgan eval`` writes).

Each function here is the single implementation used by both the streaming objects and ``metrics.functional``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

__all__ = [
    "CCI_BAND",
    "cci_in_band",
    "cci_ratio_from_values",
    "delta_cf_from_values",
    "mean_of_values",
    "topk_hits",
    "agreement_hits",
    "frechet_distance",
    "feature_statistics",
]

# The SCGAN paper's "reasonable colourfulness" band for the CCI ratio, bounds inclusive.
CCI_BAND = (16.0, 20.0)


def mean_of_values(values: np.ndarray, what: str = "metric") -> float:
    """Mean of per-image values (the dataset value of every image-level metric).

    A set containing ``inf`` (PSNR of an identical pair) has mean ``inf``, as numpy defines it; NaN never occurs
    (inputs with NaN are rejected). An empty set is an error.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"{what}: no images were given (update() was never called with a non-empty batch)")
    return float(np.mean(values))


def cci_in_band(cci_values: np.ndarray, band: tuple[float, float] = CCI_BAND) -> np.ndarray:
    """Per-image 0/1 (float64): 1 where ``band[0] <= cci <= band[1]`` (both bounds inclusive)."""
    cci_values = np.asarray(cci_values, dtype=np.float64)
    return ((cci_values >= band[0]) & (cci_values <= band[1])).astype(np.float64)


def cci_ratio_from_values(cci_values: np.ndarray, band: tuple[float, float] = CCI_BAND) -> float:
    """Fraction of images whose CCI lies in ``band`` (inclusive): the SCGAN paper's CCI ratio."""
    return mean_of_values(cci_in_band(cci_values, band), "cci_ratio")


def delta_cf_from_values(cf_pred: np.ndarray, cf_true: np.ndarray) -> float:
    """``|mean(cf(pred)) - mean(cf(gt))|`` over the same images (lower is better)."""
    cf_pred = np.asarray(cf_pred, dtype=np.float64)
    cf_true = np.asarray(cf_true, dtype=np.float64)
    if cf_pred.shape != cf_true.shape:
        raise ValueError(f"delta_cf: {cf_pred.size} predictions but {cf_true.size} ground-truth images")
    return abs(mean_of_values(cf_pred, "delta_cf") - mean_of_values(cf_true, "delta_cf"))


def _ranked(logits: torch.Tensor) -> torch.Tensor:
    # A stable descending sort: ties are broken by the lower class index, deterministically (torch.topk does not
    # promise an order among ties).
    return torch.sort(logits.to(torch.float32), dim=1, descending=True, stable=True).indices


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, k: int) -> np.ndarray:
    """Per-image 0/1 (float64): 1 where the label is among the ``k`` largest logits. logits (N, C), labels (N,)."""
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"top{k}: logits {tuple(logits.shape)} do not match {labels.shape[0]} labels")
    best = _ranked(logits)[:, :k]
    return (best == labels.to(best.device)[:, None]).any(dim=1).cpu().numpy().astype(np.float64)


def agreement_hits(logits_pred: torch.Tensor, logits_true: torch.Tensor) -> np.ndarray:
    """Per-image 0/1 (float64): 1 where the top-1 class on the colorization equals the one on the ground truth."""
    if logits_pred.shape != logits_true.shape:
        raise ValueError(f"top1_agree: logits shapes differ {tuple(logits_pred.shape)} vs {tuple(logits_true.shape)}")
    return (_ranked(logits_pred)[:, 0] == _ranked(logits_true)[:, 0]).cpu().numpy().astype(np.float64)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and sample covariance (D, D) (ddof 1, as FID uses) of features (N, D), in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"fid: need at least 2 feature vectors (N, D), got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False, ddof=1)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D):
    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b))``, with ``scipy.linalg.sqrtm`` and its (round-off) imaginary
    part discarded. When the product is singular enough that sqrtm is not finite (fewer images than dimensions),
    ``1e-6`` is added to both diagonals, as the reference FID code does.
    """
    mu_a, sigma_a = feature_statistics(features_a)
    mu_b, sigma_b = feature_statistics(features_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"fid: feature dimensions differ ({mu_a.shape[0]} vs {mu_b.shape[0]})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma_a.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))
