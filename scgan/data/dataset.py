"""Image data sets for training and batch inference: entries decoded and resized by a worker, as float tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from scgan.data.imageio import ImageEntry, load_image, to_tensor
from scgan.data.resize import ResizePolicy, get_resize_policy, resize_image
from scgan.errors import ImageReadError, InputError

# ----------------------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------------------


class DatasetImageReadError(ImageReadError):
    """The ``ImageReadError`` that ``ImageDataset`` raises: it survives DataLoader worker processes and pickling.

    PyTorch rebuilds a worker's exception in the main process as ``type(exc)(formatted_traceback)``; the base class
    needs ``(path, reason)`` and would turn into a bare ``RuntimeError``. Given one argument, this class takes the path
    and the reason back from the traceback's last line, so the CLI still prints one line naming the file.
    """

    def __init__(self, path, reason: str | None = None):
        if reason is None:
            last_line = str(path).strip().splitlines()[-1] if str(path).strip() else ""
            _, sep, message = last_line.partition(": ")  # drop the "module.ClassName: " prefix
            path, _, reason = (message if sep else last_line).partition(": ")
        super().__init__(path, reason)

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class ImageDataset(torch.utils.data.Dataset):
    """Torch dataset over entries: item ``{"image": float32 (3, H, W) RGB [0, 1], "name": str, "label": int}``.

    Images are read with ``load_image`` and resized by ``policy`` when the item is fetched (so it works with
    DataLoader workers; nothing but the entries is pickled). An unreadable file raises ``DatasetImageReadError`` (an
    ``ImageReadError`` naming the file, also from a worker process). ``label`` is -1 for unlabelled entries. With the
    ``native`` policy sizes differ, so batch with ``batch_size=1`` or a custom collate.
    """

    def __init__(self, entries: Sequence[ImageEntry], policy: str | ResizePolicy = "squash256"):
        self.entries = list(entries)
        self.policy = get_resize_policy(policy)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        try:
            raw = load_image(entry.path)
        except ImageReadError as exc:
            raise DatasetImageReadError(exc.path, exc.reason) from exc
        img = resize_image(raw, self.policy)
        return {"image": to_tensor(img), "name": entry.name, "label": int(entry.label)}


def load_batch(entries: Sequence[ImageEntry], policy: str | ResizePolicy = "squash256") -> torch.Tensor:
    """Read and resize entries into one ``torch.float32`` ``(N, 3, H, W)`` RGB batch in [0, 1].

    All images must come out the same size (any policy but ``native``, or ``native`` on equal sizes).
    """
    entries = list(entries)
    if not entries:
        raise InputError("load_batch: no entries")
    policy = get_resize_policy(policy)
    images = [resize_image(load_image(e.path), policy) for e in entries]
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        sizes = ", ".join(f"{e.name} {img.shape[1]}x{img.shape[0]}" for e, img in list(zip(entries, images))[:5])
        raise InputError(f"load_batch: images differ in size under policy {policy.name!r} ({sizes}, ...)")
    return torch.stack([to_tensor(img) for img in images])
