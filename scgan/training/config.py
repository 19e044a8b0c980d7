"""Typed recipes of the trainer and of the global-feature pretraining, importable without torch.

The command modules build their argument parsers from these fields (``scgan.training.flags``) at ``scgan --help`` time,
so this module must not import torch (CONTRIBUTING: heavy imports inside ``run``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from scgan.config import GLOBAL_BACKBONE_CHOICES  # torch-free, like this module
from scgan.errors import InputError

KERNEL_CHOICES = ("auto", "triton", "reference")
RECONSTRUCTION_CHOICES = ("l1", "l2")
GAN_CHOICES = ("wgan-gp", "lsgan")
GP_REDUCTION_CHOICES = ("sum", "mean")
TRAIN_CONFIG_VERSION = 2
#: Stage-2 perceptual weight with the EfficientNet-Lite0 features, chosen by the measured sweep of docs/training.md
#: ("Loss-weight calibration"); the paper's 5 (for VGG-16 conv3_3) made that term 99% of the generator loss.
EFFICIENTNET_W_PERCEPTUAL = 0.03
PAPER_W_PERCEPTUAL = 5.0
#: Version 1 files predate these fields; they trained the paper's VGG-16-Gray with the released code's penalty.
TRAIN_CONFIG_V1_DEFAULTS = {"global_backbone": "vgg16-gray", "gp_reduction": "sum", "w_perceptual": 5.0}
NUM_CLASSES = 1000


def _opt(default: Any, help: str, group: str, **cli: Any) -> Any:
    """A TrainConfig field whose command-line flag ``scgan.training.flags`` generates from this metadata.

    ``help``: the flag's help text (the field's documentation); ``group``: the help section. Optional ``cli`` keys:
    ``flag`` (the flag's name when not ``--field-name``; a bool defaulting to True gets ``--no-...``), ``choices``,
    ``metavar``, ``required`` (the flag must be given), ``type`` (the flag's type when the default is None),
    ``names`` (one flag per element of a tuple field), ``shortcuts`` (``{"--flag": value}``: flags that set the field
    to a value, e.g. ``--lsgan``), ``paper`` (the paper's value where the default differs; the help says so),
    ``flag_default`` (what the help shows as the default when it is not the field's), ``cli=False`` (no flag).
    """
    return field(default=default, metadata={"help": help, "group": group, **cli})


@dataclass
class TrainConfig:
    """Everything that determines a training run; stored in every checkpoint (``"train_config"``).

    Defaults are SCGAN's paper values (docs/training.md section 4) unless the field's ``paper`` metadata gives the
    paper's value. Each field's metadata is its documentation and generates its command-line flag (``scgan train``,
    ``scgan train-baseline``): adding a field here adds the flag. The published baselines start from their own
    recipes (``baselines/train.py``), which override some defaults.
    """

    # --- data --------------------------------------------------------------------------------------------------
    data: str = _opt("", "image folder, list file or 'samples' (required unless --resume)", "data")
    saliency: str = _opt("", "folder of saliency PNGs from `scgan saliency`, paired by relative name (not needed "
                         "with --resume or --no-attention)", "data")
    labels: str = _opt("", "labels CSV (file,label) for a method with a classification loss (iizuka)", "data")
    val_data: str = _opt("", "held-out photos (folder, list file or 'samples'), never trained on: after every epoch "
                         "RUN_DIR/val.csv gets their val_l1, PSNR and CCI (scgan.validation)", "data")
    val_count: int = _opt(64, "how many --val-data photos (the first by name; 0: all)", "data")
    out: str = _opt("", "run folder (checkpoint, losses.csv, samples)", "data", required=True)
    policy: str = _opt("squash256", "resize policy of the training crop (the paper squashes to 256)", "data")
    skip_bad: bool = _opt(False, "skip unreadable images (listed) instead of stopping", "data")
    exclude_gray: bool = _opt(True, "gray photos are not colour ground truth (always excluded)", "data", cli=False)
    # --- model -------------------------------------------------------------------------------------------------
    preset: str = _opt("scgan-256", "model preset (scgan.PRESETS): image size and critics; images are resized to "
                       "its image_size (antialiased) if needed", "model")
    global_backbone: str = _opt(
        "efficientnet-lite0", "global-feature network: efficientnet-lite0 (the packaged ImageNet classifier, frozen, "
        "on the gray input; no pretraining) or vgg16-gray (the paper's VGG-16-Gray, needs --global-init)", "model",
        choices=GLOBAL_BACKBONE_CHOICES, paper="vgg16-gray")
    global_init: str = _opt("", "vgg16-gray global features: CKPT from `scgan pretrain-global` (the paper) or 'none' "
                            "(random init); required with --global-backbone vgg16-gray unless --resume or --no-global",
                            "model", shortcuts={"--random-global": "none"}, flag_default=None)
    # --- schedule (paper) ---------------------------------------------------------------------------------------
    stage1_epochs: int = _opt(10, "stage 1 (L1 + attention) epochs", "schedule")
    stage2_epochs: int = _opt(30, "stage 2 (+ GAN, perceptual) epochs; one-stage methods: their epochs", "schedule")
    batch_size: int = _opt(8, "global batch (split over processes)", "schedule")
    lr_stage1: float = _opt(2e-4, "stage-1 generator learning rate", "schedule")
    lr_g: float = _opt(1e-4, "stage-2 generator learning rate", "schedule")
    lr_d: float = _opt(1e-4, "stage-2 critics' learning rate", "schedule")
    betas: tuple[float, float] = _opt((0.5, 0.999), "Adam betas", "schedule", names=("--beta1", "--beta2"))
    lr_decay_every: int = _opt(10, "stage-2 epochs per learning-rate decay (StepLR)", "schedule")
    lr_decay_factor: float = _opt(0.5, "stage-2 lr multiplier at each decay (0.5: halved)", "schedule")
    d_steps: int = _opt(1, "critic updates per generator update, each on a fresh real batch, fake batch and "
                        "interpolation", "schedule")
    weight_decay: float = _opt(0.0, "Adam weight decay of the generator", "schedule")
    # --- loss weights (paper) -----------------------------------------------------------------------------------
    w_reconstruction: float = _opt(1.0, "weight of the L1/L2 term", "loss weights")
    w_attention: float = _opt(0.5, "weight of the attention loss", "loss weights")
    w_gan: float = _opt(0.05, "weight of the adversarial loss (stage 2)", "loss weights")
    w_perceptual: float | None = _opt(
        None, "perceptual loss weight (stage 2); unset: chosen by the perceptual network when the run starts",
        "loss weights", type=float, paper=5.0,
        flag_default=f"{EFFICIENTNET_W_PERCEPTUAL} with efficientnet-lite0 (calibrated, docs/training.md), "
                     f"{PAPER_W_PERCEPTUAL} with vgg16:PATH (the paper)")
    gp_weight: float = _opt(10.0, "WGAN-GP penalty weight", "loss weights")
    gp_reduction: str = _opt(
        "mean", "what the gradient penalty differentiates: the mean of the critic's patch scores (the quantity the "
        "Wasserstein term averages; calibrated, docs/training.md) or their sum (the released code; the paper does "
        "not say; scgan.losses.gradient_penalty)", "loss weights", choices=GP_REDUCTION_CHOICES)
    input_noise: float = _opt(0.005, "std of Gaussian noise added to the gray input ([-1, 1] scale)", "loss weights")
    # --- ablations (Table II) -----------------------------------------------------------------------------------
    attention: bool = _opt(True, "no attention loss, no saliency branch, no D_a", "ablations (paper Table II)",
                           flag="--no-attention")
    gan: str = _opt("wgan-gp", "adversarial loss", "ablations (paper Table II)", choices=(*GAN_CHOICES, "none"),
                    shortcuts={"--lsgan": "lsgan", "--no-gan": "none"})
    perceptual: str = _opt("efficientnet-lite0", "perceptual network: efficientnet-lite0 (packaged ImageNet "
                           "weights), vgg16:PATH.pth or none", "ablations (paper Table II)",
                           shortcuts={"--no-perceptual": "none"})
    reconstruction: str = _opt("l1", "reconstruction loss", "ablations (paper Table II)",
                               choices=RECONSTRUCTION_CHOICES, shortcuts={"--l2": "l2"})
    global_features: bool = _opt(True, "no global feature network", "ablations (paper Table II)", flag="--no-global")
    # --- execution ----------------------------------------------------------------------------------------------
    seed: int = _opt(0, "seed of weights, data order, noise", "execution")
    kernels: str = _opt("auto", "fused attention-loss/GP kernels: Triton, the PyTorch reference, or auto (Triton "
                        "where it can run)", "execution", choices=KERNEL_CHOICES)
    device: str = _opt("auto", "auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda, cuda:N", "execution")
    amp: str = _opt("none", "autocast dtype (GPU)", "execution", choices=("none", "bf16"))
    channels_last: bool = _opt(False, "channels_last memory format (GPU)", "execution")
    batchnorm: str = _opt("train", "train (paper) or eval (running statistics: batch-size independent)",
                          "execution", choices=("train", "eval"))
    workers: int = _opt(0, "DataLoader worker processes", "execution")
    checkpoint_every: int = _opt(0, "also checkpoint every N steps (0: at the end of each epoch only)", "execution")
    stop_after_steps: int = _opt(0, "stop (resumably) once this many global steps are done (0: run to the end)",
                                 "execution")
    sample_count: int = _opt(4, "images on the per-epoch sample grid", "execution")

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` naming the field for values that cannot train."""
        checks = [
            (self.stage1_epochs >= 0 and self.stage2_epochs >= 0, "stage epochs must be >= 0"),
            (self.stage1_epochs + self.stage2_epochs > 0, "stage1_epochs + stage2_epochs must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr_stage1 > 0 and self.lr_g > 0 and self.lr_d > 0, "learning rates must be > 0"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas must be two values in [0, 1)"),
            (self.lr_decay_every >= 1 and 0 < self.lr_decay_factor <= 1, "lr decay: every >= 1, factor in (0, 1]"),
            (self.d_steps >= 1, "d_steps must be >= 1"),
            (self.input_noise >= 0 and self.weight_decay >= 0, "input_noise and weight_decay must be >= 0"),
            (min(self.w_reconstruction, self.w_attention, self.w_gan, self.w_perceptual or 0.0, self.gp_weight) >= 0,
             "loss weights (w_reconstruction, w_attention, w_gan, w_perceptual, gp_weight) must be >= 0"),
            (self.sample_count >= 0 and self.val_count >= 0, "sample_count and val_count must be >= 0"),
            (self.gan in (*GAN_CHOICES, "none"), f"gan must be one of {(*GAN_CHOICES, 'none')}"),
            (self.gp_reduction in GP_REDUCTION_CHOICES, f"gp_reduction must be one of {GP_REDUCTION_CHOICES}"),
            (self.global_backbone in GLOBAL_BACKBONE_CHOICES,
             f"global_backbone must be one of {GLOBAL_BACKBONE_CHOICES}"),
            (self.reconstruction in RECONSTRUCTION_CHOICES, f"reconstruction must be one of {RECONSTRUCTION_CHOICES}"),
            (self.kernels in KERNEL_CHOICES, f"kernels must be one of {KERNEL_CHOICES}"),
            (self.amp in ("none", "bf16"), "amp must be 'none' or 'bf16'"),
            (self.batchnorm in ("train", "eval"), "batchnorm must be 'train' or 'eval'"),
            (self.perceptual in ("none", "efficientnet-lite0") or self.perceptual.startswith("vgg16:"),
             "perceptual must be 'efficientnet-lite0', 'vgg16:PATH' or 'none'"),
            (self.workers >= 0 and self.checkpoint_every >= 0 and self.stop_after_steps >= 0,
             "workers, checkpoint_every and stop_after_steps must be >= 0"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise InputError(f"TrainConfig: {message}")
        # (A --global-init PATH with this backbone is refused where the weights would be loaded, naming the
        # generator: scgan.checkpoint.init_global_features, or the injected generator's check.)
        if self.global_features and self.global_backbone == "efficientnet-lite0" and self.global_init == "none":
            raise InputError(
                "random global features (--global-init none / --random-global) are for --global-backbone vgg16-gray "
                "(the paper's VGG-16-Gray); the default backbone efficientnet-lite0 is the frozen packaged ImageNet "
                "classifier and takes no --global-init"
            )

    def resolved(self) -> TrainConfig:
        """This config with the settings that depend on others filled in (what a run stores and trains with): an
        unset ``w_perceptual`` becomes the paper's 5 for ``vgg16:PATH`` and the calibrated value otherwise."""
        if self.w_perceptual is not None:
            return self
        weight = PAPER_W_PERCEPTUAL if self.perceptual.startswith("vgg16:") else EFFICIENTNET_W_PERCEPTUAL
        return dataclasses.replace(self, w_perceptual=weight)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        data["version"] = TRAIN_CONFIG_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        version = data.pop("version", TRAIN_CONFIG_VERSION)
        if version == 1:
            data = {**TRAIN_CONFIG_V1_DEFAULTS, **data}
        elif version != TRAIN_CONFIG_VERSION:
            raise InputError(f"train config version {version} is not {TRAIN_CONFIG_VERSION} (another release)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"train config has unknown keys {unknown}")
        return cls(**data)

    def model_config(self):
        """The preset's ModelConfig with the architectural ablations applied."""
        from scgan.config import get_config

        random_global = self.global_init == "none"
        return get_config(self.preset).replace(
            saliency=self.attention,
            global_features=self.global_features,
            global_backbone=self.global_backbone,
            global_init="random" if (random_global or not self.global_features) else "pretrained",
        )


@dataclass
class PretrainConfig:
    """Settings of ``scgan pretrain-global`` (defaults for a GPU run on an ImageNet-sized folder)."""

    data: str = ""
    out: str = ""
    labels: str | None = None  #: labels CSV (file,label); None: distillation from EfficientNet-Lite0
    preset: str = "scgan-256"
    policy: str = "squash256"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    temperature: float = 2.0  #: distillation softening temperature
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    skip_bad: bool = False
    workers: int = 0  #: DataLoader worker processes decoding images

    def validate(self) -> None:
        if self.workers < 0:
            raise InputError(f"--workers must be >= 0, got {self.workers}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or not self.temperature > 0:
            raise InputError("pretrain-global: epochs, batch size, lr and temperature must be positive")
        if not 0 < self.val_fraction < 1:
            raise InputError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
