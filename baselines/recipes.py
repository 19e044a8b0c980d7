"""The recipe of each trainable baseline: the TrainConfig values its run starts from, what of TrainConfig it reads,
and where it is not its paper's (torch-free: `scgan train-baseline --help` lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Fields every method reads (data, schedule of its one stage, execution); a recipe lists what else applies.
COMMON_FIELDS = frozenset({
    "data", "out", "policy", "skip_bad", "preset", "stage2_epochs", "batch_size", "lr_g", "betas", "lr_decay_every",
    "lr_decay_factor", "weight_decay", "seed", "device", "amp", "channels_last", "batchnorm", "workers",
    "checkpoint_every", "stop_after_steps", "sample_count", "val_data", "val_count",
})  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """A baseline's starting TrainConfig values (``settings``), the extra fields it reads (``applies``; None: all,
    SCGAN's recipe) and what differs from its paper (``deviations``, shown by ``scgan train-baseline --help``)."""

    settings: dict[str, Any]
    applies: frozenset[str] | None
    paper: str
    deviations: str


_SCGAN_RECIPE = Recipe({}, None, "SCGAN's recipe (Zhao et al. 2020, section IV)",
                       "none beyond SCGAN's own (docs/training.md)")
RECIPES: dict[str, Recipe] = {
    "pix2pix-sal": _SCGAN_RECIPE,
    "uresnet-sal": _SCGAN_RECIPE,
    "pix2pix": Recipe(
        dict(stage1_epochs=0, stage2_epochs=6, batch_size=4, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
             lr_decay_factor=1.0, input_noise=0.0),
        COMMON_FIELDS | {"lr_d", "d_steps"},
        "Isola et al. 2017: Adam 2e-4, betas (0.5, 0.999), lambda_L1 100, D objective halved, dropout as noise; "
        "ImageNet colorization ~6 epochs at batch 4",
        "constant lr (the paper gives no colorization schedule; the PyTorch code's default decays linearly); the "
        "shared squash policy without the mirroring the paper's colorization experiment used (its appendix: "
        "ImageNet, batch 4, ~6 epochs, mirroring only)",
    ),
    "zhang-eccv16": Recipe(
        dict(stage1_epochs=0, stage2_epochs=14, batch_size=40, lr_g=3e-5, betas=(0.9, 0.99), weight_decay=1e-3,
             lr_decay_every=6, lr_decay_factor=1 / 3, input_noise=0.0),
        COMMON_FIELDS,
        "Zhang et al. 2016: Adam 3e-5, betas (0.9, 0.99), weight decay 1e-3, batch 40, ~450k iterations (~14 epochs "
        "of ImageNet), lr dropped to 1e-5 and 3e-6 at plateaus",
        "lr divided by 3 every 6 epochs (StepLR) instead of at observed plateaus",
    ),
    "zhang-siggraph17": Recipe(
        dict(stage1_epochs=0, stage2_epochs=15, batch_size=25, lr_g=1e-4, betas=(0.9, 0.999), lr_decay_factor=1.0,
             input_noise=0.0),
        COMMON_FIELDS,
        "Zhang et al. 2017, automatic mode: smooth-L1 (Huber) regression of ab without user hints; optimiser from "
        "the authors' PyTorch re-implementation (richzhang/colorization-pytorch: Adam 1e-4, betas (0.9, 0.999), "
        "batch 25, 176 px crops; classification stage then regression at 1e-5 and 1e-6)",
        "one regression stage at constant lr (the re-implementation first trains the 529-bin classification head, "
        "then regresses at 1e-5 and 1e-6, and its released loss is cross-entropy + 10 L1 rather than the paper's "
        "Huber); no simulated hints (automatic mode only); the shared squash policy instead of 176 px crops",
    ),
    "iizuka": Recipe(
        dict(stage1_epochs=0, stage2_epochs=11, batch_size=128, lr_g=1e-3, betas=(0.9, 0.999), lr_decay_factor=1.0,
             input_noise=0.0),
        COMMON_FIELDS | {"labels"},
        "Iizuka et al. 2016: MSE on chrominance + 1/300 scene classification, ADADELTA, batch 128, ~11 epochs of "
        "Places at 224 px",
        "Adam (lr 1e-3) instead of ADADELTA; trains at the preset's size (256 by default, 224 in the paper; the "
        "global branch sees its 224 resize either way)",
    ),
}


def recipe_config(name: str, **changes):
    """The TrainConfig a run of baseline ``name`` starts from (its recipe), with ``changes``."""
    from scgan.training.config import TrainConfig

    return TrainConfig(**{**RECIPES[name].settings, **changes})


