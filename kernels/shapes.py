"""Argument checks shared by the reference and the Triton ops: both paths reject the same inputs with the same text."""

from __future__ import annotations

import torch


def _is_float(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point()


def check_image_and_saliency(rgb: torch.Tensor, sal: torch.Tensor, rgb_name: str, sal_name: str) -> None:
    """``rgb`` (N,C,H,W) and ``sal`` (N,1,H,W) floating point tensors on one device."""
    for name, tensor in ((rgb_name, rgb), (sal_name, sal)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dim() != 4:
            raise ValueError(f"{name} must be 4-D (N,C,H,W), got shape {tuple(tensor.shape)}")
        if not _is_float(tensor):
            raise TypeError(f"{name} must be a floating point tensor, got {tensor.dtype}")
    if sal.shape[1] != 1:
        raise ValueError(f"{sal_name} must have one channel (N,1,H,W), got shape {tuple(sal.shape)}")
    n, _, h, w = rgb.shape
    if (sal.shape[0], sal.shape[2], sal.shape[3]) != (n, h, w):
        raise ValueError(
            f"{sal_name} shape {tuple(sal.shape)} does not match {rgb_name} shape {tuple(rgb.shape)} "
            f"(expected ({n}, 1, {h}, {w}))"
        )
    if rgb.device != sal.device:
        raise ValueError(f"{rgb_name} is on {rgb.device} but {sal_name} is on {sal.device}")
    if rgb.numel() == 0:
        raise ValueError(f"{rgb_name} is empty (shape {tuple(rgb.shape)})")


def check_attention_inputs(rgb_pred, sal_pred, rgb_true, sal_true) -> None:
    """Predictions and targets: rgb (N,C,H,W), saliency (N,1,H,W), the pairs of equal shape, one device."""
    check_image_and_saliency(rgb_pred, sal_pred, "rgb_pred", "sal_pred")
    check_image_and_saliency(rgb_true, sal_true, "rgb_true", "sal_true")
    if rgb_pred.shape != rgb_true.shape:
        raise ValueError(f"rgb_pred shape {tuple(rgb_pred.shape)} != rgb_true shape {tuple(rgb_true.shape)}")
    if rgb_pred.device != rgb_true.device:
        raise ValueError(f"rgb_pred is on {rgb_pred.device} but rgb_true is on {rgb_true.device}")


def per_sample_eps(eps: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Check ``real``/``fake`` (N, ...) and return ``eps`` as a flat (N,) tensor (accepts (N,) or (N,1,...,1))."""
    for name, tensor in (("real", real), ("fake", fake), ("eps", eps)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if not _is_float(tensor):
            raise TypeError(f"{name} must be a floating point tensor, got {tensor.dtype}")
    if real.shape != fake.shape:
        raise ValueError(f"real shape {tuple(real.shape)} != fake shape {tuple(fake.shape)}")
    if real.dim() < 1 or real.numel() == 0:
        raise ValueError(f"real and fake must be non-empty (N, ...) tensors, got shape {tuple(real.shape)}")
    n = real.shape[0]
    if eps.numel() != n or (eps.dim() > 1 and (eps.shape[0] != n or any(s != 1 for s in eps.shape[1:]))):
        raise ValueError(f"eps must hold one value per sample, shape ({n},) or ({n}, 1, ...), got {tuple(eps.shape)}")
    if not (real.device == fake.device == eps.device):
        raise ValueError(f"real ({real.device}), fake ({fake.device}) and eps ({eps.device}) must share a device")
    return eps.reshape(n)


def check_gradient(grad: torch.Tensor) -> None:
    """``grad`` (N, ...) floating point with at least one element per sample."""
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"grad must be a torch.Tensor, got {type(grad).__name__}")
    if not _is_float(grad):
        raise TypeError(f"grad must be a floating point tensor, got {grad.dtype}")
    if grad.dim() < 1 or grad.numel() == 0:
        raise ValueError(f"grad must be a non-empty (N, ...) tensor, got shape {tuple(grad.shape)}")
