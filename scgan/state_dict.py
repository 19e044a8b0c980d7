"""Strict state-dict loading with an error that names the source and every mismatch (one home for the project).

``strict=True`` always: a weights file that does not fit the network is an error, never a partial load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from scgan.errors import InputError

LISTED_KEYS = 8  # keys named in an error message; the count says how many there are in all


def _listed(keys: list[str]) -> str:
    return f"{keys[:LISTED_KEYS]}{' ...' if len(keys) > LISTED_KEYS else ''} ({len(keys)} in all)"


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike,
                           *, fill_batchnorm_counters: bool = False) -> None:
    """Load ``state_dict`` into ``module`` with ``strict=True``, keys as they are.

    Any missing key, unexpected key or shape mismatch raises :class:`~scgan.errors.InputError` (a ``ValueError``)
    naming ``source`` (the file, or what the weights are) and the keys, before anything is loaded.

    ``fill_batchnorm_counters``: BatchNorm ``num_batches_tracked`` counters absent from the file are set to 0 instead
    of being missing keys. For released weights of other projects (saved by PyTorch < 0.4.1 or converted from
    Caffe/Torch7 they have none; the counters do not affect inference). This project's own files always hold them.
    """
    loaded = dict(state_dict)
    expected = module.state_dict()
    optional = {k for k in expected if fill_batchnorm_counters and k.endswith("num_batches_tracked")}
    missing = sorted(k for k in expected if k not in loaded and k not in optional)
    unexpected = sorted(k for k in loaded if k not in expected)
    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    for key, value in loaded.items():
        shape = tuple(getattr(value, "shape", ()))
        if key in expected and shape != tuple(expected[key].shape):
            problems.append(f"{key}: shape {shape} in the file, {tuple(expected[key].shape)} in the model")
    if problems:
        raise InputError(f"{source}: weights do not match the model: " + "; ".join(problems))
    for key in optional:
        if key not in loaded:
            loaded[key] = torch.zeros((), dtype=torch.long)
    module.load_state_dict(loaded, strict=True)
