"""The injection point of the shared trainer: what a *training method* gives it.

``scgan/`` may not import ``baselines/``, so the trainer knows no method by name. A method (SCGAN's own two-stage
recipe, :class:`scgan.training.scgan_method.ScganMethod`; each published baseline in ``baselines/train.py``) says
which networks to build, which optimiser each gets in each stage, what one step computes, how the generator
colorizes a sample grid and what else goes in the checkpoint. The trainer does the rest, the same for all: streaming
data, devices and DDP, seeded draws, the epoch loop and learning-rate schedule, checkpoints and bit-identical resume,
bf16 autocast and channels_last, losses.csv, sample grids, the progress bar and the NaN stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from scgan.errors import InputError

if TYPE_CHECKING:
    from scgan.training.trainer import Trainer


@dataclass(frozen=True)
class OptimiserSpec:
    """One optimiser of a stage: Adam (or Adadelta) over ``network``'s parameters at learning rate ``lr``; the stage's
    StepLR schedule applies to it when ``decays``."""

    network: str  #: key of the network in the method's ``build`` result
    lr: float
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    decays: bool = True


class TrainingMethod:
    """Base class of the methods the trainer runs (see the module docstring). Subclasses override what they need.

    ``spec``: ``None`` for SCGAN's generator built from the preset, else ``{"kind", "name", "options"}`` (plain JSON;
    stored in the checkpoint as ``"generator_spec"`` so that the result can be rebuilt, and compared on resume).
    ``uses_saliency``/``uses_labels``: the dataset loads saliency maps / class labels for :meth:`step` (set them by
    :meth:`build` at the latest).
    """

    spec: dict[str, Any] | None = None
    uses_saliency: bool = False
    uses_labels: bool = False
    #: the losses.csv columns of :meth:`step`'s losses, in order (the progress bar shows the first four)
    loss_columns: tuple[str, ...] = ("g_total",)

    def build(self, trainer: Trainer) -> dict[str, nn.Module | None]:
        """The networks by checkpoint key (``"generator"`` required; ``None`` for one that is absent in this run),
        built on the CPU after ``seed_everything(config.seed)``; the trainer moves them to the device."""
        raise NotImplementedError

    def init_source(self, trainer: Trainer) -> str:
        """Where the generator's initial weights beyond the seeded initialisation came from (recorded in the run)."""
        return "seeded random initialisation"

    def check(self, trainer: Trainer) -> None:
        """Called once the networks are on the device: raise InputError for a network that does not fit the run."""

    def has_stage(self, stage: int) -> bool:
        """Whether the method has stage 1 (SCGAN: L1 + attention) and stage 2; one-stage methods use stage 2."""
        return True

    def optimisers(self, trainer: Trainer, stage: int) -> dict[str, OptimiserSpec]:
        """The optimisers of ``stage`` by checkpoint key (``"g"`` for the generator's)."""
        raise NotImplementedError

    def ddp_module(self, key: str, net: nn.Module) -> nn.Module:
        """What DDP wraps for network ``key`` (default the network; e.g. a view whose forward is the one the loss
        calls, so that DDP synchronises its gradients)."""
        return net

    def unused_parameters(self, trainer: Trainer, key: str) -> bool:
        """Whether DDP must expect parameters of network ``key`` without a gradient (find_unused_parameters)."""
        return False

    def prepare(self, trainer: Trainer) -> None:
        """Before the first step of a fresh run (not on resume), with the training set at hand (may be None in
        tests): e.g. statistics of the training photos that the loss needs. Keep what :meth:`state` must save."""

    def step(self, trainer: Trainer, batch: tuple[torch.Tensor, ...], draws: dict[str, torch.Tensor]
             ) -> dict[str, float]:
        """One optimisation step of ``trainer.stage`` on this rank's ``batch`` = ``(rgb01, saliency[, labels])``
        with the step's seeded ``draws``; returns the losses to log (local values)."""
        raise NotImplementedError

    def colorize(self, generator: nn.Module, gray01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """For sample grids (eval mode, no gradient): gray (N, 1, S, S) in [0, 1] -> (RGB in [0, 1], saliency in
        [0, 1] or None)."""
        rgb, sal = generator(gray01 * 2 - 1)
        return ((rgb.float() + 1) / 2).clamp(0, 1), (sal.float() if sal is not None else None)

    def state(self) -> dict[str, Any]:
        """What the method adds to the checkpoint (tensors and plain data), under ``"method_state"``."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` on resume."""


# --------------------------------------------------------------------------------------------- generator specs
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
