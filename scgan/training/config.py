"""Typed recipes of the trainer and of the global-feature pretraining, importable without torch.

The command modules build their argument parsers from these defaults at ``scgan --help`` time, so this module must not
import torch (CONTRIBUTING: heavy imports inside ``run``). ``scgan.train`` and ``scgan.pretrain`` re-export them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from scgan.config import GLOBAL_BACKBONE_CHOICES  # torch-free, like this module
from scgan.errors import InputError

KERNEL_CHOICES = ("auto", "triton", "reference")
RECONSTRUCTION_CHOICES = ("l1", "l2")
GAN_CHOICES = ("wgan-gp", "lsgan")
GP_REDUCTION_CHOICES = ("sum", "mean")
TRAIN_CONFIG_VERSION = 2
#: Version 1 files predate ``global_backbone``; they trained the paper's VGG-16-Gray.
TRAIN_CONFIG_V1_DEFAULTS = {"global_backbone": "vgg16-gray", "gp_reduction": "sum"}
NUM_CLASSES = 1000


@dataclass
class TrainConfig:
    """Everything that determines a training run; stored in every checkpoint (``"train_config"``).

    Defaults are the paper's values (DESIGN section 5) unless a comment says otherwise.
    """

    # --- data --------------------------------------------------------------------------------------------------
    data: str = ""  #: image folder, list file or "samples" (scgan.data.list_images)
    saliency: str = ""  #: folder of saliency PNGs, paired by relative name (scgan saliency output)
    out: str = ""  #: run folder (checkpoint, logs, samples)
    policy: str = "squash256"  #: data-layer resize policy of the training crop (the paper squashes to 256)
    skip_bad: bool = False  #: skip unreadable images instead of stopping (they are listed)
    exclude_gray: bool = True  #: gray photos are not colour ground truth (DESIGN section 3)
    # --- model -------------------------------------------------------------------------------------------------
    preset: str = "scgan-256"  #: scgan.PRESETS name; images are resized to its image_size (antialiased) if needed
    #: NOT the paper's: "efficientnet-lite0" (frozen packaged ImageNet classifier on the gray input, no pretraining
    #: needed); "vgg16-gray" is the paper's VGG-16-Gray (needs --global-init)
    global_backbone: str = "efficientnet-lite0"
    global_init: str = ""  #: vgg16-gray: path of `scgan pretrain-global` output, or "none" (random init); required
    # --- schedule (paper) ---------------------------------------------------------------------------------------
    stage1_epochs: int = 10
    stage2_epochs: int = 30
    batch_size: int = 8  #: global batch (split over DDP ranks)
    lr_stage1: float = 2e-4
    lr_g: float = 1e-4  #: stage 2, generator
    lr_d: float = 1e-4  #: stage 2, both critics
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_every: int = 10  #: stage-2 epochs between halvings (StepLR)
    lr_decay_factor: float = 0.5
    d_steps: int = 1  #: critic updates per generator update
    # --- loss weights (paper) -----------------------------------------------------------------------------------
    w_reconstruction: float = 1.0
    w_attention: float = 0.5
    w_gan: float = 0.05
    w_perceptual: float = 5.0
    gp_weight: float = 10.0
    #: "sum": the penalty differentiates the sum of the critic's patch scores (the released code); "mean": their
    #: mean, the quantity the Wasserstein term averages (scgan.losses.gradient_penalty)
    gp_reduction: str = "sum"
    input_noise: float = 0.005  #: std of Gaussian noise added to the gray input ([-1, 1] scale)
    # --- ablations (Table II) -----------------------------------------------------------------------------------
    attention: bool = True  #: False: no attention loss, no saliency branch, no D_a (--no-attention)
    gan: str = "wgan-gp"  #: "wgan-gp", "lsgan" (--lsgan) or "none" (--no-gan)
    perceptual: str = "efficientnet-lite0"  #: "efficientnet-lite0", "vgg16:PATH" or "none" (--no-perceptual)
    reconstruction: str = "l1"  #: "l1" or "l2" (--l2)
    global_features: bool = True  #: False: no global feature network (--no-global)
    # --- execution ----------------------------------------------------------------------------------------------
    seed: int = 0
    kernels: str = "auto"  #: "auto" (Triton on CUDA, reference elsewhere), "triton", "reference"
    device: str = "auto"  #: "auto" (cuda:LOCAL_RANK when available, else cpu), "cpu", "cuda", "cuda:1", ...
    amp: str = "none"  #: "none" or "bf16" (autocast)
    channels_last: bool = False
    batchnorm: str = "train"  #: "train" (the paper); "eval": BatchNorm uses running statistics (batch-size independent)
    workers: int = 0  #: DataLoader worker processes
    checkpoint_every: int = 0  #: also checkpoint every N steps (0: at the end of each epoch only)
    stop_after_steps: int = 0  #: stop (resumably) once this many global steps are done (0: run to the end)
    sample_count: int = 4  #: images on the per-epoch sample grid

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
            (self.input_noise >= 0, "input_noise must be >= 0"),
            (min(self.w_reconstruction, self.w_attention, self.w_gan, self.w_perceptual, self.gp_weight) >= 0,
             "loss weights (w_reconstruction, w_attention, w_gan, w_perceptual, gp_weight) must be >= 0"),
            (self.sample_count >= 0, "sample_count must be >= 0"),
            (self.gan in (*GAN_CHOICES, "none"), f"gan must be one of {(*GAN_CHOICES, 'none')}"),
            (self.global_backbone in GLOBAL_BACKBONE_CHOICES,
             f"global_backbone must be one of {GLOBAL_BACKBONE_CHOICES}"),
            (self.gp_reduction in GP_REDUCTION_CHOICES, f"gp_reduction must be one of {GP_REDUCTION_CHOICES}"),
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
        if self.global_features and self.global_backbone == "efficientnet-lite0" and self.global_init not in ("", None):
            what = "random global features (--global-init none / --random-global)" if self.global_init == "none" else (
                f"--global-init {self.global_init}")
            raise InputError(
                f"{what} is for --global-backbone vgg16-gray (the paper's VGG-16-Gray); the default backbone "
                "efficientnet-lite0 is the frozen packaged ImageNet classifier and takes no --global-init"
            )

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
