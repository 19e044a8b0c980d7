"""Model configuration of SCGAN: one typed dataclass, the named presets, and the size rules.

A :class:`ModelConfig` fully determines the generator and the discriminators (`scgan.model.build_generator` /
`build_discriminator`); it is what checkpoints store (``ModelConfig.to_dict()`` under the ``"config"`` key) and what
`load_generator` rebuilds from. ``scgan-256`` is the paper's (and the released code's) architecture; the smaller presets
keep the same structure with fewer U-Net levels and narrower channels.

Size rule (the depth follows the input size): the U-Net has ``levels = log2(image_size)`` stride-2 convolutions, so its
bottleneck is 1x1 at the native size; the global features (VGG-16-Gray, 5 stride-2 convolutions) join the encoder at
1/32 of the input. A generator therefore takes any height and width that are multiples of ``image_size`` (the
bottleneck grows to (H/size) x (W/size)); the colorize pipeline always feeds it exactly ``image_size`` x ``image_size``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from scgan.errors import InputError

#: The number of stride-2 convolutions of the global feature network (VGG-16-Gray: conv1_2, conv2_2, conv3_3,
#: conv4_3 and the extra conv after conv5_3); its output is at 1/2**5 = 1/32 of the input.
GLOBAL_FEATURE_LEVELS = 5

#: The smallest image size with at least one U-Net level below the global-feature fusion level.
MIN_IMAGE_SIZE = 2 ** (GLOBAL_FEATURE_LEVELS + 1)

GLOBAL_INIT_CHOICES = ("pretrained", "random")

#: Global-feature backbones. ``vgg16-gray``: the paper's VGG-16-Gray (trained, initialised from ``scgan
#: pretrain-global``). ``efficientnet-lite0``: not in the paper; the project's packaged ImageNet EfficientNet-Lite0,
#: frozen, on the gray input, its pooled features projected to the fusion width (docs/model.md, "Global features").
GLOBAL_BACKBONE_CHOICES = ("vgg16-gray", "efficientnet-lite0")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an SCGAN generator and its PatchGAN discriminators.

    Attributes:
        name: preset name (recorded in checkpoints and ONNX metadata).
        image_size: native square input size in pixels (a power of two, at least 64); sets the U-Net depth.
        base_channels: channels of ``down1`` (the released code's ``start_channels``, 64); level ``i`` has
            ``min(base_channels * 2**i, max_channels)`` channels.
        max_channels: channel cap of the U-Net (512 in the paper).
        global_channels: widths of the five VGG-16 blocks of the global feature network (64, 128, 256, 512, 512);
            the last one is the number of global feature channels concatenated at 1/32.
        saliency_channels: width of the saliency branch (the released ``latent_channels``, 128).
        discriminator_channels: width of the first discriminator conv (64; then x2, x4, x8).
        spectral_norm: spectral normalisation on every generator conv (on in the released code). The discriminators
            always use it (the paper and the released code do).
        saliency: build the saliency branch (off = Table II row "without attention loss / saliency branch").
        global_features: build the global feature network (off = Table II row "without global feature network").
        global_backbone: ``"vgg16-gray"`` (the paper) or ``"efficientnet-lite0"`` (a frozen ImageNet classifier on the
            gray input, not in the paper; see :data:`GLOBAL_BACKBONE_CHOICES`).
        global_init: ``"pretrained"``: for ``vgg16-gray`` the trainer must load weights written by ``scgan
            pretrain-global`` into ``generator.global_features`` before training (the paper); for
            ``efficientnet-lite0`` the packaged ImageNet weights are loaded when the network is built (the only
            weights a build loads). ``"random"``: N(0, 0.02) init trained from scratch (Table II row "without
            pretrained global features"; ``vgg16-gray`` only).
        init_gain: standard deviation of the N(0, gain) conv weight init (BatchNorm weights get N(1, gain)).
        leaky_slope: negative slope of every LeakyReLU.
    """

    name: str = "scgan-256"
    image_size: int = 256
    base_channels: int = 64
    max_channels: int = 512
    global_channels: tuple[int, int, int, int, int] = (64, 128, 256, 512, 512)
    saliency_channels: int = 128
    discriminator_channels: int = 64
    spectral_norm: bool = True
    saliency: bool = True
    global_features: bool = True
    global_backbone: str = "vgg16-gray"
    global_init: str = "pretrained"
    init_gain: float = 0.02
    leaky_slope: float = 0.2
    # Fixed by the task (gray in, RGB out); kept in the config so that checkpoints are self-describing.
    in_channels: int = field(default=1)
    out_channels: int = field(default=3)

    def __post_init__(self) -> None:
        object.__setattr__(self, "global_channels", tuple(int(c) for c in self.global_channels))
        self.validate()

    # ----------------------------------------------------------------------------------------------------- checks
    def validate(self) -> None:
        """Raise :class:`InputError` naming the field when the configuration cannot build a network."""
        size = self.image_size
        if not isinstance(size, int) or size < MIN_IMAGE_SIZE or size & (size - 1):
            raise InputError(
                f"ModelConfig {self.name!r}: image_size must be a power of two >= {MIN_IMAGE_SIZE} "
                f"(global features join the U-Net at 1/32 and at least one level lies below), got {size!r}"
            )
        for key in ("base_channels", "max_channels", "saliency_channels", "discriminator_channels"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"ModelConfig {self.name!r}: {key} must be a positive integer, got {value!r}")
        if self.max_channels < self.base_channels:
            raise InputError(f"ModelConfig {self.name!r}: max_channels ({self.max_channels}) < base_channels")
        if len(self.global_channels) != 5 or min(self.global_channels) < 1:
            raise InputError(
                f"ModelConfig {self.name!r}: global_channels needs five positive widths (one per VGG-16 block), "
                f"got {self.global_channels!r}"
            )
        for key in ("spectral_norm", "saliency", "global_features"):
            # a checkpoint's config could hold "no" or 0 here; only True/False say what to build
            if not isinstance(getattr(self, key), bool):
                raise InputError(f"ModelConfig {self.name!r}: {key} must be True or False, got {getattr(self, key)!r}")
        if self.global_init not in GLOBAL_INIT_CHOICES:
            raise InputError(
                f"ModelConfig {self.name!r}: global_init must be one of {GLOBAL_INIT_CHOICES}, got {self.global_init!r}"
            )
        if self.global_backbone not in GLOBAL_BACKBONE_CHOICES:
            raise InputError(
                f"ModelConfig {self.name!r}: global_backbone must be one of {GLOBAL_BACKBONE_CHOICES}, "
                f"got {self.global_backbone!r}"
            )
        if self.global_features and self.global_backbone == "efficientnet-lite0" and self.global_init != "pretrained":
            raise InputError(
                f"ModelConfig {self.name!r}: the efficientnet-lite0 global backbone is the frozen ImageNet classifier "
                "(global_init 'pretrained'); a randomly initialised global network is the vgg16-gray ablation"
            )
        if (self.in_channels, self.out_channels) != (1, 3):
            raise InputError(f"ModelConfig {self.name!r}: SCGAN maps 1 gray channel to 3 RGB channels")
        if not self.init_gain > 0:
            raise InputError(f"ModelConfig {self.name!r}: init_gain must be > 0, got {self.init_gain!r}")

    # ------------------------------------------------------------------------------------------- derived sizes
    @property
    def levels(self) -> int:
        """Number of stride-2 U-Net convolutions (``down2`` .. ``down{levels+1}``): log2(image_size), 8 at 256."""
        return int(math.log2(self.image_size))

    @property
    def fusion_level(self) -> int:
        """U-Net level (number of stride-2 convs applied) at which the global features are concatenated: 5 (1/32)."""
        return GLOBAL_FEATURE_LEVELS

    def level_channels(self, level: int) -> int:
        """Channels of the encoder output at ``level`` (0 = ``down1`` at full size, ``levels`` = bottleneck)."""
        return min(self.base_channels * 2**level, self.max_channels)

    @property
    def size_multiple(self) -> int:
        """Generator inputs must have height and width divisible by this (= image_size: the bottleneck is 1x1)."""
        return 2**self.levels

    def check_input_size(self, height: int, width: int, what: str = "input") -> None:
        """Raise :class:`InputError` when the generator cannot take a (height, width) input, naming the valid sizes."""
        m = self.size_multiple
        if height < m or width < m or height % m or width % m:
            raise InputError(
                f"{what}: preset {self.name!r} takes heights and widths that are multiples of {m} "
                f"({m}, {2 * m}, {3 * m}, ...; the colorize pipeline resizes to {self.image_size}x{self.image_size}), "
                f"got {height}x{width}"
            )

    # ---------------------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON- and ``torch.load(weights_only=True)``-safe)."""
        data = dataclasses.asdict(self)
        data["global_channels"] = list(self.global_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a checkpoint from another tool or version)."""
        if not isinstance(data, dict):
            raise InputError(f"model config must be a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"model config has unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated), e.g. ``PRESETS['scgan-256'].replace(saliency=False)``."""
        return dataclasses.replace(self, **changes)


def _preset(name: str, size: int, width: int) -> ModelConfig:
    """Preset with all widths scaled from the paper's by ``width / 64``."""
    scale = width / 64
    return ModelConfig(
        name=name,
        image_size=size,
        base_channels=width,
        max_channels=int(512 * scale),
        global_channels=tuple(int(c * scale) for c in (64, 128, 256, 512, 512)),
        saliency_channels=int(128 * scale),
        discriminator_channels=width,
    )


#: Named configurations, largest first and smallest last. ``scgan-256`` is the paper's architecture.
PRESETS: dict[str, ModelConfig] = {
    "scgan-256": ModelConfig(),
    "scgan-128": _preset("scgan-128", 128, 32),
    "scgan-64": _preset("scgan-64", 64, 16),
    "scgan-tiny": _preset("scgan-tiny", 64, 4),
}


def get_config(preset_or_config: str | ModelConfig | dict) -> ModelConfig:
    """Resolve a preset name, a :class:`ModelConfig` or its dict form to a :class:`ModelConfig`."""
    if isinstance(preset_or_config, ModelConfig):
        return preset_or_config
    if isinstance(preset_or_config, dict):
        return ModelConfig.from_dict(preset_or_config)
    if isinstance(preset_or_config, str):
        try:
            return PRESETS[preset_or_config]
        except KeyError:
            raise InputError(
                f"unknown preset {preset_or_config!r}; presets: {', '.join(PRESETS)}"
            ) from None
    raise InputError(f"expected a preset name or a ModelConfig, got {type(preset_or_config).__name__}")
