"""SCGAN training losses (docs/training.md): reconstruction, attention, WGAN-GP and LSGAN adversarial terms.

Tensors here follow the trainer's normalisation: images ``(N, 3, H, W)`` RGB in ``[-1, 1]``, gray ``(N, 1, H, W)`` in
``[-1, 1]``, saliency ``(N, 1, H, W)`` in ``[0, 1]``. The element-wise hot spots (the saliency-weighted image, the
attention L1, the WGAN-GP interpolation and penalty) go through the ``kernels`` ops (fused Triton kernels on CUDA,
their pure-PyTorch reference elsewhere), picked once by :func:`kernel_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from scgan.errors import InputError
from scgan.training.config import GAN_CHOICES, GP_REDUCTION_CHOICES, KERNEL_CHOICES, RECONSTRUCTION_CHOICES

__all__ = [
    "GAN_CHOICES", "KERNEL_CHOICES", "RECONSTRUCTION_CHOICES", "AdversarialLoss", "attention_loss", "gradient_penalty",
    "kernel_ops", "lsgan_critic_loss", "lsgan_generator_loss", "reconstruction_loss", "wgan_critic_loss",
    "wgan_generator_loss",
]  # fmt: skip


def kernel_ops(choice: str = "auto", device: torch.device | str = "cpu") -> Any:
    """The four element-wise ops (``attention_l1``, ``weighted_image``, ``interpolate``, ``gradient_penalty``).

    ``"reference"``: ``kernels.reference`` (pure PyTorch); ``"triton"``: the fused Triton kernels (on a CUDA device; on
    CPU only under ``TRITON_INTERPRET=1``, i.e. in tests); ``"auto"``: Triton when training on a CUDA device, the
    reference otherwise (the CPU interpreter is a test tool, far too slow to train with).
    Returns ``kernels.KernelOps`` (the four functions and ``name``: ``"triton"`` or ``"reference"``).
    """
    import kernels

    if choice not in KERNEL_CHOICES:
        raise InputError(f"--kernels must be one of {', '.join(KERNEL_CHOICES)}, got {choice!r}")
    if choice == "auto":
        choice = "triton" if torch.device(device).type == "cuda" and kernels.HAS_TRITON else "reference"
    try:
        return kernels.get_ops(choice)
    except RuntimeError as exc:  # Triton missing, or no device it can run on: a usage error, said plainly
        raise InputError(f"--kernels {choice}: {exc}") from exc


# --------------------------------------------------------------------------------------------- reconstruction
def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Pixel loss between two images of the same shape: mean absolute (``l1``, the paper) or squared (``l2``) error."""
    if pred.shape != target.shape:
        raise InputError(f"reconstruction loss: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "l2":
        return F.mse_loss(pred, target)
    raise InputError(f"reconstruction loss must be one of {RECONSTRUCTION_CHOICES}, got {kind!r}")


def attention_loss(
    ops: Any, rgb_pred: torch.Tensor, sal_pred: torch.Tensor, rgb_true: torch.Tensor, sal_true: torch.Tensor
) -> torch.Tensor:
    """``mean |G_c(x) * G_s(x) - c * s|`` (saliency broadcast over RGB); gradients reach both predictions."""
    return ops.attention_l1(rgb_pred, sal_pred, rgb_true, sal_true)


# --------------------------------------------------------------------------------------------------- GAN terms
def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss ``E[D(fake)] - E[D(real)]`` (to minimise), averaged over patches and batch."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss ``-E[D(fake)]``."""
    return -fake_scores.mean()


def lsgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN (Mao et al. 2017) discriminator loss ``0.5 (E[(D(real) - 1)^2] + E[D(fake)^2])``."""
    return 0.5 * ((real_scores - 1).pow(2).mean() + fake_scores.pow(2).mean())


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss ``E[(D(fake) - 1)^2]``."""
    return (fake_scores - 1).pow(2).mean()


def gradient_penalty(
    ops: Any,
    critic: torch.nn.Module,
    gray: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor,
    reduction: str = "sum",
) -> torch.Tensor:
    """WGAN-GP penalty ``mean_n (||grad_x D(gray, x)||_2 - 1)^2`` at ``x = eps * real + (1 - eps) * fake``.

    ``real`` and ``fake`` are (N, 3, H, W) images (detached inside), ``eps`` is (N,) or (N, 1, 1, 1) in [0, 1], one per
    sample. The gradient is taken with ``create_graph=True`` so the penalty's own gradient reaches the critic's
    parameters (double backward). Not multiplied by the penalty weight.

    ``reduction``: what ``D`` of one sample is, for a PatchGAN critic with P patch scores. ``"sum"``: the sum of the
    patch scores (the released code's ``grad_outputs`` of ones), so the gradient norm grows with P; ``"mean"``: their
    mean, the quantity the Wasserstein term averages, so the unit-norm target means the same at every image size.
    """
    if reduction not in GP_REDUCTION_CHOICES:
        raise InputError(f"gradient penalty reduction must be one of {GP_REDUCTION_CHOICES}, got {reduction!r}")
    if eps.dim() == 1:
        eps = eps.view(-1, 1, 1, 1)
    mixed = ops.interpolate(real.detach(), fake.detach(), eps.to(real.dtype)).detach().requires_grad_(True)
    scores = critic(gray.detach(), mixed)
    total = scores.sum() if reduction == "sum" else scores.flatten(1).mean(1).sum()
    (grad,) = torch.autograd.grad(total, mixed, create_graph=True)
    return ops.gradient_penalty(grad)


@dataclass(frozen=True)
class AdversarialLoss:
    """The adversarial objective of one run: ``wgan-gp`` (the paper) or ``lsgan`` (Table II ablation)."""

    kind: str = "wgan-gp"
    penalty_weight: float = 10.0
    penalty_reduction: str = "sum"

    def __post_init__(self) -> None:
        if self.kind not in GAN_CHOICES:
            raise InputError(f"GAN loss must be one of {GAN_CHOICES}, got {self.kind!r}")

    def critic(
        self,
        ops: Any,
        critic: torch.nn.Module,
        gray: torch.Tensor,
        real: torch.Tensor,
        fake: torch.Tensor,
        eps: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Critic loss for one batch (``fake`` detached here) -> (loss, logged parts)."""
        # Scores in float32 even under bf16 autocast: the means below are the loss.
        real_scores = critic(gray, real).float()
        fake_scores = critic(gray, fake.detach()).float()
        if self.kind == "lsgan":
            loss = lsgan_critic_loss(real_scores, fake_scores)
            return loss, {"adv": float(loss.detach())}
        wasserstein = wgan_critic_loss(real_scores, fake_scores)
        penalty = gradient_penalty(ops, critic, gray, real, fake, eps, self.penalty_reduction)
        loss = wasserstein + self.penalty_weight * penalty
        return loss, {"adv": float(wasserstein.detach()), "gp": float(penalty.detach())}

    def generator(self, critic: torch.nn.Module, gray: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Generator's adversarial loss against one critic."""
        scores = critic(gray, fake).float()
        return lsgan_generator_loss(scores) if self.kind == "lsgan" else wgan_generator_loss(scores)
