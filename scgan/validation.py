"""Held-out validation of a generator during or after training: how well it colorizes photos it never saw.

:func:`validate_colorizer` is used by the trainer's per-epoch validation (``--val-data``, every method),
:func:`validate_generator` (SCGAN generators) by the loss-weight calibration (``bench/loss_calibration.py``).
For each held-out colour photo (resize policy first, as in training; gray photos are excluded):

- ``val_l1``: mean ``|G(gray) - rgb|`` at the network's size, both in ``[-1, 1]`` (what the reconstruction term of
  the training loss measures, on photos it was not trained on; no input noise);
- ``psnr`` (dB) and ``cci`` (Hasler-Suesstrunk colourfulness, signed variant): the predicted chroma recombined with
  the photo's own luminance at the policy's size (256x256 for ``squash256``), i.e. how the colorizer is used in
  practice (``scgan.colorize``, the ``wang`` protocol's recombination), measured on 8-bit values.

Networks run in eval mode without gradients; their train/eval flags are restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from scgan.errors import InputError

__all__ = ["EpochValidation", "load_validation_images", "validate_colorizer", "validate_generator"]


def load_validation_images(source: str | os.PathLike, count: int = 0, policy: str = "squash256") -> torch.Tensor:
    """The first ``count`` (0: all) colour photos of ``source`` (folder, list file, ``samples``), sorted by name, after
    the resize policy: float ``(N, 3, S, S)`` RGB in ``[0, 1]``. Gray photos are skipped; unreadable ones are an
    error naming the file."""
    from scgan.data import list_images, load_image, resize_image, scan_images, to_tensor

    kept = scan_images(list_images(source), exclude_gray=True).kept
    if count:
        kept = kept[:count]
    if not kept:
        raise InputError(f"validation photos {source}: no colour images")
    images = [to_tensor(resize_image(load_image(e.path), policy)) for e in kept]
    sizes = {tuple(img.shape[1:]) for img in images}
    if len(sizes) > 1:
        raise InputError(f"validation photos {source}: policy {policy} gives several sizes {sorted(sizes)}")
    return torch.stack(images).clamp(0.0, 1.0)


def validate_colorizer(colorize, images: torch.Tensor, size: int, batch_size: int = 32) -> dict[str, float]:
    """``{"val_images", "val_l1", "psnr", "cci"}`` of a colorizer on ``images`` (float (N, 3, H, W) RGB in [0, 1]).

    ``colorize``: gray ``(n, 1, size, size)`` in ``[0, 1]`` -> RGB ``(n, 3, size, size)`` in ``[0, 1]`` (called
    without gradient; the caller puts its network in eval mode). ``val_l1`` is reported on the ``[-1, 1]`` scale.
    """
    from metrics.color import rgb_to_gray
    from metrics.functional import cci, psnr
    from scgan.colorize import recombine_lab

    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise InputError(f"validation images must be float (N, 3, H, W) RGB in [0, 1], got {tuple(images.shape)}")
    l1, psnrs, ccis = [], [], []
    for start in range(0, images.shape[0], batch_size):
        full = images[start : start + batch_size]
        small = F.interpolate(full, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        small = small.clamp(0.0, 1.0)
        with torch.no_grad():
            rgb01 = colorize(rgb_to_gray(small)).float().cpu().clamp(0.0, 1.0)
        l1.append(2 * (rgb01 - small).abs().mean(dim=(1, 2, 3)))
        colorized = recombine_lab(full, rgb01)
        psnrs.append(psnr(colorized, full))
        ccis.append(cci(colorized))
    return {
        "val_images": int(images.shape[0]),
        "val_l1": float(torch.cat(l1).double().mean()),
        "psnr": float(torch.cat(psnrs).double().mean()),
        "cci": float(torch.cat(ccis).double().mean()),
    }


def validate_generator(generator: torch.nn.Module, images: torch.Tensor, batch_size: int = 32) -> dict[str, float]:
    """:func:`validate_colorizer` for an SCGAN-interface generator (gray ``[-1, 1]`` -> ``(rgb [-1, 1], saliency)``)
    at ``generator.config.image_size``, in eval mode (its train/eval flags are restored afterwards)."""
    device = next(generator.parameters()).device

    def colorize(gray01: torch.Tensor) -> torch.Tensor:
        rgb, _ = generator(gray01.to(device) * 2 - 1)
        return (rgb + 1) / 2

    with _eval_mode(generator):
        return validate_colorizer(colorize, images, generator.config.image_size, batch_size)


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """``module`` in eval mode inside the block; every submodule's train/eval flag restored afterwards (a frozen
    backbone that stays in eval mode, or BatchNorm layers kept in eval by ``--batchnorm eval``, keep their flags)."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for submodule, flag in flags:
            submodule.training = flag


VALIDATION_COLUMNS = ("val_images", "val_l1", "psnr", "cci")


class EpochValidation:
    """The trainer's held-out validation (``--val-data``, ``--val-count``): at every epoch end the method's colorizer
    runs on the held-out photos and one row (stage, epoch, step, val_images, val_l1, psnr, cci) is appended to
    ``RUN_DIR/val.csv`` (rank 0). The photos are decoded once, when the run starts; a photo that is also a training
    photo (same file) is an error: validation must be on photos the run never sees."""

    def __init__(self, source: str, count: int, policy: str, size: int, log_path: os.PathLike,
                 training_entries=()):
        from scgan.data import list_images
        from scgan.training.outputs import LossLog

        trained = {Path(e.path).resolve() for e in training_entries}
        overlap = [e.name for e in list_images(source) if Path(e.path).resolve() in trained]
        if overlap:
            raise InputError(
                f"--val-data {source}: {len(overlap)} of its photos are training photos (e.g. {overlap[0]}); "
                "validation needs held-out photos"
            )
        self.images = load_validation_images(source, count, policy)
        self.size = size
        self.log = LossLog(Path(log_path), VALIDATION_COLUMNS, trailing=())

    def run(self, method, generator: torch.nn.Module, device: torch.device, stage: int, epoch: int,
            step: int) -> dict[str, float]:
        """Validate ``generator`` (through ``method.colorize``) after ``epoch`` completed epochs; returns the row."""
        with _eval_mode(generator):
            result = validate_colorizer(lambda gray01: method.colorize(generator, gray01.to(device))[0],
                                        self.images, self.size)
        self.log.append({"stage": stage, "epoch": epoch, "step": step, **result})
        from tqdm import tqdm

        tqdm.write(f"validation after epoch {epoch}: val_l1 {result['val_l1']:.4f}, PSNR {result['psnr']:.2f} dB, "
                   f"CCI {result['cci']:.2f} ({result['val_images']} held-out photos)")
        return result
