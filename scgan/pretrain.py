"""Global feature network pretraining (docs/training.md): VGG-16-Gray learns ImageNet-like semantics from gray photos.

Two sources, recorded in the output file (``"source"``):

* ``classification`` (the paper, when labels are given): VGG-16-Gray + a classifier head (global average pool, linear
  to ``num_classes``) trained with cross-entropy on gray images; reports top-1 on the held-out split.
* ``distillation`` (no labels): the EfficientNet-Lite0 ImageNet classifier (packaged weights) sees the **colour** photo
  and the student sees only its gray version; the loss is ``T^2 * KL(softmax(t / T) || softmax(s / T))`` on the 1000
  logits (Hinton et al. 2015, temperature ``T``); reports the agreement of the student's top-1 class with the
  teacher's on the held-out split. Teacher logits are computed per batch as the images stream in (storing 1000
  floats per image would not fit for an ImageNet-sized set); no augmentation is used.

The student sees exactly what the generator feeds its global feature network: BT.601 gray in ``[-1, 1]`` at the preset's
image size (the photo through the data layer's resize policy, then an antialiased resize to the preset's size). The
held-out split is a seeded permutation (``val_fraction`` of the images, at least one). Images are decoded when a batch
needs them (``workers`` DataLoader processes), so memory does not grow with the data set. Output: the
``scgan-bench/global-features/1`` file of ``scgan.checkpoint.save_global_features`` (``config``, ``state_dict`` of the
global feature network) plus ``source``, ``epochs``, ``val_metric`` name/value, ``train_images``, ``val_images`` and the
head's weights (``head_state_dict``), loadable by
``scgan.checkpoint.load_pretrained_global_features(generator.global_features, path)``.
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


class _GrayPhotos(torch.utils.data.Dataset):
    """Item ``(rgb01, label)``: float32 (3, S, S) RGB in [0, 1] as the trainer loads it (policy crop, then an
    antialiased resize to the preset's size ``S``), and the class index (-1 without labels).

    Images are read when fetched (DataLoader workers can decode in parallel): nothing but the entries is held, so an
    ImageNet-sized folder streams instead of filling memory.
    """

    def __init__(self, entries, policy: str, size: int):
        from scgan.data import get_resize_policy

        self.entries = list(entries)
        self.policy = get_resize_policy(policy)
        if self.policy.mode == "none":
            raise InputError("pretrain-global needs a fixed-size resize policy (squash256 or crop256), not 'native'")
        self.size = size

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from scgan.training.data import load_training_image

        entry = self.entries[index]
        return load_training_image(entry.path, self.policy, self.size), int(entry.label)


def _gray_input(rgb01: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) RGB in [0, 1] -> (N, 1, S, S) BT.601 gray in [-1, 1] (what the generator feeds the network)."""
    from metrics.color import rgb_to_gray

    return rgb_to_gray(rgb01) * 2 - 1


class _Targets:
    """What the student learns from, per batch: the labels (classification) or the teacher's logits (distillation).

    The teacher (EfficientNet-Lite0, packaged ImageNet weights, eval mode) sees the colour image; its logits are
    computed per batch rather than stored (1000 floats per image would not fit for an ImageNet-sized set).
    """

    def __init__(self, source: str, device: torch.device):
        self.source = source
        self.teacher = None
        if source == "distillation":
            from metrics.classifier import build_efficientnet_lite0

            self.teacher = build_efficientnet_lite0(pretrained=True).to(device).eval()

    @torch.no_grad()
    def __call__(self, rgb01: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.teacher is None:
            return labels.to(rgb01.device)
        from metrics.classifier import efficientnet_lite0_preprocess

        return self.teacher(efficientnet_lite0_preprocess(rgb01)).float()


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
    from scgan.devices import resolve_device
    from scgan.model import build_global_features

    config.validate()
    device = resolve_device(config.device)
    model_config = get_config(config.preset)
    entries = list_images(config.data, labels=config.labels)
    entries = scan_images(entries, skip_bad=config.skip_bad, exclude_gray=True, progress=progress).kept
    if len(entries) < 2:
        raise InputError(
            f"{config.data}: pretraining needs at least 2 colour images (one held out), got {len(entries)}"
        )
    source = "classification" if config.labels else "distillation"
    if source == "classification":
        largest = max(e.label for e in entries)
        if largest >= NUM_CLASSES:
            raise InputError(f"{config.labels}: labels must be 0..{NUM_CLASSES - 1}, found {largest}")

    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(entries), generator=generator)
    n_val = max(1, int(round(len(entries) * config.val_fraction)))
    val_idx, train_idx = order[:n_val].tolist(), order[n_val:]
    if len(train_idx) == 0:
        raise InputError(f"--val-fraction {config.val_fraction} leaves no training image out of {len(entries)}")
    dataset = _GrayPhotos(entries, config.policy, model_config.image_size)
    targets = _Targets(source, device)

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
        perm = train_idx[torch.randperm(len(train_idx), generator=generator)].tolist()
        # Full batches only: BatchNorm statistics of a 1-image remainder would be degenerate.
        batches = [perm[i : i + batch] for i in range(0, len(perm) - batch + 1, batch)]
        total, count = 0.0, 0
        bar = tqdm(_loader(dataset, batches, config.workers, device), total=len(batches), leave=False,
                   desc=f"pretrain-global epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for number, (rgb01, labels) in enumerate(bar, start=1):
            rgb01 = rgb01.to(device)
            logits = model(_gray_input(rgb01))
            loss = loss_fn(logits, targets(rgb01, labels))
            if not math.isfinite(float(loss.detach())):
                raise InputError(f"pretrain-global: non-finite loss at epoch {epoch + 1}, batch {number}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(rgb01)
            count += len(rgb01)
            bar.set_postfix(loss=f"{float(loss.detach()):.4g}")
        val_batches = [val_idx[i : i + config.batch_size] for i in range(0, len(val_idx), config.batch_size)]
        metric_value = evaluate(model, _loader(dataset, val_batches, config.workers, device), targets, source, device)
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


def _loader(dataset: _GrayPhotos, batches: list[list[int]], workers: int, device: torch.device):
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                                       pin_memory=device.type == "cuda")


@torch.no_grad()
def evaluate(model: nn.Module, batches, targets: _Targets, source: str, device: torch.device) -> float:
    """Top-1 accuracy against labels (classification) or top-1 agreement with the teacher (distillation).

    ``batches`` yields ``(rgb01 (n, 3, S, S) in [0, 1], labels (n,))`` (a DataLoader over the held-out images).
    """
    model.eval()
    hits, count = 0, 0
    for rgb01, labels in batches:
        rgb01 = rgb01.to(device)
        pred = model(_gray_input(rgb01)).argmax(1)
        target = targets(rgb01, labels)
        truth = target if source == "classification" else target.argmax(1)
        hits += int((pred == truth).sum())
        count += len(rgb01)
    return hits / count


def load_result_info(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a pretrain-global file (everything but the weights)."""
    from scgan.checkpoint import load_global_features

    data = load_global_features(path)
    return {k: v for k, v in data.items() if k not in ("state_dict", "head_state_dict")}
