"""Fused Triton kernels for SCGAN training, with a pure-PyTorch reference for every op (docs/kernels.md).

Public ops (Triton where it can run, ``kernels.reference`` otherwise; see ``kernels.dispatch``):

- ``attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)``: ``mean |rgb_pred*sal_pred - rgb_true*sal_true|``
- ``weighted_image(rgb, sal)``: ``rgb * sal``, saliency (N,1,H,W) broadcast over (N,C,H,W)
- ``interpolate(real, fake, eps)``: ``eps*real + (1-eps)*fake``, eps per sample
- ``gradient_penalty(grad)``: ``mean_n (||grad_n||_2 - 1)^2``, differentiable again

``get_ops("auto"|"triton"|"reference")`` returns the four ops of one backend (the trainer's flag).
Import this package after ``TRITON_INTERPRET`` is settled (``kernels.runtime``).
"""

from __future__ import annotations

from kernels import reference
from kernels.dispatch import (
    BACKENDS,
    KernelOps,
    attention_l1,
    get_ops,
    gradient_penalty,
    interpolate,
    weighted_image,
)
from kernels.modules import AttentionL1Loss, GradientPenalty, Interpolate, WeightedImage
from kernels.runtime import HAS_TRITON, INTERPRET, poisoned_outputs, triton_can_run

__all__ = [
    "BACKENDS",
    "HAS_TRITON",
    "INTERPRET",
    "AttentionL1Loss",
    "GradientPenalty",
    "Interpolate",
    "KernelOps",
    "WeightedImage",
    "attention_l1",
    "get_ops",
    "gradient_penalty",
    "interpolate",
    "poisoned_outputs",
    "reference",
    "triton_can_run",
    "weighted_image",
]
