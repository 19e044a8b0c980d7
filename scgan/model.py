"""SCGAN networks (Zhao et al., IEEE TCSVT 2020): generator with global features and saliency branch, PatchGAN critic.

Layer facts follow docs/model.md (paper + released code); module names follow the released code (``down1``,
``up9``, ``conv5_3``, ``pool5``, ...) so that a layer can be found by the name the paper's code uses.

Conventions of this module:
- generator input: gray ``(N, 1, H, W)`` float in ``[-1, 1]`` (the paper's normalisation of BT.601 luma);
  outputs ``(rgb, saliency)``: rgb ``(N, 3, H, W)`` in ``[-1, 1]`` (tanh), saliency ``(N, 1, H, W)`` in ``[0, 1]``
  (sigmoid) or ``None`` when the configuration has no saliency branch. H and W must be multiples of
  ``config.image_size`` (see :meth:`scgan.config.ModelConfig.check_input_size`).
- discriminator input: gray ``(N, 1, H, W)`` and RGB ``(N, 3, H, W)``, both in ``[-1, 1]``; output
  ``(N, 1, ceil(H/8) - 2, ceil(W/8) - 2)`` patch scores (30x30 at 256; no sigmoid: WGAN-GP critic).
- every conv: reflection padding, no bias; N(0, init_gain) weight init applied to the *unnormalised* weight, before
  spectral normalisation wraps it (the released code initialises ``m.weight`` after wrapping, which is a no-op).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from scgan.config import ModelConfig, get_config
from scgan.errors import InputError
from scgan.state_dict import load_state_dict_strict

__all__ = [
    "ConvBlock",
    "GlobalFeatureNetwork",
    "EfficientNetGlobalFeatures",
    "SaliencyBranch",
    "Generator",
    "PatchDiscriminator",
    "build_generator",
    "build_discriminator",
    "build_global_features",
    "count_parameters",
    "batchnorm_batch_statistics",
    "fold_spectral_norm",
]


class ConvBlock(nn.Module):
    """[nearest x2 upsample] -> reflection pad -> conv (no bias) [-> BatchNorm] [-> activation].

    The released code's ``Conv2dLayer`` (``upsample=False``) and ``TransposeConv2dLayer`` (``upsample=True``: despite
    its name, a nearest-neighbour upsample followed by a plain convolution).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        padding: int | None = None,
        norm: bool = True,
        activation: str | None = "lrelu",
        upsample: bool = False,
        spectral_norm: bool = True,
        init_gain: float = 0.02,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel_size // 2 if padding is None else padding)
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=0, bias=False)
        # Initialise the plain weight first: spectral_norm keeps it as `parametrizations.weight.original` and runs
        # its power iteration on it, so the N(0, gain) init really reaches the normalised weight.
        nn.init.normal_(conv.weight, 0.0, init_gain)
        self.conv = parametrizations.spectral_norm(conv) if spectral_norm else conv
        self.norm = nn.BatchNorm2d(out_channels) if norm else None
        if self.norm is not None:
            nn.init.normal_(self.norm.weight, 1.0, init_gain)
            nn.init.zeros_(self.norm.bias)
        if activation == "lrelu":
            self.activation: nn.Module | None = nn.LeakyReLU(leaky_slope)
        elif activation == "tanh":
            self.activation = nn.Tanh()
        elif activation == "sigmoid":
            self.activation = nn.Sigmoid()
        elif activation is None:
            self.activation = None
        else:
            raise ValueError(f"unknown activation {activation!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def _block_factory(config: ModelConfig, spectral_norm: bool):
    def block(*args, **kwargs) -> ConvBlock:
        kwargs.setdefault("spectral_norm", spectral_norm)
        return ConvBlock(*args, init_gain=config.init_gain, leaky_slope=config.leaky_slope, **kwargs)

    return block


class GlobalFeatureNetwork(nn.Module):
    """VGG-16-Gray: VGG-16's 13 convs with each max-pool replaced by a stride-2 last conv of the block
    (conv1_2, conv2_2, conv3_3, conv4_3; conv5_x stride 1), then ``pool5``, an extra 3x3 stride-2 conv.

    Input gray ``(N, 1, H, W)`` in ``[-1, 1]``; output ``(N, global_channels[4], H/32, W/32)``. BatchNorm +
    LeakyReLU(0.2) after every conv except the first (LeakyReLU only).
    """

    LAYOUT = (  # (name, block index of in width, block index of out width, stride); -1 = the gray input
        ("conv1_1", -1, 0, 1), ("conv1_2", 0, 0, 2),
        ("conv2_1", 0, 1, 1), ("conv2_2", 1, 1, 2),
        ("conv3_1", 1, 2, 1), ("conv3_2", 2, 2, 1), ("conv3_3", 2, 2, 2),
        ("conv4_1", 2, 3, 1), ("conv4_2", 3, 3, 1), ("conv4_3", 3, 3, 2),
        ("conv5_1", 3, 4, 1), ("conv5_2", 4, 4, 1), ("conv5_3", 4, 4, 1),
        ("pool5", 4, 4, 2),
    )  # fmt: skip

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        block = _block_factory(config, config.spectral_norm)
        widths = config.global_channels
        for name, src, dst, stride in self.LAYOUT:
            in_ch = config.in_channels if src < 0 else widths[src]
            self.add_module(name, block(in_ch, widths[dst], 3, stride, norm=src >= 0))
        self.out_channels = widths[4]

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        x = gray
        for name, *_ in self.LAYOUT:
            x = getattr(self, name)(x)
        return x

    def load_pretrained(self, payload: dict, source: str | os.PathLike = "global features") -> None:
        """Load the payload of a ``scgan pretrain-global`` file (strict); read it with
        ``scgan.checkpoint.load_global_features`` (``scgan.checkpoint.load_pretrained_global_features`` does both).

        File format (see docs/model.md): a ``torch.save`` dict with ``"format": "scgan-bench/global-features/1"``,
        ``"config"`` (the ModelConfig dict the network was built from) and ``"state_dict"`` (this module's state dict).
        The widths and the spectral-norm switch must match this network's configuration; ``source`` names the file in
        errors.
        """
        stored = get_config(payload["config"])
        for key in ("global_channels", "spectral_norm", "in_channels"):
            if getattr(stored, key) != getattr(self.config, key):
                raise InputError(
                    f"{source}: global features built with {key}={getattr(stored, key)!r}, "
                    f"this generator has {key}={getattr(self.config, key)!r}"
                )
        load_state_dict_strict(self, payload["state_dict"], source)


class EfficientNetGlobalFeatures(nn.Module):
    """Global features from the project's ImageNet EfficientNet-Lite0, frozen, on the gray input (not in the paper).

    Why: the paper's VGG-16-Gray is pretrained on ImageNet classification of gray images, which cannot be repeated
    here (no ImageNet; distillation from the colour classifier on ~1k photos reaches 2.3% agreement, i.e. no
    semantics). The packaged classifier classifies gray photos at 70.2% top-1 at 224 px (81.1% in colour; measured on
    every third photo of ``imagenet-val-sample``, docs/model.md), so it is a global branch with real semantics.

    Input gray ``(N, 1, H, W)`` in ``[-1, 1]`` -> ``[0, 1]``, repeated to three channels, resized bilinearly to
    224x224, the classifier's own normalisation ``(x*255 - 127) / 128``; the 1280-d pooled head features (frozen,
    eval mode always, no gradient) go through a trainable ``Linear(1280, global_channels[4])`` and LeakyReLU and are
    broadcast to ``(N, global_channels[4], H/32, W/32)``, the shape VGG-16-Gray gives at the fusion level.
    The packaged weights are loaded (strict) when this module is built.
    """

    INPUT_SIZE = 224

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        from metrics.classifier import FEATURE_DIM, build_efficientnet_lite0

        self.config = config
        self.backbone = build_efficientnet_lite0(pretrained=True).eval()
        self.backbone.requires_grad_(False)
        self.out_channels = config.global_channels[4]
        self.project = nn.Linear(FEATURE_DIM, self.out_channels)
        nn.init.normal_(self.project.weight, 0.0, config.init_gain)
        nn.init.zeros_(self.project.bias)
        self.leaky_slope = config.leaky_slope

    def train(self, mode: bool = True) -> EfficientNetGlobalFeatures:
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm keeps its ImageNet running statistics
        return self

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        n, _, h, w = gray.shape
        x = ((gray + 1) * 0.5).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(self.INPUT_SIZE, self.INPUT_SIZE), mode="bilinear", align_corners=False)
        with torch.no_grad():
            pooled = self.backbone.forward_pooled((x * 255 - 127) / 128)
        g = F.leaky_relu(self.project(pooled.to(self.project.weight.dtype)), self.leaky_slope)
        return g[:, :, None, None].expand(-1, -1, h // 32, w // 32)


def _build_global_network(config: ModelConfig) -> nn.Module:
    if config.global_backbone == "efficientnet-lite0":
        return EfficientNetGlobalFeatures(config)
    return GlobalFeatureNetwork(config)


class SaliencyBranch(nn.Module):
    """Saliency prediction from decoder outputs at 1/8, 1/4 and 1/2 resolution (released: ``up5``, ``up6``, ``up7``).

    Each input is brought to ``saliency_channels`` at 1/2 resolution: the 1/8 one by two upsample-convs
    (``conv11``, ``conv12``), the 1/4 one by one (``conv2``), the 1/2 one by a plain 3x3 conv (``conv3``); the three
    are concatenated, one more upsample-conv (``conv4``) brings them to full resolution, and a 3x3 conv to one
    channel with a sigmoid (``final``) gives the map in ``[0, 1]``. Upsample-conv = nearest x2, 3x3 conv, BN, LeakyReLU.
    """

    def __init__(self, config: ModelConfig, in_channels: tuple[int, int, int]) -> None:
        super().__init__()
        block = _block_factory(config, config.spectral_norm)
        s = config.saliency_channels
        c8, c4, c2 = in_channels
        self.conv11 = block(c8, s, 3, upsample=True)
        self.conv12 = block(s, s, 3, upsample=True)
        self.conv2 = block(c4, s, 3, upsample=True)
        self.conv3 = block(c2, s, 3)
        self.conv4 = block(3 * s, s, 3, upsample=True)
        self.final = block(s, 1, 3, norm=False, activation="sigmoid")

    def forward(self, x8: torch.Tensor, x4: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        a = self.conv12(self.conv11(x8))
        b = self.conv2(x4)
        c = self.conv3(x2)
        return self.final(self.conv4(torch.cat((a, b, c), 1)))


class Generator(nn.Module):
    """SCGAN generator: U-Net with VGG-16-Gray global features fused at 1/32 and a saliency branch.

    Encoder: ``down1`` 7x7 stride 1 (no norm), ``down2`` .. ``down{L+1}`` 3x3 stride 2 (L = log2(image_size); the
    last one without norm), channels ``min(base * 2**level, max)``; the global features are concatenated with the
    encoder output at 1/32 before the next down conv. Decoder ``up1`` .. ``up{L}``: upsample-conv (nearest x2, 3x3
    conv, BN, LeakyReLU) to the channels of the encoder skip of the same size, then concatenation ``(skip, up)``;
    ``up{L+1}``: 3x3 conv to RGB, tanh.

    ``forward(gray)``: gray ``(N, 1, H, W)`` in ``[-1, 1]`` -> ``(rgb (N, 3, H, W) in [-1, 1], saliency
    (N, 1, H, W) in [0, 1] or None)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        block = _block_factory(config, config.spectral_norm)
        levels, fusion = config.levels, config.fusion_level
        ch = config.level_channels

        self.global_features = _build_global_network(config) if config.global_features else None
        self.down1 = block(config.in_channels, ch(0), 7, 1, norm=False)
        for level in range(1, levels + 1):
            in_ch = ch(level - 1)
            if level == fusion + 1 and self.global_features is not None:
                in_ch += self.global_features.out_channels
            self.add_module(f"down{level + 1}", block(in_ch, ch(level), 3, 2, norm=level < levels))
        for j in range(1, levels + 1):
            # up_j goes from level (levels - j + 1) to level (levels - j) and matches that level's skip.
            in_ch = ch(levels) if j == 1 else 2 * ch(levels - j + 1)
            self.add_module(f"up{j}", block(in_ch, ch(levels - j), 3, upsample=True))
        self.add_module(f"up{levels + 1}", block(2 * ch(0), config.out_channels, 3, norm=False, activation="tanh"))
        self.saliency_branch = SaliencyBranch(config, (ch(3), ch(2), ch(1))) if config.saliency else None

    def check_input(self, gray: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``gray`` is a float ``(N, 1, H, W)`` tensor of a size this preset takes."""
        if not isinstance(gray, torch.Tensor):
            raise InputError(f"generator input must be a torch.Tensor, got {type(gray).__name__}")
        if gray.dim() != 4 or gray.shape[1] != self.config.in_channels:
            raise InputError(
                f"generator input must be gray (N, 1, H, W) in [-1, 1], got shape {tuple(gray.shape)}"
                + (" (convert RGB to BT.601 gray first)" if gray.dim() == 4 and gray.shape[1] == 3 else "")
            )
        if not gray.is_floating_point():
            raise InputError(f"generator input must be a float tensor in [-1, 1], got dtype {gray.dtype}")
        self.config.check_input_size(int(gray.shape[2]), int(gray.shape[3]), what="generator input")

    def forward(self, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.check_input(gray)
        levels, fusion = self.config.levels, self.config.fusion_level
        skips = [self.down1(gray)]
        x = skips[0]
        for level in range(1, levels + 1):
            if level == fusion + 1 and self.global_features is not None:
                x = torch.cat((x, self.global_features(gray)), 1)
            x = getattr(self, f"down{level + 1}")(x)
            skips.append(x)
        taps: dict[int, torch.Tensor] = {}
        for j in range(1, levels + 1):
            level = levels - j
            x = getattr(self, f"up{j}")(x)
            taps[level] = x  # before the skip concatenation (the saliency branch reads these)
            x = torch.cat((skips[level], x), 1)
        rgb = getattr(self, f"up{levels + 1}")(x)
        saliency = None
        if self.saliency_branch is not None:
            saliency = self.saliency_branch(taps[3], taps[2], taps[1])
        return rgb, saliency


class PatchDiscriminator(nn.Module):
    """70x70-style PatchGAN critic with spectral norm on every conv (both ``D_c`` and ``D_a`` of the paper).

    ``block1`` 7x7 s1 (4 -> d, no norm), ``block2..4`` 3x3 s2 (d -> 2d -> 4d -> 8d), ``final1`` 4x4 s1 pad 1
    (8d -> 8d), ``final2`` 4x4 s1 pad 1 (8d -> 1, no norm, no activation); BN + LeakyReLU(0.2); reflection padding.

    ``forward(gray, rgb)``: gray ``(N, 1, H, W)`` and rgb ``(N, 3, H, W)``, both in ``[-1, 1]`` ->
    ``(N, 1, ceil(H/8) - 2, ceil(W/8) - 2)`` scores (30x30 at 256). Takes any H, W >= 17.
    """

    MIN_SIZE = 17

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        block = _block_factory(config, spectral_norm=True)
        d = config.discriminator_channels
        self.block1 = block(config.in_channels + config.out_channels, d, 7, norm=False)
        self.block2 = block(d, 2 * d, 3, 2)
        self.block3 = block(2 * d, 4 * d, 3, 2)
        self.block4 = block(4 * d, 8 * d, 3, 2)
        self.final1 = block(8 * d, 8 * d, 4, padding=1)
        self.final2 = block(8 * d, 1, 4, padding=1, norm=False, activation=None)

    def forward(self, gray: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        for what, tensor, channels in (("gray", gray, 1), ("rgb", rgb, 3)):
            if not isinstance(tensor, torch.Tensor) or tensor.dim() != 4 or tensor.shape[1] != channels:
                shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
                raise InputError(f"discriminator {what} must be (N, {channels}, H, W) in [-1, 1], got {shape}")
            if not tensor.is_floating_point():
                raise InputError(f"discriminator {what} must be a float tensor in [-1, 1], got dtype {tensor.dtype}")
        if gray.shape[0] != rgb.shape[0] or gray.shape[2:] != rgb.shape[2:]:
            raise InputError(
                f"discriminator inputs differ in batch or size: gray {tuple(gray.shape)}, rgb {tuple(rgb.shape)}"
            )
        if min(gray.shape[2:]) < self.MIN_SIZE:
            raise InputError(
                f"discriminator needs height and width >= {self.MIN_SIZE}, got {tuple(gray.shape[2:])}"
            )
        x = torch.cat((gray, rgb), 1)
        for name in ("block1", "block2", "block3", "block4", "final1", "final2"):
            x = getattr(self, name)(x)
        return x


def build_generator(preset_or_config: str | ModelConfig | dict = "scgan-256") -> Generator:
    """SCGAN generator for a preset name or a :class:`ModelConfig` (freshly initialised, train mode).

    Seed with ``torch.manual_seed`` before calling for reproducible weights. With the paper's ``vgg16-gray`` backbone
    and ``global_init="pretrained"`` the caller (the trainer, :func:`init_global_features`) loads the pretrained
    global features; nothing is loaded here. The ``efficientnet-lite0`` backbone loads its packaged, frozen ImageNet
    weights when built.
    """
    return Generator(get_config(preset_or_config))


def build_discriminator(preset_or_config: str | ModelConfig | dict = "scgan-256") -> PatchDiscriminator:
    """One PatchGAN critic (call twice for the paper's ``D_c`` and ``D_a``)."""
    return PatchDiscriminator(get_config(preset_or_config))


def build_global_features(preset_or_config: str | ModelConfig | dict = "scgan-256") -> GlobalFeatureNetwork:
    """A standalone VGG-16-Gray network (for pretraining); the same layers as ``generator.global_features``."""
    return GlobalFeatureNetwork(get_config(preset_or_config))


def count_parameters(module: nn.Module | None) -> int:
    """Trainable parameters (with spectral norm: the unnormalised weight, not the u/v power-iteration buffers)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@contextlib.contextmanager
def batchnorm_batch_statistics(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, every BatchNorm of ``module`` normalises with the statistics of the current batch.

    This reproduces the released code's inference (it never called ``eval()``, so BatchNorm ran in train mode),
    without its side effects: the module's state (running statistics, ``num_batches_tracked``, spectral-norm vectors)
    is left untouched. Results depend on the batch composition (the released validation used batch size 1).

    The module runs in eval mode inside the block (its train/eval flags are restored afterwards): spectral norm then
    uses its stored vectors (no power iteration) and BatchNorm, whose running buffers are detached for the block,
    falls back to batch statistics (``running_mean is None`` makes ``BatchNorm`` use the batch even in eval mode)
    without counting the batch.
    """
    training = [(m, m.training) for m in module.modules()]
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.running_mean, m.running_var))
            m.running_mean = None
            m.running_var = None
    module.eval()
    try:
        yield module
    finally:
        for m, mean, var in saved:
            m.running_mean = mean
            m.running_var = var
        for m, was_training in training:
            m.training = was_training


def fold_spectral_norm(generator: Generator) -> Generator:
    """A new eval-mode generator without spectral norm computing the same function as ``generator`` in eval mode.

    Each spectrally-normalised weight is replaced by what the eval-mode forward uses: ``original / sigma`` with the
    stored power-iteration vectors (no further iteration). Used by the ONNX export. The input is left untouched
    (``torch.nn.utils.parametrize.remove_parametrizations`` on a deep copy would also strip the original: the two
    share the dynamically created parametrized class).
    """
    like = next(generator.parameters())
    # Building a generator draws its (soon overwritten) init from the global RNG: keep the caller's RNG stream intact.
    with torch.random.fork_rng(devices=[]):
        folded = Generator(generator.config.replace(spectral_norm=False))
    folded = folded.to(device=like.device, dtype=like.dtype)
    source = {name: module for name, module in generator.named_modules()}
    state = {}
    for key, value in generator.state_dict().items():
        if ".parametrizations.weight." not in key:
            state[key] = value
        elif key.endswith(".parametrizations.weight.original"):
            owner = key[: -len(".parametrizations.weight.original")]
            was_training = source[owner].training
            source[owner].eval()
            with torch.no_grad():
                state[f"{owner}.weight"] = source[owner].weight.detach().clone()
            source[owner].train(was_training)
        # the power-iteration vectors (`...weight.0._u`, `_v`) have no counterpart
    load_state_dict_strict(folded, state, "fold_spectral_norm")
    return folded.eval()
