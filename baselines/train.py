"""Train a published baseline from photos when no weights are at hand ("trained here" in the registry).

A plain supervised loop around ``baselines.losses``: the network sees the BT.601 gray of each photo and learns its
colours with its paper's objective (Zhang et al.: class-rebalanced cross-entropy with the prior measured on the
training photos first; Iizuka et al.: MSE + 1/300 classification when labels are given; pix2pix and the saliency
variants: 100 L1 + conditional GAN with the 70x70 PatchGAN). The saliency variants' attention loss needs saliency
ground truth and is SCGAN's trainer's job; here they learn colour only.

The checkpoint (atomic ``torch.save``) holds the state dict under ``generator`` plus ``baseline``, ``build_options``,
``size``, ``step``, ``epoch``, the training settings and, for Zhang et al., ``ab_prior``; ``scgan export --baseline
NAME --weights CKPT`` and ``load_method("NAME:CKPT")`` read it (build options included).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

CHECKPOINT_FORMAT = "scgan-bench/baseline/1"


@dataclass
class BaselineTrainConfig:
    """Settings of one training run. ``size``: training resolution (default: the architecture's input size; must
    suit the architecture, e.g. a multiple of 2**num_downs for pix2pix); ``options``: build options (smaller nets)."""

    name: str
    data: str
    out: str
    epochs: int = 1
    batch_size: int = 4
    lr: float = 2e-4
    size: int | None = None
    seed: int = 0
    labels: str | None = None
    max_steps: int | None = None
    options: dict = field(default_factory=dict)


def _load_photos(config: BaselineTrainConfig, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All training photos: (N, 3, size, size) float RGB [0, 1] (squash256, then resized) and labels (N,) (-1: none)."""
    from scgan.data import list_images, load_image, resize_image, scan_images, to_tensor

    entries = list_images(config.data, labels=config.labels)
    kept = scan_images(entries, exclude_gray=True).kept
    if not kept:
        raise ValueError(f"--data {config.data}: no colour images to train on (gray images are excluded)")
    images = torch.stack([to_tensor(resize_image(load_image(e.path), "squash256")) for e in kept])
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    labels = torch.tensor([int(e.label) for e in kept], dtype=torch.long)
    return images.clamp(0.0, 1.0), labels


def train_baseline(config: BaselineTrainConfig, progress: bool = True) -> dict:
    """Run the training; returns ``{"checkpoint": Path, "losses": [per-step loss], "steps": int}``."""
    from tqdm import tqdm

    from metrics.color import rgb_to_gray
    from scgan.atomic import atomic_path

    from . import losses
    from .archs.pix2pix import NLayerDiscriminator
    from .registry import get_architecture

    arch = get_architecture(config.name)
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be at least 1")
    if config.name == "iizuka" and config.batch_size < 2:
        raise ValueError("--batch-size: iizuka needs at least 2 (BatchNorm on its fully connected layers)")
    size = int(config.size or arch.input_size)
    torch.manual_seed(config.seed)
    images, labels = _load_photos(config, size)
    net = arch.build(**config.options).train()
    params = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=config.lr, betas=(0.5, 0.999))
    adversarial = config.name in ("pix2pix", "pix2pix-sal", "uresnet-sal")
    if adversarial:
        discriminator = NLayerDiscriminator(input_nc=4).train()
        optimiser_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999))
    extra = {}
    rebalance = None
    if config.name == "zhang-eccv16":
        prior = losses.ab_prior(images.split(16))
        rebalance = losses.rebalancing_weights(prior).float()
        extra["ab_prior"] = prior
    generator = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    step = 0
    total = config.epochs * ((len(images) + config.batch_size - 1) // config.batch_size)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    bar = tqdm(total=total, disable=not progress, desc=f"train {config.name}", unit="step")
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), config.batch_size):
            if config.max_steps is not None and step >= config.max_steps:
                break
            index = order[start : start + config.batch_size]
            if config.name == "iizuka" and len(index) < 2:
                continue  # a last batch of one cannot go through BatchNorm1d
            batch, batch_labels = images[index], labels[index]
            if not adversarial:
                loss, _ = losses.supervised_loss(config.name, net, batch, batch_labels, rebalance)
            else:
                gray = rgb_to_gray(batch) * 2.0 - 1.0
                output = net(gray)
                fake = output[0] if isinstance(output, tuple) else output
                real = batch * 2.0 - 1.0
                optimiser_d.zero_grad()
                d_loss = losses.pix2pix_discriminator_loss(
                    discriminator(torch.cat([gray, real], 1)), discriminator(torch.cat([gray, fake.detach()], 1))
                )
                d_loss.backward()
                optimiser_d.step()
                loss = losses.pix2pix_generator_loss(discriminator(torch.cat([gray, fake], 1)), fake, real)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            value = float(loss.detach())
            if not torch.isfinite(loss.detach()):
                raise RuntimeError(f"{config.name}: loss became {value} at step {step}")
            history.append(value)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
    bar.close()
    if step == 0:
        raise ValueError(f"--data {config.data}: not enough images for one batch")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "baseline": config.name,
        "build_options": dict(config.options),
        "size": size,
        "epoch": config.epochs,
        "step": step,
        "train_config": {k: v for k, v in dataclasses.asdict(config).items() if k != "options"},
        "generator": net.eval().state_dict(),
        **extra,
    }
    out = Path(config.out)
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return {"checkpoint": out, "losses": history, "steps": step}


def read_build_options(path: str | os.PathLike) -> dict:
    """The build options stored in a baseline checkpoint written by ``train_baseline`` ({} for other files)."""
    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        options = dict(data.get("build_options") or {})
        # lists come back from tuples after a round trip through the checkpoint; the builders take tuples
        return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return {}
