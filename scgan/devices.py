"""The device an ``scgan`` command or the trainer computes on, from a name the user gave."""

from __future__ import annotations

import torch

from metrics.device import resolve_device as _resolve_name
from scgan.errors import InputError


def resolve_device(name: str | torch.device, option: str = "--device") -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available) as a ``torch.device`` (the rules of
    ``metrics.device.resolve_device``); anything else, or CUDA on a machine without a GPU, is an ``InputError`` naming
    ``option``."""
    try:
        return torch.device(_resolve_name(name))
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None
