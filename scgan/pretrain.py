"""Global feature network pretraining (DESIGN section 5): VGG-16-Gray learns ImageNet-like semantics from gray photos.

Two sources, recorded in the output file (``"source"``):

* ``classification`` (the paper, when labels are given): VGG-16-Gray + a classifier head (global average pool, linear
  to ``num_classes``) trained with cross-entropy on gray images; reports top-1 on the held-out split.
* ``distillation`` (no labels): the EfficientNet-Lite0 ImageNet classifier (packaged weights) sees the **colour** photo
  and the student sees only its gray version; the loss is ``T^2 * KL(softmax(t / T) || softmax(s / T))`` on the 1000
  logits (Hinton et al. 2015, temperature ``T``); reports the agreement of the student's top-1 class with the
  teacher's on the held-out split. Teacher logits are computed once per image (no augmentation is used).

The student sees exactly what the generator feeds its global feature network: BT.601 gray in ``[-1, 1]`` at the preset's
image size (the photo through the data layer's resize policy, then an antialiased resize to the preset's size). The
held-out split is a seeded permutation (``val_fraction`` of the images, at least one). Output: the
``scgan-bench/global-features/1`` file of ``scgan.checkpoint.save_global_features`` (``config``, ``state_dict`` of the
global feature network) plus ``source``, ``epochs``, ``val_metric`` name/value, ``train_images``, ``val_images`` and the
head's weights (``head_state_dict``), loadable by ``generator.global_features.load_pretrained(path)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scgan.errors import InputError
from scgan.training.config import NUM_CLASSES, PretrainConfig

__all__ = ["PretrainConfig", "PretrainResult", "pretrain_global", "distillation_loss", "load_result_info"]


class GlobalFeatureClassifier(nn.Module):
    """VGG-16-Gray global feature network + head: ``forward(gray)`` (N, 1, S, S) in [-1, 1] -> logits (N, classes)."""

    def __init__(self, features: nn.Module, channels: int, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.features = features
        self.head = nn.Linear(channels, num_classes)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(gray).mean(dim=(2, 3)))


@dataclass
class PretrainResult:
    path: Path
    source: str
    metric: str
    value: float
    train_images: int
    val_images: int
    history: list[dict[str, float]]


def _load_images(entries, policy: str, size: int, progress: bool) -> torch.Tensor:
    """uint8 (N, 3, size, size) tensor of all images (kept in memory: the sets this is meant for are small)."""
    from tqdm import tqdm

    from scgan.data import load_image, resize_image

    images = []
    for entry in tqdm(entries, desc="loading images", unit="img", disable=not progress):
        img = torch.from_numpy(resize_image(load_image(entry.path), policy)).permute(2, 0, 1)
        if img.shape[-1] != size:
            img = F.interpolate(img[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                                antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
        images.append(img)
    return torch.stack(images)


def _gray_input(images_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    from metrics.color import rgb_to_gray

    rgb01 = images_uint8.to(device).float() / 255.0
    return rgb_to_gray(rgb01) * 2 - 1


@torch.no_grad()
def _teacher_logits(images_uint8: torch.Tensor, device: torch.device, batch: int, progress: bool) -> torch.Tensor:
    from tqdm import tqdm

    from metrics.classifier import build_efficientnet_lite0, efficientnet_lite0_preprocess

    teacher = build_efficientnet_lite0(pretrained=True).to(device).eval()
    out = []
    for i in tqdm(range(0, len(images_uint8), batch), desc="teacher logits", disable=not progress):
        rgb01 = images_uint8[i : i + batch].to(device).float() / 255.0
        out.append(teacher(efficientnet_lite0_preprocess(rgb01)).float().cpu())
    return torch.cat(out)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, batch mean."""
    log_p_student = F.log_softmax(student / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * temperature**2


def pretrain_global(config: PretrainConfig, progress: bool = True) -> PretrainResult:
    """Train the preset's global feature network (see the module docstring) and write it to ``config.out``."""
    from tqdm import tqdm

    from scgan.checkpoint import save_global_features
    from scgan.config import get_config
    from scgan.data import list_images, scan_images
    from scgan.model import build_global_features

    config.validate()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else \
        torch.device(config.device)
    model_config = get_config(config.preset)
    entries = list_images(config.data, labels=config.labels)
    entries = scan_images(entries, skip_bad=config.skip_bad, exclude_gray=True).kept
    if len(entries) < 2:
        raise InputError(
            f"{config.data}: pretraining needs at least 2 colour images (one held out), got {len(entries)}"
        )
    source = "classification" if config.labels else "distillation"
    if source == "classification":
        labels = torch.tensor([e.label for e in entries], dtype=torch.long)
        if int(labels.max()) >= NUM_CLASSES:
            raise InputError(f"{config.labels}: labels must be 0..{NUM_CLASSES - 1}, found {int(labels.max())}")

    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(entries), generator=generator)
    n_val = max(1, int(round(len(entries) * config.val_fraction)))
    val_idx, train_idx = order[:n_val], order[n_val:]

    images = _load_images(entries, config.policy, model_config.image_size, progress)
    if source == "classification":
        targets = labels
    else:
        targets = _teacher_logits(images, device, config.batch_size, progress)

    torch.manual_seed(config.seed)
    features = build_global_features(model_config)
    model = GlobalFeatureClassifier(features, features.out_channels).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if source == "classification":
            return F.cross_entropy(logits, target)
        return distillation_loss(logits, target, config.temperature)

    history: list[dict[str, float]] = []
    batch = min(config.batch_size, len(train_idx))
    for epoch in range(config.epochs):
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=generator)]
        total, count = 0.0, 0
        bar = tqdm(range(0, len(perm) - batch + 1, batch), desc=f"pretrain-global epoch {epoch + 1}/{config.epochs}",
                   disable=not progress, leave=False)
        for start in bar:
            idx = perm[start : start + batch]
            logits = model(_gray_input(images[idx], device))
            loss = loss_fn(logits, targets[idx].to(device))
            if not math.isfinite(float(loss.detach())):
                raise InputError(f"pretrain-global: non-finite loss at epoch {epoch + 1}, batch {start // batch + 1}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            bar.set_postfix(loss=f"{float(loss.detach()):.4g}")
        metric_value = evaluate(model, images[val_idx], targets[val_idx], source, device, config.batch_size)
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1), "val": metric_value})

    metric = "top1" if source == "classification" else "teacher_agreement"
    path = save_global_features(
        config.out, model.features, model_config,
        source=source, epochs=config.epochs, val_metric=metric, val_value=float(history[-1]["val"]),
        train_images=int(len(train_idx)), val_images=int(len(val_idx)), seed=config.seed,
        teacher="efficientnet-lite0" if source == "distillation" else None, temperature=config.temperature,
        head_state_dict={k: v.detach().cpu() for k, v in model.head.state_dict().items()},
        history=[{k: float(v) for k, v in h.items()} for h in history],
    )  # fmt: skip
    return PretrainResult(Path(path), source, metric, float(history[-1]["val"]), len(train_idx), len(val_idx), history)


@torch.no_grad()
def evaluate(model: nn.Module, images_uint8: torch.Tensor, targets: torch.Tensor, source: str,
             device: torch.device, batch: int) -> float:
    """Top-1 accuracy against labels (classification) or top-1 agreement with the teacher's logits (distillation)."""
    model.eval()
    hits = 0
    for i in range(0, len(images_uint8), batch):
        pred = model(_gray_input(images_uint8[i : i + batch], device)).argmax(1).cpu()
        target = targets[i : i + batch]
        truth = target if source == "classification" else target.argmax(1)
        hits += int((pred == truth).sum())
    return hits / len(images_uint8)


def load_result_info(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a pretrain-global file (everything but the weights)."""
    from scgan.checkpoint import load_global_features

    data = load_global_features(path)
    return {k: v for k, v in data.items() if k not in ("state_dict", "head_state_dict")}
