"""Training-step throughput (images/s): one full stage-2 step (generator + both WGAN-GP critics with gradient penalty +
perceptual loss) against its stage-1 peer (L1 + attention only), same preset, batch and run.

CPU by default at the small ``scgan-64`` preset; ``--runslow`` adds the paper's ``scgan-256`` layout at 256x256.
In CI the suite runs with ``--benchmark-disable`` (each step once, as a correctness test). Speed is reported as
images/s in ``extra_info`` and judged as the ratio stage 2 / stage 1 of the same run, never as an absolute time.
"""

from __future__ import annotations

import pytest
import torch

from scgan.training import TrainConfig, Trainer, step_random


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """On CPU, one intra-op thread: on shared CI machines multi-threaded timings mean little (see extra_info)."""
    previous = torch.get_num_threads()
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _trainer(preset: str, stage: int, batch: int) -> Trainer:
    config = TrainConfig(
        preset=preset, global_init="none",
        global_backbone="vgg16-gray", batch_size=batch, stage1_epochs=1 if stage == 1 else 0, stage2_epochs=1,
        perceptual="efficientnet-lite0", kernels="reference" if not torch.cuda.is_available() else "auto",
    )  # fmt: skip
    trainer = Trainer(config, build_data=False, progress=False)
    trainer.stage = stage
    trainer._make_optimisers(stage)
    trainer.train_mode()
    return trainer


def _bench_step(benchmark, preset: str, stage: int, batch: int) -> None:
    torch.manual_seed(0)
    trainer = _trainer(preset, stage, batch)
    size = trainer.size
    rgb, sal = torch.rand(batch, 3, size, size), torch.rand(batch, 1, size, size)
    draws = step_random(0, 0, batch, size, slice(0, batch))
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)

    def step():
        logs = trainer.train_step(rgb, sal, draws)
        sync()
        return logs

    logs = benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    if stage == 2:
        assert {"d_c", "d_a", "gp_c", "gp_a", "gan", "perceptual"} <= logs.keys()
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["images_per_s"] = batch / stats.stats.median
    # No peer: stage 1 and stage 2 are different work, so these rows report images/s (``items``) and no speed-up.
    benchmark.extra_info.update(items=batch, preset=preset, stage=stage, batch=batch, size=size,
                                device=str(trainer.device), threads=torch.get_num_threads(), kernels=trainer.ops.name)


@pytest.mark.parametrize("stage", [1, 2])
def test_train_step_small_preset(benchmark, stage):
    benchmark.group = "train-step scgan-64 batch 4"
    _bench_step(benchmark, "scgan-64", stage, batch=4)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2])
def test_train_step_scgan256(benchmark, stage):
    benchmark.group = "train-step scgan-256 batch 2"
    _bench_step(benchmark, "scgan-256", stage, batch=2)
