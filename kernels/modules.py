"""``nn.Module`` wrappers of the kernel ops; each takes ``backend`` ("auto", "triton", "reference")."""

from __future__ import annotations

import torch
from torch import nn

from kernels.dispatch import get_ops


class _KernelModule(nn.Module):
    def __init__(self, backend: str = "auto") -> None:
        super().__init__()
        self.ops = get_ops(backend)

    def extra_repr(self) -> str:
        return f"backend={self.ops.name!r}"


class AttentionL1Loss(_KernelModule):
    """SCGAN's attention loss: ``mean |rgb_pred * sal_pred - rgb_true * sal_true|``.

    rgb_* (N,C,H,W), sal_* (N,1,H,W) broadcast over the channels; returns a 0-d tensor.
    """

    def forward(self, rgb_pred, sal_pred, rgb_true, sal_true) -> torch.Tensor:
        return self.ops.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)


class WeightedImage(_KernelModule):
    """``rgb * sal``: rgb (N,C,H,W), sal (N,1,H,W) -> (N,C,H,W) (the attention discriminator's input)."""

    def forward(self, rgb, sal) -> torch.Tensor:
        return self.ops.weighted_image(rgb, sal)


class Interpolate(_KernelModule):
    """WGAN-GP interpolation ``eps * real + (1 - eps) * fake``, eps (N,) or (N,1,...,1)."""

    def forward(self, real, fake, eps) -> torch.Tensor:
        return self.ops.interpolate(real, fake, eps)


class GradientPenalty(_KernelModule):
    """WGAN-GP penalty ``mean_n (||grad_n||_2 - 1)^2`` of grad (N, ...); differentiable again."""

    def forward(self, grad) -> torch.Tensor:
        return self.ops.gradient_penalty(grad)
