"""Input checks and conversions shared by every metric (one place, so every metric states its contract the same way).

Image contract (docs/metrics.md, input contract): ``(N, 3, H, W)`` RGB tensors, float in ``[0, 1]`` or uint8 in
``0..255`` (scaled by 1/255). NumPy arrays in the same layout are accepted and converted.
"""

from __future__ import annotations

import numpy as np
import torch

# Float images may overshoot [0, 1] by this much (float32 rounding of a model output) before it is an error; such
# values are clamped to the range.
RANGE_SLACK = 1e-6


def as_image_tensor(images, what: str = "images") -> torch.Tensor:
    """Check ``images`` against the image contract and return it as a tensor (uint8 or float, unchanged values).

    Raises TypeError / ValueError naming ``what`` and the offending image index.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{what}: expected 4 dimensions (N, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] != 3:
        raise ValueError(
            f"{what}: expected 3 RGB channels in dimension 1 of (N, 3, H, W), got shape {tuple(images.shape)}"
        )
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{what}: empty batch or image, shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise TypeError(f"{what}: expected float in [0, 1] or uint8 in 0..255, got dtype {images.dtype}")
    flat = images.detach().reshape(images.shape[0], -1)
    # The minimum and maximum propagate NaN, and an infinite value is one of them (two fast reductions; measured 15x
    # faster than an isfinite pass plus both, and than torch.aminmax along a dimension).
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    finite = torch.isfinite(low) & torch.isfinite(high)
    if not bool(finite.all()):
        bad = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(f"{what}: image {bad} contains NaN or infinite values")
    outside = (low < -RANGE_SLACK) | (high > 1.0 + RANGE_SLACK)
    if bool(outside.any()):
        bad = int(torch.nonzero(outside)[0, 0])
        raise ValueError(
            f"{what}: values must lie in [0, 1] (float) or 0..255 (uint8); image {bad} spans "
            f"[{float(low[bad]):.6g}, {float(high[bad]):.6g}]"
        )
    return images


def check_pair(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Check both images and that their shapes agree; returns them as tensors on pred's device."""
    pred = as_image_tensor(pred, "pred")
    target = as_image_tensor(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: pred {tuple(pred.shape)} vs target {tuple(target.shape)} "
            "(resize both to one policy first)"
        )
    return pred, target.to(pred.device)


def to_unit_float(images: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Checked image tensor -> float in [0, 1] of ``dtype`` (uint8 / 255; floats clamped by the range slack)."""
    if images.dtype == torch.uint8:
        return images.to(dtype) / 255.0
    return images.to(dtype).clamp(0.0, 1.0)


def to_8bit_values(images: torch.Tensor, quantize: bool = True, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Checked image tensor -> values on the 0..255 scale of ``dtype``.

    uint8 input is used exactly. Float input is mapped by ``x * 255`` (computed in float64) and, with ``quantize=True``
    (the default of every 0..255 metric), rounded to the nearest integer: the metric then sees the image
    exactly as it would be saved to an 8-bit file (rounding half up, ``floor(x * 255 + 0.5)``, as
    ``scgan.data.to_uint8`` and ``save_image`` do), and a float image that came from uint8 (``u / 255``, float32 or
    float64) gives bit-for-bit the value of the uint8 reference. ``quantize=False`` keeps the unrounded ``x * 255``.
    """
    if images.dtype == torch.uint8:
        return images.to(dtype)
    values = images.to(torch.float64).clamp(0.0, 1.0) * 255.0
    if quantize:
        values = torch.floor(values + 0.5)
    return values.to(dtype)


def check_labels(labels, count: int, what: str = "labels") -> torch.Tensor:
    """Labels -> int64 tensor (N,) of class indices 0..999; checks the count against the batch size."""
    if labels is None:
        raise ValueError(f"{what}: this metric needs class labels (pass labels=..., or --labels CSV)")
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1 or labels.shape[0] != count:
        raise ValueError(f"{what}: expected {count} labels (one per image), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"{what}: expected integer class indices, got dtype {labels.dtype}")
    labels = labels.to(torch.int64)
    if bool(((labels < 0) | (labels > 999)).any()):
        bad = int(torch.nonzero((labels < 0) | (labels > 999))[0, 0])
        raise ValueError(f"{what}: label of image {bad} is {int(labels[bad])}, expected 0..999")
    return labels
