"""Training losses of the published baselines, so that each can be trained here when no weights are at hand.

- Zhang et al. ECCV 2016: class-rebalanced multinomial cross-entropy over the Q = 313 ab bins. The ground-truth ab
  of each pixel is soft-encoded over its 5 nearest bin centres with a Gaussian kernel (sigma 5); each pixel is
  weighted by ``w[q*]`` (q* its nearest bin), ``w ∝ ((1 - lambda) p~ + lambda / Q)^-1`` normalised so that
  ``sum_q p~_q w_q = 1``, lambda = 0.5, with ``p~`` the empirical ab prior of the training set smoothed with a
  Gaussian (sigma 5). The prior is computed from a data set (``ab_prior``) and passed in.
- Iizuka et al. 2016: MSE on the [0, 1]-normalised chrominance plus ``alpha`` (1/300) times the cross-entropy of
  the scene classification branch (pixels/images without labels: label -1, ignored).
- pix2pix: ``lambda_L1`` (100) times L1 plus the conditional GAN loss (binary cross-entropy on PatchGAN logits);
  the discriminator sees the gray condition concatenated with the real or generated RGB.
- The saliency variants (pix2pix+Sal, UResNet+Sal) return ``(rgb, saliency)`` in [-1, 1] / [0, 1] exactly as SCGAN's
  generator does and train with SCGAN's losses (scgan.losses).

``supervised_loss(name, net, images, labels)`` gives one entry point for a trainer: the non-adversarial loss of a
baseline for a batch of RGB images in [0, 1] (the network sees only their gray).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from metrics.color import rgb_to_gray, rgb_to_lab

SOFT_ENCODING_NEIGHBOURS = 5
SOFT_ENCODING_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
PRIOR_SIGMA = 5.0
IIZUKA_ALPHA = 1.0 / 300.0
PIX2PIX_LAMBDA_L1 = 100.0


def bin_centres(dtype=torch.float32, device=None) -> torch.Tensor:
    """The 313 ab bin centres (Q, 2) as a tensor (see baselines.archs.zhang_eccv16.ab_bins)."""
    from .archs.zhang_eccv16 import ab_bins

    return torch.as_tensor(ab_bins(), dtype=dtype, device=device)


def _pixels_ab(ab: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) -> (N*H*W, 2)."""
    if ab.ndim != 4 or ab.shape[1] != 2:
        raise ValueError(f"expected ab (N, 2, H, W), got {tuple(ab.shape)}")
    return ab.permute(0, 2, 3, 1).reshape(-1, 2)


def nearest_bin(ab: torch.Tensor, centres: torch.Tensor | None = None) -> torch.Tensor:
    """Index of the nearest bin centre of every pixel: ab (N, 2, H, W) -> (N, H, W) int64."""
    centres = bin_centres(ab.dtype, ab.device) if centres is None else centres.to(ab)
    distances = torch.cdist(_pixels_ab(ab), centres)
    n, _, h, w = ab.shape
    return distances.argmin(dim=1).reshape(n, h, w)


def soft_encode(
    ab: torch.Tensor,
    centres: torch.Tensor | None = None,
    neighbours: int = SOFT_ENCODING_NEIGHBOURS,
    sigma: float = SOFT_ENCODING_SIGMA,
) -> torch.Tensor:
    """Soft-encode ab (N, 2, H, W) over the bins: (N, Q, H, W), each pixel a distribution over its ``neighbours``
    nearest centres with weights ``exp(-d^2 / (2 sigma^2))`` normalised to sum 1 (Zhang et al. 2016, section 2.1)."""
    centres = bin_centres(ab.dtype, ab.device) if centres is None else centres.to(ab)
    pixels = _pixels_ab(ab)
    distances = torch.cdist(pixels, centres)
    nearest_d, nearest_i = distances.topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-(nearest_d**2) / (2.0 * sigma**2), dim=1)  # = Gaussian weights normalised to sum 1
    encoded = torch.zeros(pixels.shape[0], centres.shape[0], dtype=ab.dtype, device=ab.device)
    encoded.scatter_(1, nearest_i, weights)
    n, _, h, w = ab.shape
    return encoded.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def ab_prior(images: Iterable[torch.Tensor] | torch.Tensor, centres: torch.Tensor | None = None) -> torch.Tensor:
    """Empirical distribution p (Q,) float64 of the nearest ab bin over every pixel of ``images``.

    images: one tensor or an iterable of batches, (N, 3, H, W) sRGB float in [0, 1] (the training set's photos).
    """
    batches = [images] if isinstance(images, torch.Tensor) else images
    counts = None
    for batch in batches:
        ab = rgb_to_lab(batch.to(torch.float64))[:, 1:]
        index = nearest_bin(ab, None if centres is None else centres.to(torch.float64))
        q = centres.shape[0] if centres is not None else 313
        batch_counts = torch.bincount(index.flatten(), minlength=q).to(torch.float64)
        counts = batch_counts if counts is None else counts + batch_counts
    if counts is None or counts.sum() == 0:
        raise ValueError("ab_prior: no pixels given")
    return counts / counts.sum()


def rebalancing_weights(
    prior: torch.Tensor,
    lam: float = REBALANCE_LAMBDA,
    sigma: float = PRIOR_SIGMA,
    centres: torch.Tensor | None = None,
) -> torch.Tensor:
    """Class-rebalancing weights w (Q,) from an empirical prior p (Q,) (Zhang et al. 2016, eq. 3-4).

    p is smoothed with a Gaussian of ``sigma`` in ab space (each bin's mass spread over the bins, total kept), then
    ``w ∝ ((1 - lam) p~ + lam / Q)^-1``, scaled so that ``sum_q p~_q w_q = 1``.
    """
    prior = torch.as_tensor(prior, dtype=torch.float64)
    centres = bin_centres(torch.float64) if centres is None else centres.to(torch.float64)
    if prior.ndim != 1 or prior.shape[0] != centres.shape[0]:
        raise ValueError(f"prior must have shape ({centres.shape[0]},), got {tuple(prior.shape)}")
    if (prior < 0).any() or prior.sum() <= 0:
        raise ValueError("prior must be non-negative with a positive sum")
    prior = prior / prior.sum()
    kernel = torch.exp(-(torch.cdist(centres, centres) ** 2) / (2.0 * sigma**2))
    kernel = kernel / kernel.sum(dim=0, keepdim=True)  # column r spreads the mass of bin r, total kept
    smoothed = kernel @ prior
    smoothed = smoothed / smoothed.sum()
    q = prior.shape[0]
    weights = 1.0 / ((1.0 - lam) * smoothed + lam / q)
    return weights / (smoothed * weights).sum()


def class_rebalanced_cross_entropy(
    logits: torch.Tensor, ab_target: torch.Tensor, weights: torch.Tensor, centres: torch.Tensor | None = None
) -> torch.Tensor:
    """Zhang et al.'s loss: ``-mean_pixels w[q*] sum_q Z_q log softmax(logits)_q``.

    logits: (N, Q, h, w) class scores; ab_target: (N, 2, H, W) ground-truth a*b*, H and W the same integer multiple
    of h and w (the network predicts at 1/4 resolution): then subsampled to (h, w) by taking every stride-th pixel, as
    the authors' training net does (``data_ab_ss``, a 1x1 convolution of stride 4), which keeps real colours where
    averaging would desaturate edges; weights: (Q,) from ``rebalancing_weights``.
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must be (N, Q, h, w), got {tuple(logits.shape)}")
    (h, w), (height, width) = logits.shape[-2:], ab_target.shape[-2:]
    stride = height // h
    if stride < 1 or (height, width) != (stride * h, stride * w):
        raise ValueError(f"ab_target {(height, width)} is not an integer multiple of the logits' size {(h, w)}")
    ab_target = ab_target[:, :, ::stride, ::stride]
    ab_target = ab_target.to(logits.dtype)
    encoded = soft_encode(ab_target, centres)
    pixel_weight = weights.to(logits)[encoded.argmax(dim=1)]  # (N, h, w): weight of the nearest bin
    log_probs = torch.log_softmax(logits, dim=1)
    per_pixel = -(encoded * log_probs).sum(dim=1)
    return (pixel_weight * per_pixel).mean()


def iizuka_loss(
    chroma01: torch.Tensor,
    ab_target: torch.Tensor,
    class_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    alpha: float = IIZUKA_ALPHA,
) -> torch.Tensor:
    """MSE between the predicted chrominance (N, 2, H, W) in [0, 1] and the target a*b* mapped to [0, 1], plus
    ``alpha`` times the cross-entropy of ``class_logits`` (N, C) against ``labels`` (N,) (entries -1 ignored)."""
    from .archs.iizuka import ab_to_chroma01

    loss = F.mse_loss(chroma01, ab_to_chroma01(ab_target.to(chroma01)))
    if class_logits is not None and labels is not None and bool((labels >= 0).any()):
        loss = loss + alpha * F.cross_entropy(class_logits, labels.long(), ignore_index=-1)
    return loss


def pix2pix_generator_loss(
    fake_logits: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, lambda_l1: float = PIX2PIX_LAMBDA_L1
) -> torch.Tensor:
    """pix2pix generator objective: BCE(D(x, G(x)), real) + lambda_L1 |G(x) - y|_1 (mean)."""
    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return adversarial + lambda_l1 * F.l1_loss(fake, real)


def pix2pix_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """pix2pix discriminator objective (halved, as the authors do): 0.5 (BCE(D(x, y), 1) + BCE(D(x, G(x)), 0))."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"expected RGB images (N, 3, H, W) float in [0, 1], got {tuple(images.shape)} {images.dtype}")


def supervised_loss(
    name: str,
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    rebalance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The non-adversarial training loss of baseline ``name`` on RGB images (N, 3, H, W) in [0, 1].

    zhang-eccv16: class-rebalanced CE (``rebalance``: weights from ``rebalancing_weights``; uniform when None);
    zhang-siggraph17: smooth-L1 on ab / 110 (its automatic-mode regression objective);
    iizuka: MSE + alpha CE (``labels`` optional); pix2pix: L1 on RGB in [-1, 1] (add ``pix2pix_generator_loss``'s
    GAN term with a discriminator); pix2pix-sal / uresnet-sal: L1 on RGB (SCGAN's attention and GAN terms come from
    scgan.losses). Returns ``(loss, {part: value})``.
    """
    _check_images(images)
    gray01 = rgb_to_gray(images)
    lab = rgb_to_lab(images)
    lightness, ab = lab[:, :1], lab[:, 1:]
    if name == "zhang-eccv16":
        weights = rebalance if rebalance is not None else torch.ones(313)
        loss = class_rebalanced_cross_entropy(net.logits(lightness), ab, weights)
        return loss, {"cross_entropy": float(loss.detach())}
    if name == "zhang-siggraph17":
        loss = F.smooth_l1_loss(net(lightness) / 110.0, ab / 110.0)
        return loss, {"smooth_l1": float(loss.detach())}
    if name == "iizuka":
        chroma01, class_logits = net(lightness / 100.0)
        loss = iizuka_loss(chroma01, ab, class_logits, labels)
        return loss, {"mse_plus_class": float(loss.detach())}
    if name in ("pix2pix", "pix2pix-sal", "uresnet-sal"):
        output = net(gray01 * 2.0 - 1.0)
        rgb = output[0] if isinstance(output, tuple) else output
        loss = F.l1_loss(rgb, images * 2.0 - 1.0)
        return loss, {"l1": float(loss.detach())}
    raise ValueError(f"no training loss for {name!r}")


def uniform_prior() -> torch.Tensor:
    """A flat prior over the 313 bins (rebalancing weights then close to 1): for tests and as a neutral default."""
    return torch.full((313,), 1.0 / 313, dtype=torch.float64)


__all__ = [
    "ab_prior",
    "bin_centres",
    "class_rebalanced_cross_entropy",
    "iizuka_loss",
    "nearest_bin",
    "pix2pix_discriminator_loss",
    "pix2pix_generator_loss",
    "rebalancing_weights",
    "soft_encode",
    "supervised_loss",
    "uniform_prior",
]
