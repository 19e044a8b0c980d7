"""SCGAN two-stage trainer (DESIGN section 5): stage 1 L1 + attention, stage 2 adds WGAN-GP on two critics + perceptual.

Runbook
=======

Saliency maps first (once per data set), then optionally the global features, then the trainer::

    scgan saliency --data photos/ --out sal/ --model u2netp.onnx          # or --method spectral (no weights)
    scgan pretrain-global --data photos/ --out global.pt --preset scgan-256
    scgan train --data photos/ --saliency sal/ --preset scgan-256 --global-init global.pt --out runs/a

Single CPU (small preset, a smoke run)::

    scgan train --data samples --saliency sal/ --preset scgan-tiny --global-init none --batch-size 2 \\
        --stage1-epochs 2 --stage2-epochs 2 --out runs/cpu

Single GPU (picked automatically when present; bf16 autocast and channels_last are options)::

    scgan train --data photos/ --saliency sal/ --preset scgan-256 --global-init global.pt --out runs/gpu \\
        --amp bf16 --channels-last

Several GPUs on one machine (torchrun starts one process per GPU; ``--batch-size`` is the *global* batch, split evenly
over the processes, so the recipe does not change with the number of GPUs)::

    torchrun --standalone --nproc_per_node 8 -m scgan.cli train --data photos/ --saliency sal/ \\
        --preset scgan-256 --global-init global.pt --out runs/ddp --batch-size 64

Several machines (same command on each node, node_rank 0..N-1; the output folder must be on the node of rank 0)::

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        -m scgan.cli train ... --out runs/multi

Resume after a kill (any of the above with ``--resume``; the run's stored TrainConfig is used, the command line's
hyper-parameters are ignored)::

    scgan train --out runs/a --resume            # --data/--saliency/--preset are taken from the checkpoint

Every process reads the checkpoint on resume, so on several nodes RUN_DIR must be on a shared file system (or copied
to the same path on every node) before resuming.

Another generator (e.g. the paper's Table III saliency variants ``pix2pix-sal`` / ``uresnet-sal`` from ``baselines``,
which ``scgan/`` may not import) is trained with the same recipe by injecting it: ``train(config,
generator=net, generator_spec={"kind": "baseline", "name": "pix2pix-sal", "options": {...}})`` (this is what
``scgan train-baseline pix2pix-sal`` does). The preset still gives the image size and both critics; the spec is stored
in the checkpoint (``"generator_spec"``) so the result can be rebuilt by whoever knows the kind, and a resume must
inject an equal spec.

What a run writes (rank 0 only; the other ranks compute): ``RUN_DIR/checkpoint.pt`` (the last good state, atomic;
loadable by ``scgan colorize --model``), ``RUN_DIR/train_config.json``, ``RUN_DIR/losses.csv`` (one row per step),
``RUN_DIR/samples/stage{1,2}_epoch{NNN}.png`` (gray | prediction | predicted saliency | ground truth).

Determinism: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)``; the input noise and the gradient
penalty's interpolation weights of global step ``t`` are drawn from a generator seeded by ``(seed, t)`` for the whole
global batch, and each rank takes its slice. Hence a resumed run reaches the same weights as an uninterrupted one, and
N ranks with B/N images each compute the same update as one process with B images (up to float summation order, and
with BatchNorm aside: batch statistics are per rank; ``batchnorm="eval"`` makes them batch-size independent).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scgan.errors import InputError, ScganError
from scgan.losses import AdversarialLoss, attention_loss, kernel_ops, reconstruction_loss
from scgan.training.config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
LOSS_COLUMNS = (
    "stage", "epoch", "step", "g_total", "reconstruction", "attention", "gan", "perceptual",
    "d_c", "d_a", "gp_c", "gp_a", "lr_g", "lr_d",
)  # fmt: skip

__all__ = [
    "TrainConfig", "Trainer", "TrainResult", "TrainingDiverged", "train", "step_random", "epoch_batches",
    "normalise_generator_spec",
]  # fmt: skip


class TrainingDiverged(ScganError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


# ------------------------------------------------------------------------------------------------ distributed
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
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: CUDA is not available on this machine")
        torch.cuda.set_device(dev)
    info = DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)
    if world_size > 1 and not (dist.is_available() and dist.is_initialized()):
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        info.initialised_here = True
    return info


# ---------------------------------------------------------------------------------------------------------- data
class SaliencyPairedDataset(torch.utils.data.Dataset):
    """Photos paired with their saliency maps by relative name.

    Item: ``(rgb, saliency)``: float32 ``(3, S, S)`` RGB in [0, 1] and ``(1, S, S)`` in [0, 1], where ``S`` is the
    model's image size. The photo goes through the data layer's resize policy (e.g. squash256), then, when ``S``
    differs from the policy size, an antialiased bilinear resize to ``S``; the map is resized bilinearly to ``S``.
    ``saliency_dir=None`` (the ``--no-attention`` ablation, which uses no map): the saliency is all zeros.
    """

    def __init__(self, entries: Sequence, saliency_dir: str | os.PathLike | None, policy: str, size: int):
        from scgan.data import get_resize_policy
        from scgan.saliency import map_names

        self.entries = list(entries)
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

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from scgan.saliency import load_map

        rgb = load_training_image(self.entries[index].path, self.policy, self.size)
        if self.map_paths is None:
            return rgb, torch.zeros(1, self.size, self.size)
        sal = fit_to_size(torch.from_numpy(load_map(self.map_paths[index]))[None], self.size)
        return rgb, sal


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
    generator = torch.Generator().manual_seed(_mix_seed(seed, 0x5EED, epoch))
    order = torch.randperm(num_items, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, num_items - batch_size + 1, batch_size)]


def _mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


def step_random(seed: int, step: int, global_batch: int, size: int, rank_slice: slice) -> dict[str, torch.Tensor]:
    """The random draws of one global step, for this rank's slice of the global batch.

    ``noise``: (n, 1, size, size) standard normal (scaled by the input-noise std by the caller); ``eps_c``/``eps_a``:
    (n,) uniform in [0, 1] (WGAN-GP interpolation weights of D_c and D_a).
    """
    generator = torch.Generator().manual_seed(_mix_seed(seed, 0xD1CE, step))
    noise = torch.randn(global_batch, 1, size, size, generator=generator)
    eps_c = torch.rand(global_batch, generator=generator)
    eps_a = torch.rand(global_batch, generator=generator)
    return {"noise": noise[rank_slice], "eps_c": eps_c[rank_slice], "eps_a": eps_a[rank_slice]}


def normalise_generator_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise the description of an injected generator: ``{"kind": str, "name": str, "options": dict}``.

    The spec is stored in checkpoints (opened with ``weights_only``) and in ``train_config.json``, so it must be plain
    JSON data; it is returned after a JSON round trip (tuples become lists), the form in which it is stored and compared
    on resume. Raises :class:`InputError` saying what is wrong.
    """
    if not isinstance(spec, dict):
        raise InputError(f"generator_spec must be a dict {{'kind', 'name', 'options'}}, got {type(spec).__name__}")
    kind, name, options = spec.get("kind"), spec.get("name"), spec.get("options", {})
    if not (isinstance(kind, str) and kind and isinstance(name, str) and name):
        raise InputError(f"generator_spec needs non-empty string 'kind' and 'name' entries, got {spec!r}")
    if not isinstance(options, dict):
        raise InputError(f"generator_spec 'options' must be a dict of build options, got {options!r}")
    try:
        return json.loads(json.dumps({**spec, "options": options}, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise InputError(f"generator_spec must hold plain JSON values (it is stored in the checkpoint): {exc}") from exc


def describe_generator_spec(spec: dict[str, Any] | None) -> str:
    """``'baseline:pix2pix-sal {options}'`` for a spec, ``"SCGAN's generator"`` for None (error messages)."""
    if not spec:
        return "SCGAN's generator (built from the preset)"
    return f"{spec['kind']}:{spec['name']} (options {spec.get('options', {})})"


# ---------------------------------------------------------------------------------------------------- RNG state
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


# ------------------------------------------------------------------------------------------------------ trainer
@dataclass
class TrainResult:
    """Outcome of :func:`train`: where the checkpoint is, how far the run got, the last logged losses."""

    checkpoint: Path | None
    epoch: int
    step: int
    finished: bool
    last_losses: dict[str, float]


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@contextlib.contextmanager
def _weights_frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Inside the block the modules' trainable parameters need no gradient (graphs built here give them none)."""
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _set_batchnorm_eval(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class Trainer:
    """Builds the networks, optimisers and data for a :class:`TrainConfig` and runs (or resumes) the two stages.

    Use :func:`train` unless you need the pieces (tests and the benchmark use :meth:`train_step`).

    ``generator``/``generator_spec``: train this module instead of ``build_generator(preset)`` (see the module
    docstring). It must map gray ``(N, 1, S, S)`` in [-1, 1] to ``(rgb (N, 3, S, S) tanh, saliency (N, 1, S, S)
    sigmoid or None)`` at the preset's size ``S`` (checked here with one forward pass); the saliency is required unless
    ``config.attention`` is off. Global-feature initialisation does not apply: ``config.global_init`` must be ``""``
    or ``"none"``. Seed the generator's construction yourself (every rank must build the same weights).
    """

    def __init__(self, config: TrainConfig, dist_info: DistInfo | None = None, progress: bool = True,
                 build_data: bool = True, generator: nn.Module | None = None,
                 generator_spec: dict[str, Any] | None = None):
        from scgan.model import build_discriminator, build_generator

        self.config = config
        self.dist = dist_info or DistInfo(device=_resolve_device(config.device))
        self.device = self.dist.device
        self.progress = progress and self.dist.is_main
        if config.batch_size % self.dist.world_size:
            raise InputError(
                f"--batch-size {config.batch_size} (the global batch) must be divisible by the number of processes "
                f"({self.dist.world_size})"
            )
        self.local_batch = config.batch_size // self.dist.world_size
        self.model_config = config.model_config()
        self.size = self.model_config.image_size
        self.ops = kernel_ops(config.kernels, self.device)
        self.adversarial = AdversarialLoss("wgan-gp" if config.gan == "none" else config.gan, config.gp_weight,
                                           config.gp_reduction)
        self.out = Path(config.out) if config.out else None
        if self.out is not None and self.out.exists() and not self.out.is_dir():  # not a FileExistsError traceback
            raise InputError(f"--out {self.out}: exists and is not a folder (the run folder)")
        if self.out is not None and self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)

        if generator is None and generator_spec is not None:
            raise InputError("generator_spec describes an injected generator: pass the generator as well")
        if generator is not None and generator_spec is None:
            raise InputError(
                "an injected generator needs a generator_spec {'kind', 'name', 'options'}: the checkpoint records "
                "it so that the result can be rebuilt and a resume can be checked"
            )
        self.generator_spec = normalise_generator_spec(generator_spec) if generator is not None else None

        seed_everything(config.seed)  # same initial weights on every rank
        if generator is None:
            self.generator = build_generator(self.model_config)
            self.global_init_source = self._init_global_features()
        else:
            if not isinstance(generator, nn.Module):
                raise InputError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
            if config.global_init not in ("", "none"):
                raise InputError(
                    f"--global-init {config.global_init}: global-feature weights are for SCGAN's generator; the "
                    f"injected generator {describe_generator_spec(self.generator_spec)} has no global feature network "
                    "(leave --global-init out or give 'none')"
                )
            self.generator = generator
            self.global_init_source = (
                f"not applicable (injected generator {describe_generator_spec(self.generator_spec)})"
            )
        self.disc_c = build_discriminator(self.model_config) if config.gan != "none" else None
        self.disc_a = build_discriminator(self.model_config) if config.gan != "none" and config.attention else None
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        for net in self._networks():
            net.to(self.device, memory_format=memory_format)
        if self.generator_spec is not None:
            self._check_injected_generator()
        self.perceptual = None
        if config.perceptual != "none" and config.stage2_epochs > 0:
            from scgan.perceptual import build_perceptual_loss

            self.perceptual = build_perceptual_loss(config.perceptual).to(self.device, memory_format=memory_format)

        self.g_ddp = self._wrap(self.generator)
        self.dc_ddp = self._wrap(self.disc_c) if self.disc_c is not None else None
        self.da_ddp = self._wrap(self.disc_a) if self.disc_a is not None else None

        self.stage = 1 if config.stage1_epochs > 0 else 2
        self.epoch = 0  # completed epochs (both stages counted)
        self.epoch_step = 0  # steps done inside the current epoch
        self.step = 0  # global steps done
        self._make_optimisers(self.stage)

        self.dataset = None
        if build_data:
            self.dataset = self._build_dataset()
            self.steps_per_epoch = len(self.dataset) // config.batch_size
            if self.steps_per_epoch == 0:
                raise InputError(
                    f"--batch-size {config.batch_size} is larger than the data set ({len(self.dataset)} images)"
                )

    # ---------------------------------------------------------------------------------------------- building
    def _networks(self) -> list[nn.Module]:
        return [n for n in (self.generator, self.disc_c, self.disc_a) if n is not None]

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.dist.distributed:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # An injected generator keeps its saliency head under --no-attention; no loss reaches it then, and DDP must
        # be told that some parameters get no gradient.
        unused = module is self.generator and self.generator_spec is not None and not self.config.attention
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused)

    def _check_injected_generator(self) -> None:
        """One forward pass (eval mode, no gradient) of a zero gray image at the preset's size: the injected generator
        must return ``(rgb (1, 3, S, S), saliency (1, 1, S, S) or None)``; InputError naming the spec otherwise."""
        what = f"injected generator {describe_generator_spec(self.generator_spec)}"
        size, preset = self.size, self.config.preset
        generator = self.generator
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                output = generator(torch.zeros(1, 1, size, size, device=self.device))
        except (RuntimeError, ValueError, InputError) as exc:
            raise InputError(
                f"{what} cannot take the {size}x{size} input of --preset {preset} ({exc}); choose a preset of the "
                "generator's size, or build options that suit this size"
            ) from exc
        finally:
            generator.train(was_training)
        if not (isinstance(output, tuple | list) and len(output) == 2):
            raise InputError(f"{what} must return (rgb, saliency), got {type(output).__name__}")
        rgb, saliency = output
        if not isinstance(rgb, torch.Tensor) or tuple(rgb.shape) != (1, 3, size, size):
            shape = tuple(rgb.shape) if isinstance(rgb, torch.Tensor) else type(rgb).__name__
            raise InputError(
                f"{what} returns rgb of shape {shape} for a (1, 1, {size}, {size}) input; --preset {preset} trains at "
                f"{size}x{size}, so it must return (1, 3, {size}, {size}) (choose a preset of the generator's size)"
            )
        if saliency is None:
            if self.config.attention:
                raise InputError(f"{what} returns no saliency map: the attention loss needs one (or --no-attention)")
        elif not isinstance(saliency, torch.Tensor) or tuple(saliency.shape) != (1, 1, size, size):
            shape = tuple(saliency.shape) if isinstance(saliency, torch.Tensor) else type(saliency).__name__
            raise InputError(f"{what} returns saliency of shape {shape}, expected (1, 1, {size}, {size})")

    def _init_global_features(self) -> str:
        from scgan.model import init_global_features

        return init_global_features(self.generator, self.config.global_init)

    def _make_optimisers(self, stage: int) -> None:
        cfg = self.config
        lr_g = cfg.lr_stage1 if stage == 1 else cfg.lr_g
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr_g, betas=cfg.betas)
        self.opt_d: dict[str, torch.optim.Optimizer] = {}
        if stage == 2:
            for key, net in (("d_c", self.disc_c), ("d_a", self.disc_a)):
                if net is not None:
                    self.opt_d[key] = torch.optim.Adam(net.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        # Stage 1: constant lr (the paper gives no decay); stage 2: halved every lr_decay_every epochs.
        step_size = cfg.lr_decay_every if stage == 2 else 10**9
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, step_size, cfg.lr_decay_factor)
        self.sched_d = {
            key: torch.optim.lr_scheduler.StepLR(opt, cfg.lr_decay_every, cfg.lr_decay_factor)
            for key, opt in self.opt_d.items()
        }

    def _build_dataset(self) -> SaliencyPairedDataset:
        from scgan.data import list_images, scan_images

        cfg = self.config
        # Checked here because Path("") is the current folder: an empty setting would silently read it.
        if not cfg.data:
            raise InputError("--data is required: an image folder, a list file or 'samples'")
        if cfg.attention and not cfg.saliency:
            raise InputError("--saliency is required: the folder of `scgan saliency` maps for the attention loss")
        entries = list_images(cfg.data)
        scan = scan_images(entries, skip_bad=cfg.skip_bad, exclude_gray=cfg.exclude_gray)
        if self.dist.is_main:
            for name, reason in scan.bad:
                print(f"train: skipped unreadable {name}: {reason}", file=sys.stderr)
            if scan.gray_excluded:
                print(f"train: {len(scan.gray_excluded)} gray image(s) excluded", file=sys.stderr)
        if not scan.kept:
            raise InputError(f"{cfg.data}: no usable colour images")
        if cfg.attention:  # the maps must be `scgan saliency` maps of these very photos, on this policy's crop
            from scgan.saliency import check_saliency_maps
            check_saliency_maps(cfg.saliency, scan.kept, cfg.policy)
        # Without the attention loss nothing reads the maps (no attention term, no D_a), so none are required.
        return SaliencyPairedDataset(scan.kept, cfg.saliency if cfg.attention else None, cfg.policy, self.size)

    # --------------------------------------------------------------------------------------------- one step
    def _autocast(self):
        if self.config.amp == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=self.device.type, enabled=False)

    def _prepare(self, rgb01: torch.Tensor, sal: torch.Tensor, draws: dict[str, torch.Tensor]):
        from metrics.color import rgb_to_gray

        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        rgb01 = rgb01.to(self.device, non_blocking=True)
        sal = sal.to(self.device, non_blocking=True).contiguous(memory_format=memory_format)
        gray = rgb_to_gray(rgb01) * 2 - 1
        rgb = (rgb01 * 2 - 1).contiguous(memory_format=memory_format)
        noisy = gray + self.config.input_noise * draws["noise"].to(self.device)
        return (gray.contiguous(memory_format=memory_format), noisy.contiguous(memory_format=memory_format), rgb, sal)

    def train_mode(self) -> None:
        for net in self._networks():
            net.train()
            if self.config.batchnorm == "eval":
                _set_batchnorm_eval(net)

    def train_step(self, rgb01: torch.Tensor, sal: torch.Tensor, draws: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step of the current stage on this rank's batch; returns the (local) losses.

        ``rgb01``: (n, 3, S, S) RGB in [0, 1]; ``sal``: (n, 1, S, S) in [0, 1]; ``draws``: :func:`step_random`.
        """
        cfg = self.config
        gray, noisy, rgb, sal = self._prepare(rgb01, sal, draws)
        logs: dict[str, float] = {}
        stage2_gan = self.stage == 2 and cfg.gan != "none"

        with self._autocast():
            pred_rgb, pred_sal = self.g_ddp(noisy)
        pred_rgb = pred_rgb.float()
        pred_sal = pred_sal.float() if pred_sal is not None else None
        if stage2_gan:
            # Critic update(s) on the detached prediction; the generator's graph is kept for its own update below
            # (the generator's weights do not change in between).
            for _ in range(cfg.d_steps):
                fake_sal = pred_sal.detach() if pred_sal is not None else None
                logs["d_total"] = self._critic_step(gray, rgb, sal, pred_rgb.detach(), fake_sal, draws, logs)

        losses: dict[str, torch.Tensor] = {}
        losses["reconstruction"] = reconstruction_loss(pred_rgb, rgb, cfg.reconstruction)
        total = cfg.w_reconstruction * losses["reconstruction"]
        if cfg.attention:
            losses["attention"] = attention_loss(self.ops, pred_rgb, pred_sal, rgb, sal)
            total = total + cfg.w_attention * losses["attention"]
        if self.stage == 2:
            if stage2_gan:
                # The critics only score the prediction here (unwrapped: no DDP gradient sync for a loss that does
                # not update them), with their weights frozen so the generator's backward skips their gradients.
                with self._autocast(), _weights_frozen(self.disc_c, self.disc_a):
                    gan = self.adversarial.generator(self.disc_c, gray, pred_rgb)
                    if self.disc_a is not None:
                        weighted = self.ops.weighted_image(pred_rgb, pred_sal)
                        gan = gan + self.adversarial.generator(self.disc_a, gray, weighted)
                losses["gan"] = gan.float()
                total = total + cfg.w_gan * losses["gan"]
            if self.perceptual is not None:
                with self._autocast():
                    losses["perceptual"] = self.perceptual(pred_rgb, rgb).float()
                total = total + cfg.w_perceptual * losses["perceptual"]
        losses["g_total"] = total
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        logs.update({k: float(v.detach()) for k, v in losses.items()})
        return logs

    def _critic_step(self, gray, rgb, sal, fake_rgb, fake_sal, draws, logs) -> float:
        total = 0.0
        pairs = [("d_c", self.dc_ddp, rgb, fake_rgb, draws["eps_c"], "gp_c")]
        if self.da_ddp is not None:
            real_w = self.ops.weighted_image(rgb, sal)
            fake_w = self.ops.weighted_image(fake_rgb, fake_sal)
            pairs.append(("d_a", self.da_ddp, real_w, fake_w, draws["eps_a"], "gp_a"))
        for key, critic, real, fake, eps, gp_key in pairs:
            with self._autocast():
                loss, parts = self.adversarial.critic(self.ops, critic, gray, real, fake, eps.to(self.device))
            opt = self.opt_d[key]
            opt.zero_grad(set_to_none=True)
            loss.float().backward()
            opt.step()
            logs[key] = float(loss.detach())
            if "gp" in parts:
                logs[gp_key] = parts["gp"]
            total += float(loss.detach())
        return total

    # -------------------------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / CHECKPOINT_NAME if self.out else None

    def state(self) -> dict[str, Any]:
        """The checkpoint payload (``scgan.checkpoint`` format plus the trainer's keys)."""
        return {
            "config": self.model_config.to_dict(),
            "generator": _unwrap(self.generator).state_dict(),
            # None: SCGAN's generator built from "config"; else what was injected (the weights are that network's).
            "generator_spec": self.generator_spec,
            "discriminator_c": self.disc_c.state_dict() if self.disc_c is not None else None,
            "discriminator_a": self.disc_a.state_dict() if self.disc_a is not None else None,
            "train_config": self.config.to_dict(),
            "optimizers": {"g": self.opt_g.state_dict(), **{k: o.state_dict() for k, o in self.opt_d.items()}},
            "schedulers": {"g": self.sched_g.state_dict(), **{k: s.state_dict() for k, s in self.sched_d.items()}},
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
        from scgan.model import load_state_dict_strict

        source = self.checkpoint_path or "checkpoint"
        check_generator_spec(checkpoint, self.generator_spec, source)
        load_state_dict_strict(self.generator, checkpoint["generator"], source)
        for net, key in ((self.disc_c, "discriminator_c"), (self.disc_a, "discriminator_a")):
            if net is not None:
                load_state_dict_strict(net, checkpoint[key], source)
        self.stage = int(checkpoint["stage"])
        self._make_optimisers(self.stage)
        self.opt_g.load_state_dict(checkpoint["optimizers"]["g"])
        self.sched_g.load_state_dict(checkpoint["schedulers"]["g"])
        for key in self.opt_d:
            self.opt_d[key].load_state_dict(checkpoint["optimizers"][key])
            self.sched_d[key].load_state_dict(checkpoint["schedulers"][key])
        self.epoch = int(checkpoint["epoch"])
        self.epoch_step = int(checkpoint["epoch_step"])
        self.step = int(checkpoint["step"])
        set_rng_state(checkpoint["rng"])

    # ---------------------------------------------------------------------------------------------- logging
    def _lrs(self) -> tuple[float, float | str]:
        lr_d = next(iter(self.opt_d.values())).param_groups[0]["lr"] if self.opt_d else ""
        return self.opt_g.param_groups[0]["lr"], lr_d

    def _log_row(self, losses: dict[str, float]) -> None:
        if not self.dist.is_main or self.out is None:
            return
        lr_g, lr_d = self._lrs()
        row = {"stage": self.stage, "epoch": self.epoch + 1, "step": self.step, "lr_g": lr_g, "lr_d": lr_d}
        row.update({k: f"{v:.6g}" for k, v in losses.items() if k in LOSS_COLUMNS})
        path = self.out / "losses.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOSS_COLUMNS, restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _truncate_log(self) -> None:
        """On resume: drop rows logged after the checkpoint's step (they will be recomputed), atomically."""
        if not self.dist.is_main or self.out is None:
            return
        path = self.out / "losses.csv"
        if not path.exists():
            return
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= self.step]
        from scgan.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOSS_COLUMNS, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write_samples(self) -> Path | None:
        """Grid PNG of the first ``sample_count`` images: gray | prediction | predicted saliency | ground truth."""
        if not self.dist.is_main or self.out is None or self.dataset is None or self.config.sample_count < 1:
            return None
        from metrics.color import rgb_to_gray
        from scgan.data import save_image

        count = min(self.config.sample_count, len(self.dataset))
        items = [self.dataset[i] for i in range(count)]
        rgb01 = torch.stack([x[0] for x in items]).to(self.device)
        generator = _unwrap(self.generator)
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            gray01 = rgb_to_gray(rgb01)
            pred, pred_sal = generator(gray01 * 2 - 1)
        generator.train(was_training)
        if was_training and self.config.batchnorm == "eval":
            _set_batchnorm_eval(generator)
        pred01 = ((pred.float() + 1) / 2).clamp(0, 1)
        sal_rgb = (pred_sal.float() if pred_sal is not None else torch.zeros_like(gray01)).expand(-1, 3, -1, -1)
        rows = [torch.cat([gray01.expand(-1, 3, -1, -1)[i], pred01[i], sal_rgb[i], rgb01[i]], dim=2)
                for i in range(count)]
        grid = torch.cat(rows, dim=1).cpu()
        path = self.out / "samples" / f"stage{self.stage}_epoch{self.epoch:03d}.png"
        save_image(grid, path)
        return path

    # ---------------------------------------------------------------------------------------------- the loop
    def _loader(self, batches: list[list[int]]):
        rank = self.dist.rank
        per = self.local_batch
        local = [b[rank * per : (rank + 1) * per] for b in batches]
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=local, num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
        )  # fmt: skip

    def _reduce(self, losses: dict[str, float]) -> dict[str, float]:
        """Average the logged losses over ranks (so every rank sees the same NaN decision)."""
        if not self.dist.distributed:
            return losses
        import torch.distributed as dist

        keys = sorted(losses)
        vec = torch.tensor([losses[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(vec)
        return {k: float(v) / self.dist.world_size for k, v in zip(keys, vec.tolist())}

    def total_epochs(self) -> int:
        return self.config.stage1_epochs + self.config.stage2_epochs

    def run(self) -> TrainResult:
        from tqdm import tqdm

        cfg = self.config
        last: dict[str, float] = {}
        rank_slice = slice(self.dist.rank * self.local_batch, (self.dist.rank + 1) * self.local_batch)
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
            for rgb01, sal in self._loader(batches):
                draws = step_random(cfg.seed, self.step, cfg.batch_size, self.size, rank_slice)
                # Stochastic layers (dropout, e.g. in an injected pix2pix U-Net) draw from torch's global generator:
                # seeding it per (step, rank) makes their masks independent of anything else that drew before (the
                # DataLoader takes a seed from it when an epoch starts, and a resume starts one mid-epoch).
                torch.manual_seed(_mix_seed(cfg.seed, 0xD207, self.step, self.dist.rank))
                losses = self._reduce(self.train_step(rgb01, sal, draws))
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    bar.close()
                    where = self.checkpoint_path if self.checkpoint_path and self.checkpoint_path.exists() else None
                    raise TrainingDiverged(
                        f"non-finite loss ({', '.join(f'{k}={losses[k]}' for k in bad)}) at step {self.step + 1} "
                        f"(stage {stage}, epoch {self.epoch + 1}); stopped; "
                        + (f"last good checkpoint kept: {where}" if where else "no checkpoint written yet")
                    )
                self.step += 1
                self.epoch_step += 1
                last = losses
                self._log_row(losses)
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k in ("g_total", "reconstruction",
                                                                                    "attention", "d_total")})
                bar.update(1)
                stop = cfg.stop_after_steps and self.step >= cfg.stop_after_steps
                end_of_epoch = self.epoch_step >= self.steps_per_epoch
                if end_of_epoch:
                    self.epoch += 1
                    self.epoch_step = 0
                    self.sched_g.step()
                    for sched in self.sched_d.values():
                        sched.step()
                    self.write_samples()
                if end_of_epoch or stop or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0):
                    self.save()
                if stop:
                    bar.close()
                    return TrainResult(self.checkpoint_path, self.epoch, self.step, False, last)
            bar.close()
        return TrainResult(self.checkpoint_path, self.epoch, self.step, True, last)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(device)


def check_generator_spec(checkpoint: dict[str, Any], spec: dict[str, Any] | None, source) -> None:
    """InputError unless ``checkpoint`` was trained with the same generator (``spec``: normalised, or None for SCGAN's
    own); the message names both and says how to resume."""
    stored = checkpoint.get("generator_spec")
    if stored == spec:
        return
    if stored and not spec:
        hint = (f"resume it with the same generator injected (`scgan train-baseline {stored['name']} --out RUN_DIR "
                "--resume`)" if stored.get("kind") == "baseline" else "resume it with the same generator injected")
    elif spec and not stored:
        hint = "it was trained with SCGAN's own generator: resume it with `scgan train --out RUN_DIR --resume`"
    else:
        hint = "inject the generator the run was started with"
    raise InputError(
        f"{source}: the run trained {describe_generator_spec(stored)}, but this resume has "
        f"{describe_generator_spec(spec)}; {hint}"
    )


def train(config: TrainConfig, resume: bool = False, progress: bool = True, generator: nn.Module | None = None,
          generator_spec: dict[str, Any] | None = None) -> TrainResult:
    """Run (or, with ``resume``, continue) a training run; see the module docstring. Returns a :class:`TrainResult`.

    ``generator``/``generator_spec``: train an injected generator instead of SCGAN's (see :class:`Trainer`); on
    ``resume`` inject it again (freshly built: the checkpoint's weights are loaded into it) with an equal spec.
    Under torchrun (``WORLD_SIZE`` > 1) every process calls this; rank 0 writes the outputs.
    """
    if (generator is None) != (generator_spec is None):
        raise InputError("train(): pass an injected generator together with its generator_spec, or neither")
    spec = normalise_generator_spec(generator_spec) if generator_spec is not None else None
    dist_info = setup_distributed(config.device)
    try:
        if resume:
            from scgan.checkpoint import load_checkpoint

            out = Path(config.out)
            path = out / CHECKPOINT_NAME
            if not path.is_file():
                raise FileNotFoundError(f"--resume: no checkpoint in {out} (expected {path})")
            checkpoint = load_checkpoint(path)
            check_generator_spec(checkpoint, spec, path)
            stored = TrainConfig.from_dict(checkpoint["train_config"])
            # The stored recipe wins; only where to write and when to stop come from this invocation.
            config = dataclasses.replace(stored, out=config.out, stop_after_steps=config.stop_after_steps,
                                         device=config.device, workers=config.workers)
        elif config.out and (Path(config.out) / CHECKPOINT_NAME).exists():
            raise InputError(
                f"{Path(config.out) / CHECKPOINT_NAME} exists: continue that run with --resume, or choose another --out"
            )
        trainer = Trainer(config, dist_info, progress=progress, generator=generator, generator_spec=generator_spec)
        if resume:
            trainer.load_state(checkpoint)
            trainer._truncate_log()
        elif dist_info.is_main and trainer.out is not None:
            trainer.out.mkdir(parents=True, exist_ok=True)
            (trainer.out / "losses.csv").unlink(missing_ok=True)
        if dist_info.is_main and trainer.out is not None:
            from scgan.atomic import write_text

            info = {"train_config": config.to_dict(), "model_config": trainer.model_config.to_dict(),
                    "global_init_source": trainer.global_init_source, "kernels": trainer.ops.name,
                    "generator_spec": trainer.generator_spec,
                    "world_size": dist_info.world_size, "device": str(dist_info.device)}
            write_text(trainer.out / "train_config.json", json.dumps(info, indent=2) + "\n")
        return trainer.run()
    finally:
        if dist_info.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()
