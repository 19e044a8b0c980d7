"""The trainer's data: photos (streamed from disk, one item at a time) paired with their saliency maps and labels,
and the seeded order in which an epoch visits them."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from scgan.errors import InputError
from scgan.training.rng import DATA_ORDER, mix_seed


class SaliencyPairedDataset(torch.utils.data.Dataset):
    """Photos paired with their saliency maps by relative name.

    Item: ``(rgb, saliency)``: float32 ``(3, S, S)`` RGB in [0, 1] and ``(1, S, S)`` in [0, 1], where ``S`` is the
    model's image size; with ``labels=True`` a third entry, the image's class label (int64, -1: none). The photo goes
    through the data layer's resize policy (e.g. squash256), then, when ``S`` differs from the policy size, an
    antialiased bilinear resize to ``S``; the map is resized bilinearly to ``S``. ``saliency_dir=None`` (no attention
    loss, or a method that uses no map): the saliency is all zeros.
    """

    def __init__(self, entries: Sequence, saliency_dir: str | os.PathLike | None, policy: str, size: int,
                 labels: bool = False):
        from scgan.data import get_resize_policy
        from scgan.saliency import map_names

        self.entries = list(entries)
        self.labels = labels
        self.saliency_dir = Path(saliency_dir) if saliency_dir is not None else None
        self.policy = get_resize_policy(policy)
        if self.policy.mode == "none":
            raise InputError("the trainer needs a fixed-size resize policy (squash256 or crop256), not 'native'")
        self.size = size
        self.map_paths: list[Path] | None = None
        if self.saliency_dir is None:
            return
        if not self.saliency_dir.is_dir():
            raise FileNotFoundError(f"saliency folder not found: {self.saliency_dir}")
        self.map_paths = [self.saliency_dir / name for name in map_names(e.name for e in self.entries)]
        missing = [str(p) for p in self.map_paths if not p.is_file()]
        if missing:
            shown = ", ".join(missing[:10]) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
            raise InputError(f"saliency map missing for {len(missing)} image(s): {shown} (run `scgan saliency`)")

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        from scgan.saliency import load_map

        rgb = load_training_image(self.entries[index].path, self.policy, self.size)
        if self.map_paths is None:
            sal = torch.zeros(1, self.size, self.size)
        else:
            sal = fit_to_size(torch.from_numpy(load_map(self.map_paths[index]))[None], self.size)
        if self.labels:
            return rgb, sal, torch.tensor(int(self.entries[index].label), dtype=torch.long)
        return rgb, sal


def scan_training_set(data: str, labels: str, skip_bad: bool, exclude_gray: bool, report: bool) -> list:
    """The entries of ``data`` the trainer uses: readable colour photos (gray photos are not colour ground truth).

    ``report``: print each skipped file and the number of gray photos excluded on stderr (rank 0 does). InputError
    when nothing is left.
    """
    from scgan.data import list_images, scan_images

    entries = list_images(data, labels=labels or None)
    scan = scan_images(entries, skip_bad=skip_bad, exclude_gray=exclude_gray)
    if report:
        for name, reason in scan.bad:
            print(f"train: skipped unreadable {name}: {reason}", file=sys.stderr)
        if scan.gray_excluded:
            print(f"train: {len(scan.gray_excluded)} gray image(s) excluded", file=sys.stderr)
    if not scan.kept:
        raise InputError(f"{data}: no usable colour images")
    return scan.kept


def fit_to_size(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) in [0, 1] -> (C, size, size): antialiased bilinear (so a 256 crop shrinks without aliasing)."""
    if image.shape[-2:] == (size, size):
        return image
    return F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp_(0.0, 1.0)


def load_training_image(path: str | os.PathLike, policy, size: int) -> torch.Tensor:
    """What the networks train on: float32 (3, size, size) RGB in [0, 1], the photo through the data layer's resize
    ``policy`` (e.g. squash256), then :func:`fit_to_size` when the model's size differs from the policy's."""
    from scgan.data import load_image, resize_image, to_tensor

    return fit_to_size(to_tensor(resize_image(load_image(path), policy)), size)


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Global batches of one epoch: a permutation seeded by (seed, epoch), cut into full batches (last one dropped)."""
    generator = torch.Generator().manual_seed(mix_seed(seed, DATA_ORDER, epoch))
    order = torch.randperm(num_items, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, num_items - batch_size + 1, batch_size)]


def collate(dataset: torch.utils.data.Dataset, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """The batch of ``dataset`` items at ``indices``, stacked as the DataLoader would."""
    items = [dataset[int(i)] for i in indices]
    return tuple(torch.stack(parts) for parts in zip(*items))
