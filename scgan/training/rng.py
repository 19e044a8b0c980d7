"""Seeded random draws of the trainer, and the process RNG state a checkpoint saves.

Every draw of a training step comes from a ``torch.Generator`` seeded by ``(seed, purpose, step, ...)``, never from
what happened before, so a resumed run draws exactly what the uninterrupted one drew. Draws are made for the whole
global batch and each rank takes its slice, so N ranks with B/N images compute the update of one process with B.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# Purposes mixed into the seeds (any distinct constants; changing one changes every run's draws).
DATA_ORDER = 0x5EED
STEP_DRAWS = 0xD1CE
CRITIC_DRAWS = 0xC417
STOCHASTIC_LAYERS = 0xD207


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


def _gan_draws(generator: torch.Generator, global_batch: int, size: int, rank_slice: slice) -> dict[str, torch.Tensor]:
    noise = torch.randn(global_batch, 1, size, size, generator=generator)
    eps_c = torch.rand(global_batch, generator=generator)
    eps_a = torch.rand(global_batch, generator=generator)
    return {"noise": noise[rank_slice], "eps_c": eps_c[rank_slice], "eps_a": eps_a[rank_slice]}


def step_random(seed: int, step: int, global_batch: int, size: int, rank_slice: slice) -> dict[str, torch.Tensor]:
    """The random draws of one global step, for this rank's slice of the global batch.

    ``noise``: (n, 1, size, size) standard normal (scaled by the input-noise std by the caller); ``eps_c``/``eps_a``:
    (n,) uniform in [0, 1] (WGAN-GP interpolation weights of D_c and D_a). The first critic update of the step uses
    these with the step's own batch.
    """
    generator = torch.Generator().manual_seed(mix_seed(seed, STEP_DRAWS, step))
    return _gan_draws(generator, global_batch, size, rank_slice)


def critic_random(seed: int, step: int, critic_step: int, num_items: int, global_batch: int, size: int,
                  rank_slice: slice) -> dict[str, torch.Tensor]:
    """The draws of critic update ``critic_step`` >= 1 of global step ``step`` (``--d-steps`` > 1).

    ``indices``: the global batch of real images of this critic update, ``global_batch`` distinct indices into the
    training set drawn uniformly (independently of the epoch's permutation, which only the generator's updates walk
    through), sliced for this rank; ``noise``, ``eps_c``, ``eps_a``: as :func:`step_random` (the noise makes the fake
    batch: the generator's output for the gray of those images). Seeded by ``(seed, step, critic_step)``: a resume
    draws the same, and every rank draws the same global batch and takes its slice.
    """
    if critic_step < 1:
        raise ValueError("critic_random: critic update 0 uses the step's own batch and step_random")
    generator = torch.Generator().manual_seed(mix_seed(seed, CRITIC_DRAWS, step, critic_step))
    indices = torch.randperm(num_items, generator=generator)[:global_batch]
    return {"indices": indices[rank_slice], **_gan_draws(generator, global_batch, size, rank_slice)}


def seed_stochastic_layers(seed: int, step: int, rank: int) -> None:
    """Seed torch's global generator for one step on one rank.

    Stochastic layers (dropout, e.g. in pix2pix's U-Net) draw from it: seeding it per (step, rank) makes their masks
    independent of anything that drew before (the DataLoader takes a seed from it when an epoch starts, and a resume
    starts one mid-epoch).
    """
    torch.manual_seed(mix_seed(seed, STOCHASTIC_LAYERS, step, rank))


def rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / Python RNG states as tensors and plain lists (safe for ``weights_only`` loading)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }  # fmt: skip


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
