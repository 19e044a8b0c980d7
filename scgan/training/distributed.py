"""Process-group set-up of the trainer: torchrun's environment, the device of this process, DDP unwrapping."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from scgan.devices import resolve_device


@dataclass
class DistInfo:
    """Process-group facts: ``rank``/``world_size`` (1 process: 0/1) and the device this process computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (nccl on CUDA, gloo on CPU); pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dev.index is None:  # this process's GPU under torchrun
            dev = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(dev)
    info = DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)
    info.initialised_here = join_process_group("nccl" if dev.type == "cuda" else "gloo")
    return info


def join_process_group(backend: str) -> bool:
    """Join torchrun's process group with ``backend`` when ``WORLD_SIZE`` > 1 and no group is initialised yet.

    Returns True when the process group was initialised here (the caller destroys it when done). The one place that
    initialises a process group: the trainer (through :func:`setup_distributed`) and the sharded leaderboard.
    """
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    dist.init_process_group(backend=backend)
    return True


def teardown_distributed(info: DistInfo) -> None:
    """Leave the process group if :func:`setup_distributed` joined it."""
    if info.initialised_here:
        import torch.distributed as dist

        dist.destroy_process_group()


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def average_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """The mean of each value over the ranks (so that every rank takes the same NaN decision)."""
    if not info.distributed:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    vec = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(vec)
    return {k: float(v) / info.world_size for k, v in zip(keys, vec.tolist())}
