"""VGG-16 (Simonyan & Zisserman 2015, configuration D, no batch norm) in torchvision's state-dict layout, written here.

Layout (the keys a torchvision ``vgg16`` ``.pth`` holds): ``features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.weight/bias``
(13 3x3 convolutions, padding 1, each followed by ReLU; 2x2 max pools at indices 4, 9, 16, 23, 30), an adaptive
average pool to 7x7, then ``classifier.{0,3,6}.weight/bias`` (Linear 25088->4096, ReLU, Dropout, Linear 4096->4096,
ReLU, Dropout, Linear 4096->1000).

No VGG weights ship with the project: the user supplies a ``.pth``. The channel widths are read from the file's
shapes (the standard file gives 64..512 and 4096), so a narrower file in the same layout (used by the tests) loads too;
the key set must match exactly and the logits must be 1000.

Input of :meth:`VGG16.forward`: float (N, 3, H, W) RGB normalised with ImageNet mean/std (see
:data:`metrics.classifier.preprocess.IMAGENET_PREPROCESSING`), 224x224 for the classifier.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .efficientnet_lite0 import load_state_dict_file

# Configuration D: output channels of the 13 convolutions; "M" marks a 2x2 max pool.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_WIDTHS = tuple(c for c in VGG16_CONFIG if c != "M")
VGG16_HIDDEN = 4096
NUM_CLASSES = 1000


def _layer_names() -> tuple[dict[int, str], list[int]]:
    """``features`` index -> conv/relu name (``conv3_3``, ``relu3_3``, ...), and the conv indices."""
    names, conv_indices = {}, []
    index, block, conv_in_block = 0, 1, 0
    for item in VGG16_CONFIG:
        if item == "M":
            index += 1
            block += 1
            conv_in_block = 0
            continue
        conv_in_block += 1
        names[index] = f"conv{block}_{conv_in_block}"
        names[index + 1] = f"relu{block}_{conv_in_block}"
        conv_indices.append(index)
        index += 2
    return names, conv_indices


FEATURE_NAMES, CONV_INDICES = _layer_names()  # CONV_INDICES == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
FEATURE_STAGES = tuple(FEATURE_NAMES.values())
CLASSIFIER_LINEAR_INDICES = (0, 3, 6)


def expected_keys() -> list[str]:
    """Every key of a torchvision-layout VGG-16 state dict."""
    keys = []
    for i in CONV_INDICES:
        keys += [f"features.{i}.weight", f"features.{i}.bias"]
    for i in CLASSIFIER_LINEAR_INDICES:
        keys += [f"classifier.{i}.weight", f"classifier.{i}.bias"]
    return keys


class VGG16(nn.Module):
    """VGG-16 with torchvision's module indices; ``widths`` (13 conv widths) and ``hidden`` default to the standard
    network.

    ``forward(x)`` -> logits (N, num_classes); ``forward_pooled(x)`` -> (N, hidden) fc7 features (after its ReLU);
    ``forward_features(x, stages)`` -> dict of conv feature maps (``conv3_3``, ``relu3_3``, ...).
    """

    def __init__(self, widths: tuple[int, ...] = VGG16_WIDTHS, hidden: int = VGG16_HIDDEN,
                 num_classes: int = NUM_CLASSES):
        super().__init__()
        if len(widths) != len(VGG16_WIDTHS):
            raise ValueError(f"VGG16 needs {len(VGG16_WIDTHS)} convolution widths, got {len(widths)}")
        layers: list[nn.Module] = []
        in_ch, w = 3, iter(widths)
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out_ch = next(w)
                layers += [nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * 7 * 7, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, x: torch.Tensor, stages=None) -> dict[str, torch.Tensor]:
        """Conv feature maps by name (``convB_I`` before its ReLU, ``reluB_I`` after; the paper's perceptual layer is
        ``relu3_3``). ``stages``: a name, a list of names, or None for every ``relu`` map. Stops after the deepest
        requested layer. ``x``: ImageNet mean/std normalised RGB (N, 3, H, W)."""
        if stages is None:
            names = [n for n in FEATURE_STAGES if n.startswith("relu")]
        else:
            names = [stages] if isinstance(stages, str) else list(stages)
        unknown = [n for n in names if n not in FEATURE_STAGES]
        if unknown or not names:
            raise ValueError(f"forward_features: unknown stages {unknown or names}; known: {', '.join(FEATURE_STAGES)}")
        index_of = {name: i for i, name in FEATURE_NAMES.items()}
        last = max(index_of[n] for n in names)
        found = {}
        h = x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in FEATURE_NAMES and FEATURE_NAMES[i] in names:
                found[FEATURE_NAMES[i]] = h
            if i == last:
                break
        return {n: found[n] for n in names}

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(N, hidden) fc7 activations (after ReLU, before the last dropout)."""
        h = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:5](h)

    def forward_logits_and_pooled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, num_classes) and fc7 features (N, hidden) from one pass."""
        pooled = self.forward_pooled(x)
        return self.classifier[6](self.classifier[5](pooled)), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_logits_and_pooled(x)[0]


def vgg16_from_state_dict(state: dict[str, torch.Tensor], source: str = "state dict") -> VGG16:
    """A VGG16 in eval mode loaded with ``strict=True`` from a torchvision-layout state dict.

    Raises ValueError naming ``source`` and the missing/extra keys, inconsistent shapes, or logits other than 1000.
    """
    expected = expected_keys()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in set(expected)]
    if missing or extra:
        raise ValueError(
            f"{source}: not a torchvision-layout VGG-16 state dict; missing keys {missing[:6]}"
            f"{'...' if len(missing) > 6 else ''}, unexpected keys {extra[:6]}{'...' if len(extra) > 6 else ''}"
        )
    widths = tuple(int(state[f"features.{i}.weight"].shape[0]) for i in CONV_INDICES)
    hidden = int(state["classifier.0.weight"].shape[0])
    num_classes = int(state["classifier.6.weight"].shape[0])
    if num_classes != NUM_CLASSES:
        raise ValueError(f"{source}: classifier.6 gives {num_classes} logits; an ImageNet classifier has {NUM_CLASSES}")
    model = VGG16(widths, hidden, num_classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches; flatten torch's multi-line message
        raise ValueError(f"{source}: shapes do not form a VGG-16: {' '.join(str(exc).split())}") from exc
    return model.eval()


def load_vgg16(path: str | Path) -> VGG16:
    """Read a torchvision-layout VGG-16 ``.pth`` (plain state dict) and load it strictly; see
    :func:`vgg16_from_state_dict`."""
    return vgg16_from_state_dict(load_state_dict_file(path), source=str(path))


def random_vgg16_state_dict(widths: tuple[int, ...] = VGG16_WIDTHS, hidden: int = VGG16_HIDDEN,
                            seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised (He normal, seeded) torchvision-layout state dict, for tests and demos."""
    gen = torch.Generator().manual_seed(seed)
    model = VGG16(widths, hidden)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                m.bias.zero_()
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01, generator=gen)
                m.bias.zero_()
    return model.state_dict()

