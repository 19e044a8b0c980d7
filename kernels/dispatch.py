"""Choosing between the Triton kernels and ``kernels.reference`` per call, and the trainer's backend flag.

``auto`` (the default) takes the Triton path when :func:`kernels.runtime.triton_can_run` says the tensors allow it
(CUDA tensors with Triton installed, or CPU tensors under ``TRITON_INTERPRET=1``) and the reference otherwise.
``triton`` insists on the kernels and raises a clear error where they cannot run; ``reference`` never uses them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from kernels import reference
from kernels.runtime import HAS_TRITON, INTERPRET, TRITON_IMPORT_ERROR, triton_unavailable_reason

if HAS_TRITON:
    from kernels import attention as _attention
    from kernels import penalty as _penalty

BACKENDS = ("auto", "triton", "reference")


@dataclasses.dataclass(frozen=True)
class KernelOps:
    """The four ops of one backend. ``name`` is ``"auto"``, ``"triton"`` or ``"reference"``."""

    name: str
    attention_l1: Callable[..., torch.Tensor]
    weighted_image: Callable[..., torch.Tensor]
    interpolate: Callable[..., torch.Tensor]
    gradient_penalty: Callable[..., torch.Tensor]


def _tensors(*args) -> list[torch.Tensor]:
    return [a for a in args if isinstance(a, torch.Tensor)]


def _require_triton(op: str, *args) -> None:
    reason = triton_unavailable_reason(*_tensors(*args))
    if reason is not None:
        raise RuntimeError(f"kernels backend 'triton' cannot run {op}: {reason}")


# ----------------------------------------------------------------------------------------------- triton (strict)
def _triton_attention_l1(rgb_pred, sal_pred, rgb_true, sal_true):
    _require_triton("attention_l1", rgb_pred, sal_pred, rgb_true, sal_true)
    return _attention.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)


def _triton_weighted_image(rgb, sal):
    _require_triton("weighted_image", rgb, sal)
    return _attention.weighted_image(rgb, sal)


def _triton_interpolate(real, fake, eps):
    _require_triton("interpolate", real, fake, eps)
    return _penalty.interpolate(real, fake, eps)


def _triton_gradient_penalty(grad):
    _require_triton("gradient_penalty", grad)
    return _penalty.gradient_penalty(grad)


# ------------------------------------------------------------------------------------------------------- auto
def _use_triton(*args) -> bool:
    return triton_unavailable_reason(*_tensors(*args)) is None


def attention_l1(rgb_pred, sal_pred, rgb_true, sal_true):
    """``mean |rgb_pred * sal_pred - rgb_true * sal_true|`` (0-d): rgb_* (N,C,H,W), sal_* (N,1,H,W) broadcast over C.

    Gradients flow to the predictions (and to the targets if they require grad). Triton where it can run, else the
    reference.
    """
    if _use_triton(rgb_pred, sal_pred, rgb_true, sal_true):
        return _attention.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)
    return reference.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)


def weighted_image(rgb, sal):
    """``rgb * sal``: rgb (N,C,H,W), sal (N,1,H,W) -> (N,C,H,W), the attention discriminator's input."""
    if _use_triton(rgb, sal):
        return _attention.weighted_image(rgb, sal)
    return reference.weighted_image(rgb, sal)


def interpolate(real, fake, eps):
    """``eps * real + (1 - eps) * fake`` with eps (N,) or (N,1,...,1) per sample; real, fake (N, ...)."""
    if _use_triton(real, fake, eps):
        return _penalty.interpolate(real, fake, eps)
    return reference.interpolate(real, fake, eps)


def gradient_penalty(grad):
    """``mean_n (||grad_n||_2 - 1)^2`` of grad (N, ...) (0-d); differentiable again (double backward)."""
    if _use_triton(grad):
        return _penalty.gradient_penalty(grad)
    return reference.gradient_penalty(grad)


AUTO_OPS = KernelOps("auto", attention_l1, weighted_image, interpolate, gradient_penalty)
REFERENCE_OPS = KernelOps(
    "reference",
    reference.attention_l1,
    reference.weighted_image,
    reference.interpolate,
    reference.gradient_penalty,
)
TRITON_OPS = KernelOps(
    "triton", _triton_attention_l1, _triton_weighted_image, _triton_interpolate, _triton_gradient_penalty
)


def get_ops(backend: str = "auto") -> KernelOps:
    """The ops for the trainer's kernels flag: ``"auto"`` (Triton where it can run), ``"triton"``, ``"reference"``.

    ``"triton"`` fails here when Triton is missing or when there is neither a CUDA device nor the interpreter, and at
    call time on tensors the kernels cannot take (e.g. CPU tensors without ``TRITON_INTERPRET=1``).
    """
    if backend == "auto":
        return AUTO_OPS
    if backend == "reference":
        return REFERENCE_OPS
    if backend == "triton":
        if not HAS_TRITON:
            raise RuntimeError(
                f"kernels backend 'triton' needs triton, which is not importable ({TRITON_IMPORT_ERROR})"
            )
        if not INTERPRET and not torch.cuda.is_available():
            raise RuntimeError(
                "kernels backend 'triton' needs a CUDA device, or TRITON_INTERPRET=1 set before kernels is imported "
                "(the CPU interpreter, for tests)"
            )
        return TRITON_OPS
    raise ValueError(f"unknown kernels backend {backend!r}; choose one of {', '.join(BACKENDS)}")
