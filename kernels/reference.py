"""Pure-PyTorch versions of every kernel op: the test oracle, the benchmark baseline and the CPU fallback.

Each function computes in PyTorch's promoted dtype of its inputs and is differentiable to any order through autograd.
Images: (N,C,H,W) (C=3 RGB in SCGAN, any C accepted), saliency (N,1,H,W) broadcast over the channels; the ops are
value-agnostic (SCGAN feeds tanh RGB in [-1,1] and sigmoid saliency in [0,1]).
"""

from __future__ import annotations

import torch

from kernels.shapes import check_attention_inputs, check_gradient, check_image_and_saliency, per_sample_eps

__all__ = ["attention_l1", "weighted_image", "interpolate", "gradient_penalty"]


def weighted_image(rgb: torch.Tensor, sal: torch.Tensor) -> torch.Tensor:
    """Saliency-weighted image ``rgb * sal``: rgb (N,C,H,W), sal (N,1,H,W) broadcast over C -> (N,C,H,W)."""
    check_image_and_saliency(rgb, sal, "rgb", "sal")
    return rgb * sal


def attention_l1(
    rgb_pred: torch.Tensor, sal_pred: torch.Tensor, rgb_true: torch.Tensor, sal_true: torch.Tensor
) -> torch.Tensor:
    """SCGAN's attention loss ``mean |rgb_pred * sal_pred - rgb_true * sal_true|`` (0-d tensor).

    rgb_* (N,C,H,W), sal_* (N,1,H,W) broadcast over C; the mean runs over all N*C*H*W elements.
    """
    check_attention_inputs(rgb_pred, sal_pred, rgb_true, sal_true)
    return (rgb_pred * sal_pred - rgb_true * sal_true).abs().mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP interpolation ``eps * real + (1 - eps) * fake`` with one ``eps`` per sample.

    real, fake (N, ...) of equal shape; eps (N,) or (N,1,...,1). Returns (N, ...).
    """
    eps = per_sample_eps(eps, real, fake)
    eps = eps.reshape((real.shape[0],) + (1,) * (real.dim() - 1))
    return eps * real + (1 - eps) * fake


def gradient_penalty(grad: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty ``mean_n (||grad_n||_2 - 1)^2`` over samples n of ``grad`` (N, ...) of any shape (0-d tensor).

    The norm runs over every element of a sample. At ``grad_n = 0`` the derivative of the norm is taken as 0
    (PyTorch's subgradient).
    """
    check_gradient(grad)
    norms = torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1), ord=2, dim=1)
    return (norms - 1).square().mean()
