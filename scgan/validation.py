"""Held-out validation of a generator during or after training: how well it colorizes photos it never saw.

One function, :func:`validate_generator`, used by the trainer's per-epoch validation, the loss-weight calibration
(``bench/loss_calibration.py``) and the short-training test. For each held-out colour photo (resize policy first, as
in training; gray photos are excluded):

- ``val_l1``: mean ``|G(gray) - rgb|`` at the network's size, both in ``[-1, 1]`` (what the reconstruction term of
  the training loss measures, on photos it was not trained on; no input noise);
- ``psnr`` (dB) and ``cci`` (Hasler-Suesstrunk colourfulness, signed variant): the predicted chroma recombined with
  the photo's own luminance at the policy's size (256x256 for ``squash256``), i.e. how the colorizer is used in
  practice (``scgan.colorize``, the ``wang`` protocol's recombination), measured on 8-bit values.

The generator runs in eval mode without gradients; its train/eval flags are restored afterwards.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from scgan.errors import InputError

__all__ = ["load_validation_images", "validate_generator"]


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


def validate_generator(generator: torch.nn.Module, images: torch.Tensor, batch_size: int = 32,
                       image_size: int | None = None) -> dict[str, float]:
    """``{"val_images", "val_l1", "psnr", "cci"}`` of ``generator`` on ``images`` (float (N, 3, H, W) RGB in [0, 1]).

    ``generator`` maps gray ``(n, 1, S, S)`` in ``[-1, 1]`` to ``(rgb in [-1, 1], saliency or None)``; ``S`` is
    ``image_size`` (default ``generator.config.image_size``).
    """
    from metrics.color import rgb_to_gray
    from metrics.functional import cci, psnr
    from scgan.colorize import recombine_lab

    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise InputError(f"validation images must be float (N, 3, H, W) RGB in [0, 1], got {tuple(images.shape)}")
    size = image_size or generator.config.image_size
    device = next(generator.parameters()).device
    was_training = [(m, m.training) for m in generator.modules()]
    generator.eval()
    l1, psnrs, ccis = [], [], []
    try:
        for start in range(0, images.shape[0], batch_size):
            full = images[start : start + batch_size]
            small = F.interpolate(full, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            small = small.clamp(0.0, 1.0)
            with torch.no_grad():
                rgb, _ = generator(rgb_to_gray(small).to(device) * 2 - 1)
            rgb = rgb.float().cpu()
            l1.append((rgb - (small * 2 - 1)).abs().mean(dim=(1, 2, 3)))
            colorized = recombine_lab(full, ((rgb + 1) / 2).clamp(0.0, 1.0))
            psnrs.append(psnr(colorized, full))
            ccis.append(cci(colorized))
    finally:
        for module, flag in was_training:
            module.training = flag
    return {
        "val_images": int(images.shape[0]),
        "val_l1": float(torch.cat(l1).mean()),
        "psnr": float(torch.cat(psnrs).double().mean()),
        "cci": float(torch.cat(ccis).double().mean()),
    }
