"""The shared trainer: one loop for every training method (SCGAN's two stages, the published baselines).

(Just over 500 lines: about 70 are this runbook, and the loop, checkpoints and resume are one piece of state.)

Runbook
=======

Saliency maps first (once per data set), then the trainer (global features: a frozen ImageNet EfficientNet-Lite0 by
default; the paper's VGG-16-Gray needs ``scgan pretrain-global`` first; docs/training.md lists every deviation)::

    scgan saliency --data photos/ --out sal/ --model u2netp.onnx          # or --method spectral (no weights)
    scgan train --data photos/ --saliency sal/ --preset scgan-256 --val-data held_out/ --out runs/a
    scgan pretrain-global --data photos/ --out global.pt --preset scgan-256     # the paper's global features:
    scgan train ... --global-backbone vgg16-gray --global-init global.pt

Single CPU (small preset, a smoke run)::

    scgan train --data samples --saliency sal/ --preset scgan-tiny --batch-size 2 \\
        --stage1-epochs 2 --stage2-epochs 2 --out runs/cpu

Single GPU (picked automatically when present; bf16 autocast and channels_last are options)::

    scgan train --data photos/ --saliency sal/ --preset scgan-256 --out runs/gpu \\
        --amp bf16 --channels-last

Several GPUs on one machine (torchrun starts one process per GPU; ``--batch-size`` is the *global* batch, split evenly
over the processes, so the recipe does not change with the number of GPUs)::

    torchrun --standalone --nproc_per_node 8 -m scgan.cli train --data photos/ --saliency sal/ \\
        --preset scgan-256 --out runs/ddp --batch-size 64

Several machines (same command on each node, node_rank 0..N-1; the output folder must be on the node of rank 0)::

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m scgan.cli train ... --out runs/multi

Resume after a kill (any of the above with ``--resume``; the run's stored TrainConfig is used, the command line's
hyper-parameters are ignored)::

    scgan train --out runs/a --resume            # --data/--saliency/--preset are taken from the checkpoint

Every process reads the checkpoint on resume, so on several nodes RUN_DIR must be on a shared file system (or copied
to the same path on every node) before resuming.

The published baselines train through the same loop, with the same flags, devices, torchrun and resume, each from its
recipe (``scgan train-baseline --help`` lists them)::

    scgan train-baseline pix2pix --data photos/ --out runs/p2p
    scgan train-baseline zhang-eccv16 --data photos/ --out runs/eccv16 --amp bf16 --channels-last
    scgan train-baseline iizuka --data photos/ --labels labels.csv --out runs/iz
    scgan train-baseline pix2pix-sal --data photos/ --saliency sal/ --out runs/p2psal     # SCGAN's recipe
    scgan train-baseline pix2pix --out runs/p2p --resume

``baselines`` implements a :class:`~scgan.training.method.TrainingMethod` for each and passes it in (``train(config,
method=...)``), since ``scgan/`` may not import ``baselines/``. The checkpoint records the
method's ``generator_spec`` (``{"kind": "baseline", "name": ..., "options": ...}``) and a resume must pass an equal one.

What a run writes (rank 0 only; the other ranks compute): ``RUN_DIR/checkpoint.pt`` (the last good state, atomic;
SCGAN's is loadable by ``scgan colorize --model``), ``RUN_DIR/train_config.json``, ``RUN_DIR/losses.csv`` (one row per
step), ``RUN_DIR/samples/stage{1,2}_epoch{NNN}.png`` (gray | prediction | predicted saliency | ground truth).

Determinism (``scgan.training.rng``): the data order of epoch ``e`` is a permutation seeded by ``(seed, e)``; the
input noise and the gradient penalty's interpolation weights of global step ``t`` are drawn from a generator seeded by
``(seed, t)`` for the whole global batch, and each rank takes its slice. With ``--d-steps N`` > 1, critic update
``k`` = 1..N-1 of step ``t`` draws a fresh global batch of real images (distinct indices drawn uniformly from the
training set, seeded by ``(seed, t, k)``, sliced per rank), its fake (the generator's output for their noisy gray)
and fresh interpolation weights; the epoch's permutation is walked by the generator's updates only, so an epoch stays
``len(data) // batch`` steps. Hence a resumed run reaches the same weights as an uninterrupted one, and N ranks with
B/N images each compute the same update as one process with B images (up to float summation order, and with
BatchNorm aside: batch statistics are per rank; ``batchnorm="eval"`` makes them batch-size independent).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scgan.errors import InputError, ScganError
from scgan.losses import kernel_ops
from scgan.training.config import TrainConfig
from scgan.training.data import SaliencyPairedDataset, collate, epoch_batches, scan_training_set
from scgan.training.distributed import (
    DistInfo,
    average_over_ranks,
    resolve_device,
    setup_distributed,
    teardown_distributed,
    unwrap,
)
from scgan.training.method import TrainingMethod, check_generator_spec
from scgan.training.outputs import LossLog, prepare_run_folder, write_sample_grid
from scgan.training.rng import (
    critic_random,
    rng_state,
    seed_everything,
    seed_stochastic_layers,
    set_rng_state,
    step_random,
)

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingDiverged(ScganError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """Outcome of :func:`train`: where the checkpoint is, how far the run got, the last logged losses."""

    checkpoint: Path | None
    epoch: int
    step: int
    finished: bool
    last_losses: dict[str, float]


def _set_batchnorm_eval(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class Trainer:
    """Builds a method's networks, optimisers and data for a :class:`TrainConfig` and runs (or resumes) its stages.

    Use :func:`train` unless you need the pieces (tests and the benchmark use :meth:`train_step`).

    ``method``: the :class:`~scgan.training.method.TrainingMethod` to run; default SCGAN's recipe
    (:class:`~scgan.training.scgan_method.ScganMethod`), which ``generator``/``generator_spec`` give an injected
    generator (see there).
    """

    def __init__(self, config: TrainConfig, dist_info: DistInfo | None = None, progress: bool = True,
                 build_data: bool = True, generator: nn.Module | None = None,
                 generator_spec: dict[str, Any] | None = None, method: TrainingMethod | None = None):
        if method is None:
            from scgan.training.scgan_method import ScganMethod

            method = ScganMethod(generator, generator_spec)
        elif generator is not None or generator_spec is not None:
            raise InputError("pass either a training method or an injected generator (for SCGAN's recipe), not both")
        self.method = method
        config = config.resolved()  # settings that depend on others are fixed here and stored as numbers
        self.config = config
        self.dist = dist_info or DistInfo(device=resolve_device(config.device))
        self.device = self.dist.device
        self.progress = progress and self.dist.is_main
        if config.batch_size % self.dist.world_size:
            raise InputError(
                f"--batch-size {config.batch_size} (the global batch) must be divisible by the number of processes "
                f"({self.dist.world_size})"
            )
        self.local_batch = config.batch_size // self.dist.world_size
        self.rank_slice = slice(self.dist.rank * self.local_batch, (self.dist.rank + 1) * self.local_batch)
        self.model_config = config.model_config()
        self.size = self.model_config.image_size
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.ops = kernel_ops(config.kernels, self.device)
        self.out = Path(config.out) if config.out else None
        self.loss_log = LossLog(self.out / "losses.csv", method.loss_columns) if self.out is not None else None
        self.validation = None  # built with the data (it must know the training photos)
        if self.out is not None and self.out.exists() and not self.out.is_dir():  # not a FileExistsError traceback
            raise InputError(f"--out {self.out}: exists and is not a folder (the run folder)")
        if config.stage1_epochs > 0 and not method.has_stage(1):
            raise InputError(f"--stage1-epochs {config.stage1_epochs}: {self._method_name()} has no stage 1; its "
                             "epochs are --stage2-epochs")  # fmt: skip
        if self.out is not None and self.dist.is_main:  # apart from every input, created, writable, marked
            prepare_run_folder(config)

        seed_everything(config.seed)  # same initial weights on every rank
        self.networks: dict[str, nn.Module | None] = method.build(self)
        self.global_init_source = method.init_source(self)
        for net in self._networks():
            net.to(self.device, memory_format=self.memory_format)
        method.check(self)
        self.ddp = {key: self._wrap(key, net) for key, net in self.networks.items() if net is not None}

        self.stage = 1 if config.stage1_epochs > 0 else 2
        self.epoch = 0  # completed epochs (both stages counted)
        self.epoch_step = 0  # steps done inside the current epoch
        self.step = 0  # global steps done
        self._make_optimisers(self.stage)

        self.dataset = None
        if build_data:
            self.dataset = self._build_dataset()
            if config.val_data and self.out is not None and self.dist.is_main:
                from scgan.validation import EpochValidation

                self.validation = EpochValidation(config.val_data, config.val_count, config.policy, self.size,
                                                  self.out / "val.csv", self.dataset.entries)
            self.steps_per_epoch = len(self.dataset) // config.batch_size
            if self.steps_per_epoch == 0:
                raise InputError(
                    f"--batch-size {config.batch_size} is larger than the data set ({len(self.dataset)} images)"
                )

    # ---------------------------------------------------------------------------------------- the networks
    @property
    def generator(self) -> nn.Module:
        return self.networks["generator"]

    @property
    def disc_c(self) -> nn.Module | None:
        return self.networks.get("discriminator_c")

    @property
    def disc_a(self) -> nn.Module | None:
        return self.networks.get("discriminator_a")

    @property
    def generator_spec(self) -> dict[str, Any] | None:
        return self.method.spec

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.opt["g"]

    @property
    def opt_d(self) -> dict[str, torch.optim.Optimizer]:
        """The critics' optimisers (every optimiser but the generator's)."""
        return {key: opt for key, opt in self.opt.items() if key != "g"}

    def _method_name(self) -> str:
        return self.method.spec["name"] if self.method.spec else "SCGAN"

    def _networks(self) -> list[nn.Module]:
        return [n for n in self.networks.values() if n is not None]

    def _wrap(self, key: str, module: nn.Module) -> nn.Module:
        module = self.method.ddp_module(key, module)
        if not self.dist.distributed:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        unused = self.method.unused_parameters(self, key)
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused)

    def _make_optimisers(self, stage: int) -> None:
        """Fresh optimisers and StepLR schedules for ``stage``, as the method specifies them."""
        cfg = self.config
        self.opt: dict[str, torch.optim.Optimizer] = {}
        self.sched: dict[str, torch.optim.lr_scheduler.StepLR] = {}
        for key, spec in self.method.optimisers(self, stage).items():
            params = [p for p in self.networks[spec.network].parameters() if p.requires_grad]
            self.opt[key] = torch.optim.Adam(params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)
            step_size = cfg.lr_decay_every if spec.decays else 10**9
            self.sched[key] = torch.optim.lr_scheduler.StepLR(self.opt[key], step_size, cfg.lr_decay_factor)

    def _build_dataset(self) -> SaliencyPairedDataset:
        from scgan.paths import check_outputs_apart

        cfg = self.config
        # Checked here because Path("") is the current folder: an empty setting would silently read it.
        if not cfg.data:
            raise InputError("--data is required: an image folder, a list file or 'samples'")
        if self.method.uses_saliency and not cfg.saliency:
            raise InputError("--saliency is required: the folder of `scgan saliency` maps for the attention loss")
        if cfg.labels and not self.method.uses_labels:
            raise InputError(f"--labels {cfg.labels}: {self._method_name()} has no classification loss")
        entries = scan_training_set(cfg.data, cfg.labels, cfg.skip_bad, cfg.exclude_gray, report=self.dist.is_main)
        if self.out is not None and self.dist.is_main:  # a list file's photos may live anywhere
            check_outputs_apart({"--out": cfg.out}, {"training photo": [entry.path for entry in entries]})
        if self.method.uses_saliency:  # the maps must be `scgan saliency` maps of these very photos, on this crop
            from scgan.saliency import check_saliency_maps

            check_saliency_maps(cfg.saliency, entries, cfg.policy)
        # A method that reads no maps (no attention loss) gets zeros, so none are required.
        saliency = cfg.saliency if self.method.uses_saliency else None
        return SaliencyPairedDataset(entries, saliency, cfg.policy, self.size, labels=self.method.uses_labels)

    # -------------------------------------------------------------------------------------------- one step
    def autocast(self):
        """bf16 autocast when the run asks for it (``--amp bf16``), else a disabled autocast."""
        if self.config.amp == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=self.device.type, enabled=False)

    def train_mode(self) -> None:
        for net in self._networks():
            net.train()
            if self.config.batchnorm == "eval":
                _set_batchnorm_eval(net)

    def train_step(self, rgb01: torch.Tensor, sal: torch.Tensor, draws: dict[str, torch.Tensor],
                   labels: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step of the current stage on this rank's batch; returns the (local) losses.

        ``rgb01``: (n, 3, S, S) RGB in [0, 1]; ``sal``: (n, 1, S, S) in [0, 1]; ``draws``: :func:`step_random`;
        ``labels``: (n,) class labels (-1: none) for methods with a classification loss.
        """
        batch = (rgb01, sal) if labels is None else (rgb01, sal, labels)
        return self.method.step(self, batch, draws)

    def critic_batch(self, critic_step: int) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        """This rank's fresh real batch and draws for critic update ``critic_step`` >= 1 of the current step
        (:func:`scgan.training.rng.critic_random`; see the module docstring)."""
        if self.dataset is None:
            raise InputError("--d-steps > 1 draws fresh real batches from the training set: build the trainer's data")
        cfg = self.config
        draws = critic_random(cfg.seed, self.step, critic_step, len(self.dataset), cfg.batch_size, self.size,
                              self.rank_slice)  # fmt: skip
        return collate(self.dataset, draws["indices"].tolist()), draws

    # ---------------------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / CHECKPOINT_NAME if self.out else None

    def state(self) -> dict[str, Any]:
        """The checkpoint payload (``scgan.checkpoint`` format plus the trainer's keys)."""
        return {
            "config": self.model_config.to_dict(),
            # One key per network ("generator", "discriminator_c", ...; None: absent in this run).
            **{key: unwrap(net).state_dict() if net is not None else None for key, net in self.networks.items()},
            "networks": list(self.networks),
            # None: SCGAN's generator built from "config"; else the method's (the weights are that network's).
            "generator_spec": self.generator_spec,
            "method_state": self.method.state(),
            "train_config": self.config.to_dict(),
            "optimizers": {key: opt.state_dict() for key, opt in self.opt.items()},
            "schedulers": {key: sched.state_dict() for key, sched in self.sched.items()},
            "stage": self.stage,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "step": self.step,
            "rng": rng_state(),
            "global_init_source": self.global_init_source,
            "perceptual": self.config.perceptual,
            "kernels": self.ops.name,
        }

    def save(self) -> Path | None:
        if not self.dist.is_main or self.checkpoint_path is None:
            return None
        from scgan.checkpoint import save_checkpoint

        return save_checkpoint(self.checkpoint_path, self.state())

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        """Restore everything :meth:`state` saved (the networks were built from the same TrainConfig)."""
        from scgan.state_dict import load_state_dict_strict

        source = self.checkpoint_path or "checkpoint"
        check_generator_spec(checkpoint, self.generator_spec, source)
        for key, net in self.networks.items():
            if net is not None:
                load_state_dict_strict(net, checkpoint[key], source)
        self.method.load_state(checkpoint.get("method_state") or {})
        self.stage = int(checkpoint["stage"])
        self._make_optimisers(self.stage)
        for key in self.opt:
            self.opt[key].load_state_dict(checkpoint["optimizers"][key])
            self.sched[key].load_state_dict(checkpoint["schedulers"][key])
        self.epoch = int(checkpoint["epoch"])
        self.epoch_step = int(checkpoint["epoch_step"])
        self.step = int(checkpoint["step"])
        set_rng_state(checkpoint["rng"])

    # -------------------------------------------------------------------------------------------- outputs
    def _log_row(self, losses: dict[str, float]) -> None:
        if self.dist.is_main and self.loss_log is not None:
            lr_d = next(iter(self.opt_d.values())).param_groups[0]["lr"] if self.opt_d else ""
            self.loss_log.append({"stage": self.stage, "epoch": self.epoch + 1, "step": self.step,
                                  "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": lr_d, **losses})  # fmt: skip

    def write_samples(self) -> Path | None:
        """Grid PNG of the first ``sample_count`` images: gray | prediction | predicted saliency | ground truth."""
        if not self.dist.is_main or self.out is None or self.dataset is None or self.config.sample_count < 1:
            return None
        generator = unwrap(self.generator)
        was_training = generator.training
        generator.eval()
        try:
            path = self.out / "samples" / f"stage{self.stage}_epoch{self.epoch:03d}.png"
            return write_sample_grid(path, self.dataset, self.config.sample_count, self.method, generator, self.device)
        finally:
            generator.train(was_training)
            if was_training and self.config.batchnorm == "eval":
                _set_batchnorm_eval(generator)

    # ------------------------------------------------------------------------------------------- the loop
    def _loader(self, batches: list[list[int]]):
        local = [b[self.rank_slice] for b in batches]
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=local, num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )  # fmt: skip

    def total_epochs(self) -> int:
        return self.config.stage1_epochs + self.config.stage2_epochs

    def _diverged(self, losses: dict[str, float], bad: list[str]) -> TrainingDiverged:
        where = self.checkpoint_path if self.checkpoint_path and self.checkpoint_path.exists() else None
        return TrainingDiverged(
            f"non-finite loss ({', '.join(f'{k}={losses[k]}' for k in bad)}) at step {self.step + 1} "
            f"(stage {self.stage}, epoch {self.epoch + 1}); stopped; "
            + (f"last good checkpoint kept: {where}" if where else "no checkpoint written yet")
        )

    def run(self) -> TrainResult:
        from tqdm import tqdm

        cfg = self.config
        last: dict[str, float] = {}
        shown = self.method.loss_columns[:4]
        if cfg.stop_after_steps and self.step >= cfg.stop_after_steps:  # resumed past the stop: not one step more
            return TrainResult(self.checkpoint_path, self.epoch, self.step, self.epoch >= self.total_epochs(), last)
        while self.epoch < self.total_epochs():
            stage = 1 if self.epoch < cfg.stage1_epochs else 2
            if stage != self.stage:  # stage 1 -> 2: fresh optimisers at the stage-2 learning rates
                self.stage = stage
                self._make_optimisers(stage)
            self.train_mode()
            batches = epoch_batches(len(self.dataset), cfg.batch_size, cfg.seed, self.epoch)[self.epoch_step :]
            bar = tqdm(total=self.steps_per_epoch, initial=self.epoch_step, disable=not self.progress,
                       desc=f"stage {stage} epoch {self.epoch + 1}/{self.total_epochs()}", unit="step", leave=False)
            for batch in self._loader(batches):
                draws = step_random(cfg.seed, self.step, cfg.batch_size, self.size, self.rank_slice)
                seed_stochastic_layers(cfg.seed, self.step, self.dist.rank)
                losses = average_over_ranks(self.method.step(self, tuple(batch), draws), self.dist)
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    bar.close()
                    raise self._diverged(losses, bad)
                self.step += 1
                self.epoch_step += 1
                last = losses
                self._log_row(losses)
                bar.set_postfix({k: f"{losses[k]:.3g}" for k in shown if k in losses})
                bar.update(1)
                stop = cfg.stop_after_steps and self.step >= cfg.stop_after_steps
                end_of_epoch = self.epoch_step >= self.steps_per_epoch
                if end_of_epoch:
                    self.epoch += 1
                    self.epoch_step = 0
                    for sched in self.sched.values():
                        sched.step()
                    self.write_samples()
                    if self.validation is not None:  # --val-data: a val.csv row, printed
                        self.validation.run(self.method, unwrap(self.generator), self.device, self.stage, self.epoch,
                                            self.step)
                if end_of_epoch or stop or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                    self.save()
                if stop:
                    bar.close()
                    return TrainResult(self.checkpoint_path, self.epoch, self.step, False, last)
            bar.close()
        return TrainResult(self.checkpoint_path, self.epoch, self.step, True, last)


def train(config: TrainConfig, resume: bool = False, progress: bool = True, generator: nn.Module | None = None,
          generator_spec: dict[str, Any] | None = None, method: TrainingMethod | None = None) -> TrainResult:
    """Run (or, with ``resume``, continue) a training run; see the module docstring. Returns a :class:`TrainResult`.

    ``method``: the training method (default SCGAN's recipe). ``generator``/``generator_spec``: SCGAN's recipe on an
    injected generator (see :class:`~scgan.training.scgan_method.ScganMethod`). On ``resume`` pass the same method
    (freshly built: the checkpoint's weights are loaded into it) with an equal spec.
    Under torchrun (``WORLD_SIZE`` > 1) every process calls this; rank 0 writes the outputs.
    """
    if method is None:
        if (generator is None) != (generator_spec is None):
            raise InputError("train(): pass an injected generator together with its generator_spec, or neither")
        from scgan.training.scgan_method import ScganMethod

        method = ScganMethod(generator, generator_spec)
    elif generator is not None or generator_spec is not None:
        raise InputError("train(): pass either a training method or an injected generator, not both")
    dist_info = setup_distributed(config.device)
    try:
        if resume:
            from scgan.checkpoint import load_checkpoint, remove_leftover_temporaries

            out = Path(config.out)
            path = out / CHECKPOINT_NAME
            if not path.is_file():
                raise FileNotFoundError(f"--resume: no checkpoint in {out} (expected {path})")
            checkpoint = load_checkpoint(path)
            if dist_info.is_main:  # what a write killed with the run left beside the checkpoint
                remove_leftover_temporaries(path)
            check_generator_spec(checkpoint, method.spec, path)
            stored = TrainConfig.from_dict(checkpoint["train_config"])
            # The stored recipe wins; only where to write and when to stop come from this invocation.
            config = dataclasses.replace(stored, out=config.out, stop_after_steps=config.stop_after_steps,
                                         device=config.device, workers=config.workers)
        elif config.out and (Path(config.out) / CHECKPOINT_NAME).exists():
            raise InputError(
                f"{Path(config.out) / CHECKPOINT_NAME} exists: continue that run with --resume, or choose another --out"
            )
        trainer = Trainer(config, dist_info, progress=progress, method=method)
        if resume:
            trainer.load_state(checkpoint)
            if dist_info.is_main and trainer.loss_log is not None:
                trainer.loss_log.truncate(trainer.step)
            if trainer.validation is not None:
                trainer.validation.log.truncate(trainer.step)
        else:
            method.prepare(trainer)
            if dist_info.is_main and trainer.loss_log is not None:
                trainer.loss_log.reset()
            if trainer.validation is not None:
                trainer.validation.log.reset()
        if dist_info.is_main and trainer.out is not None:
            from scgan.atomic import write_text

            info = {"train_config": trainer.config.to_dict(), "model_config": trainer.model_config.to_dict(),
                    "global_init_source": trainer.global_init_source, "kernels": trainer.ops.name,
                    "generator_spec": trainer.generator_spec,
                    "world_size": dist_info.world_size, "device": str(dist_info.device)}
            write_text(trainer.out / "train_config.json", json.dumps(info, indent=2) + "\n")
        return trainer.run()
    finally:
        teardown_distributed(dist_info)


__all__ = ["CHECKPOINT_NAME", "TrainResult", "Trainer", "TrainingDiverged", "train"]
