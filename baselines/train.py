"""Train the published baselines with the shared trainer (``scgan.training``): one :class:`TrainingMethod` each.

``scgan/`` may not import ``baselines/``, so the baselines come to the trainer as methods (``train(config,
method=...)``) and share everything else with SCGAN's runs: photos streamed from disk through the same data policy and
gray exclusion, ``--device`` and torchrun, seeded draws, checkpoints with bit-identical resume, the StepLR schedule,
bf16 autocast and channels_last, ``losses.csv``, sample grids and the progress bar.

- ``pix2pix-sal``, ``uresnet-sal`` (Table III of the SCGAN paper): SCGAN's own recipe
  (:class:`scgan.training.ScganMethod`) on the injected network (two stages, attention loss against ``--saliency``
  maps, WGAN-GP on both critics, perceptual loss).
- ``pix2pix``: 100 L1 + conditional GAN against the 70x70 PatchGAN (``Pix2PixMethod``).
- ``zhang-eccv16``: class-rebalanced cross-entropy over the 313 ab bins with the ab prior measured on the training
  photos before the first step and stored in the checkpoint (``method_state["ab_prior"]``); ``zhang-siggraph17``
  (automatic mode, no hints): smooth-L1 on ab; ``iizuka``: MSE + 1/300 classification when ``--labels`` are given
  (``SupervisedMethod``).

Each has a recipe (``baselines.recipes.RECIPES``): the TrainConfig values it starts from, the paper's where we follow
it, and the deviations named. One-stage methods use the stage-2 settings (``--stage2-epochs``, ``--lr-g``,
``--lr-decay-*``).
The run folder's ``checkpoint.pt`` (format ``scgan-bench/checkpoint/1``) records ``generator_spec = {"kind":
"baseline", "name": NAME, "options": {build options}}``; ``scgan export --baseline NAME --weights`` and
``load_method("NAME:RUN_DIR/checkpoint.pt")`` read it (:func:`read_build_options`, :func:`trained_size`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scgan.errors import InputError
from scgan.training.method import OptimiserSpec, TrainingMethod
from scgan.training.scgan_method import weights_frozen

from .recipes import RECIPES, recipe_config

__all__ = ["RECIPES", "Pix2PixMethod", "SupervisedMethod", "build_method", "read_build_options", "recipe_config",
           "train_baseline", "trained_size"]

#: Format of the checkpoints of the retired in-memory loop (still read, so that such files keep exporting).
CHECKPOINT_FORMAT = "scgan-bench/baseline/1"
#: Format tag of the trainer's checkpoints (``scgan.checkpoint.CHECKPOINT_FORMAT``; repeated here so reading build
#: options does not import the model code).
SCGAN_CHECKPOINT_FORMAT = "scgan-bench/checkpoint/1"
SPEC_KIND = "baseline"
def generator_spec(name: str, options: dict | None = None) -> dict:
    """What a trainer checkpoint records for the baseline ``name`` built with ``options``."""
    return {"kind": SPEC_KIND, "name": name, "options": dict(options or {})}


def _as_build_options(options: dict) -> dict:
    """Lists come back from tuples after a round trip through a checkpoint or JSON; the builders take tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(options).items()}


def _build(name: str, options: dict) -> nn.Module:
    from .registry import get_architecture

    try:
        return get_architecture(name).build(**options)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: bad --option build options {options}: {exc}") from exc


# --------------------------------------------------------------------------------------------------- methods
class BaselineMethod(TrainingMethod):
    """What the colour-only baselines share: one stage (stage 2), the architecture's network under ``"generator"``,
    sample grids through its colorizer contract."""

    def __init__(self, name: str, options: dict | None = None):
        from .registry import get_architecture

        self.name = name
        self.arch = get_architecture(name)
        self.options = _as_build_options(options or {})
        self.spec = generator_spec(name, options)

    def has_stage(self, stage: int) -> bool:
        return stage == 2

    def colorize(self, generator: nn.Module, gray01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.arch.colorizer(generator)(gray01).float().clamp(0, 1), None

    def check(self, trainer) -> None:
        if trainer.config.d_steps != 1 and "d_steps" not in (RECIPES[self.name].applies or ()):
            raise InputError(f"--d-steps {trainer.config.d_steps}: {self.name} has no critic")


class Pix2PixMethod(BaselineMethod):
    """pix2pix: U-Net generator (dropout as its noise), 70x70 PatchGAN on (gray, colour); per step ``d_steps``
    discriminator updates (0.5 BCE real + 0.5 BCE fake; updates 1.. on fresh draws), then the generator
    (BCE + 100 L1)."""

    loss_columns = ("g_total", "l1", "gan", "d")

    def build(self, trainer) -> dict[str, nn.Module | None]:
        from .archs.pix2pix import NLayerDiscriminator

        return {"generator": _build(self.name, self.options), "discriminator": NLayerDiscriminator(input_nc=4)}

    def optimisers(self, trainer, stage: int) -> dict[str, OptimiserSpec]:
        cfg = trainer.config
        return {"g": OptimiserSpec("generator", cfg.lr_g, cfg.betas, cfg.weight_decay),
                "d": OptimiserSpec("discriminator", cfg.lr_d, cfg.betas)}

    def _pair(self, trainer, rgb01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from metrics.color import rgb_to_gray

        rgb01 = rgb01.to(trainer.device, non_blocking=True)
        gray = (rgb_to_gray(rgb01) * 2 - 1).contiguous(memory_format=trainer.memory_format)
        return gray, (rgb01 * 2 - 1).contiguous(memory_format=trainer.memory_format)

    def _d_update(self, trainer, gray, real, fake) -> float:
        from .losses import pix2pix_discriminator_loss

        disc = trainer.ddp["discriminator"]
        with trainer.autocast():
            loss = pix2pix_discriminator_loss(disc(torch.cat([gray, real], 1)).float(),
                                              disc(torch.cat([gray, fake], 1)).float())
        trainer.opt["d"].zero_grad(set_to_none=True)
        loss.backward()
        trainer.opt["d"].step()
        return float(loss.detach())

    def step(self, trainer, batch, draws) -> dict[str, float]:
        from .losses import PIX2PIX_LAMBDA_L1

        gray, real = self._pair(trainer, batch[0])
        with trainer.autocast():
            fake = trainer.ddp["generator"](gray).float()
        logs = {"d": self._d_update(trainer, gray, real, fake.detach())}
        for critic_step in range(1, trainer.config.d_steps):
            extra, _ = trainer.critic_batch(critic_step)
            gray_k, real_k = self._pair(trainer, extra[0])
            with torch.no_grad(), trainer.autocast():
                fake_k = trainer.networks["generator"](gray_k).float()
            logs["d"] = self._d_update(trainer, gray_k, real_k, fake_k)
        disc = trainer.networks["discriminator"]
        with trainer.autocast(), weights_frozen(disc):
            logits = disc(torch.cat([gray, fake], 1)).float()
        gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        l1 = F.l1_loss(fake, real)
        total = gan + PIX2PIX_LAMBDA_L1 * l1
        trainer.opt["g"].zero_grad(set_to_none=True)
        total.backward()
        trainer.opt["g"].step()
        return {**logs, "g_total": float(total.detach()), "l1": float(l1.detach()), "gan": float(gan.detach())}


class _Logits(nn.Module):
    """ECCV 2016's class scores as the module's forward (what DDP wraps, so that the gradients are synchronised)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.net.logits(lightness)


class SupervisedMethod(BaselineMethod):
    """Zhang et al. ECCV 2016 (class-rebalanced CE), SIGGRAPH 2017 automatic mode (smooth-L1 on ab), Iizuka et al.
    (MSE + 1/300 CE with labels): one network, its paper's loss on the Lab of each photo (it sees only L)."""

    PART = {"zhang-eccv16": "cross_entropy", "zhang-siggraph17": "smooth_l1", "iizuka": "mse_plus_class"}

    def __init__(self, name: str, options: dict | None = None):
        super().__init__(name, options)
        self.uses_labels = name == "iizuka"
        self.loss_columns = ("g_total", self.PART[name])
        self.prior: torch.Tensor | None = None
        self.rebalance: torch.Tensor | None = None

    def build(self, trainer) -> dict[str, nn.Module | None]:
        return {"generator": _build(self.name, self.options)}

    def ddp_module(self, key: str, net: nn.Module) -> nn.Module:
        return _Logits(net) if self.name == "zhang-eccv16" else net

    def check(self, trainer) -> None:
        super().check(trainer)
        if self.name == "iizuka" and trainer.local_batch < 2:
            raise InputError(f"--batch-size {trainer.config.batch_size}: iizuka needs at least 2 images per process "
                             "(BatchNorm on its fully connected layers)")  # fmt: skip

    def unused_parameters(self, trainer, key: str) -> bool:
        return self.name == "iizuka"  # without labels no loss reaches the classification head

    def optimisers(self, trainer, stage: int) -> dict[str, OptimiserSpec]:
        cfg = trainer.config
        return {"g": OptimiserSpec("generator", cfg.lr_g, cfg.betas, cfg.weight_decay)}

    def prepare(self, trainer) -> None:
        """ECCV 2016: measure the ab prior on every training photo (streamed, at the training size) first."""
        if self.name != "zhang-eccv16":
            return
        from .losses import ab_prior

        if trainer.dataset is None:
            raise InputError("zhang-eccv16 measures its ab prior on the training photos: build the trainer's data")
        from tqdm import tqdm

        loader = torch.utils.data.DataLoader(trainer.dataset, batch_size=16, num_workers=trainer.config.workers)
        batches = tqdm(loader, disable=not trainer.progress, desc="ab prior of the training photos", leave=False)
        self.load_state({"ab_prior": ab_prior(batch[0] for batch in batches)})

    def state(self) -> dict[str, Any]:
        return {"ab_prior": self.prior} if self.prior is not None else {}

    def load_state(self, state: dict[str, Any]) -> None:
        from .losses import rebalancing_weights

        if "ab_prior" in state:
            self.prior = state["ab_prior"].to(torch.float64)
            self.rebalance = rebalancing_weights(self.prior).float()

    def step(self, trainer, batch, draws) -> dict[str, float]:
        from metrics.color import rgb_to_lab

        from .losses import class_rebalanced_cross_entropy, iizuka_loss

        rgb01 = batch[0].to(trainer.device, non_blocking=True)
        lab = rgb_to_lab(rgb01)
        lightness = lab[:, :1].contiguous(memory_format=trainer.memory_format)
        ab = lab[:, 1:]
        net = trainer.ddp["generator"]
        with trainer.autocast():
            if self.name == "zhang-eccv16":
                if self.rebalance is None:
                    raise InputError("zhang-eccv16: no ab prior measured (the trainer calls prepare() first)")
                logits = net(lightness).float()
            elif self.name == "zhang-siggraph17":
                pred_ab = net(lightness).float()
            else:
                chroma01, class_logits = net(lightness / 100.0)
        if self.name == "zhang-eccv16":
            loss = class_rebalanced_cross_entropy(logits, ab, self.rebalance.to(trainer.device))
        elif self.name == "zhang-siggraph17":
            loss = F.smooth_l1_loss(pred_ab / 110.0, ab / 110.0)
        else:
            labels = batch[2].to(trainer.device) if len(batch) > 2 else None
            loss = iizuka_loss(chroma01.float(), ab, class_logits.float(), labels)
        trainer.opt["g"].zero_grad(set_to_none=True)
        loss.backward()
        trainer.opt["g"].step()
        value = float(loss.detach())
        return {"g_total": value, self.PART[self.name]: value}


def build_method(name: str, options: dict | None, seed: int) -> TrainingMethod:
    """The training method of baseline ``name`` with build ``options``."""
    from scgan.training.scgan_method import ScganMethod

    from .registry import get_architecture

    options = _as_build_options(options or {})
    if get_architecture(name).has_saliency:
        torch.manual_seed(seed)  # the same initial weights on every rank and in every repetition
        return ScganMethod(_build(name, options), generator_spec(name, options))
    if name == "pix2pix":
        return Pix2PixMethod(name, options)
    return SupervisedMethod(name, options)


def train_baseline(name: str, config, options: dict | None = None, resume: bool = False, progress: bool = True):
    """Train (or, with ``resume``, continue) baseline ``name`` with the shared trainer; ``config``: a TrainConfig
    (start from :func:`recipe_config`); ``options``: build options, recorded in the checkpoint. On resume the network
    is rebuilt from the options the checkpoint records (``options``, when given, must equal them).
    Returns ``scgan.training.TrainResult``; the checkpoint is ``config.out/checkpoint.pt``."""
    from scgan.training import CHECKPOINT_NAME, normalise_generator_spec, train

    if resume:
        path = Path(config.out) / CHECKPOINT_NAME
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint in {config.out} (expected {path})")
        spec = _scgan_generator_spec(torch.load(str(path), map_location="cpu", weights_only=True))
        if spec is None or spec.get("name") != name:
            trained = f"baseline {spec['name']}" if spec else "no baseline (an SCGAN run or another file)"
            raise InputError(f"--resume: {path} trained {trained}, not {name}")
        stored = spec.get("options") or {}
        if options and normalise_generator_spec(generator_spec(name, options)) != normalise_generator_spec(spec):
            raise InputError(f"--resume: --option {options} differ from the run's build options {stored}")
        options = stored
        from scgan.checkpoint import load_checkpoint
        from scgan.training.config import TrainConfig

        seed = TrainConfig.from_dict(load_checkpoint(path)["train_config"]).seed
    else:
        seed = config.seed
    return train(config, resume=resume, progress=progress, method=build_method(name, options, seed))


# ------------------------------------------------------------------------------------ reading checkpoints
def _scgan_generator_spec(data: Any) -> dict | None:
    """The baseline ``generator_spec`` of a trainer checkpoint (None for anything else)."""
    if isinstance(data, dict) and data.get("format") == SCGAN_CHECKPOINT_FORMAT:
        spec = data.get("generator_spec")
        if isinstance(spec, dict) and spec.get("kind") == SPEC_KIND:
            return spec
    return None


def _load_if_torch_file(path: str | os.PathLike) -> Any:
    """The content of a PyTorch file (tensors only), or None when it is not one: the weights loader
    (``read_weights_file``) then reports that file as one clear error instead of a pickle traceback here."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # pickle/zip errors have many types; read_weights_file names the file and the reason
        return None


def read_build_options(path: str | os.PathLike) -> dict:
    """The build options stored in a checkpoint trained here ({} for other files): the ``generator_spec`` options of
    a trainer run, or ``build_options`` of a file of the retired loop."""
    data = _load_if_torch_file(path)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        return _as_build_options(data.get("build_options") or {})
    spec = _scgan_generator_spec(data)
    return _as_build_options(spec.get("options") or {}) if spec else {}


def trained_size(path: str | os.PathLike) -> int | None:
    """The training resolution recorded in a checkpoint trained here (None for other files): the preset's
    ``image_size`` of a trainer run, ``size`` of a file of the retired loop."""
    data = _load_if_torch_file(path)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT and data.get("size"):
        return int(data["size"])
    if _scgan_generator_spec(data) is not None:
        return int(data["config"]["image_size"])
    return None
