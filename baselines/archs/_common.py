"""Pieces shared by the baseline architectures: Lab conversions for the contract wrappers and strict weight loading."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from metrics.color import gray_to_rgb, lab_to_rgb, rgb_to_lab


def gray01_to_lab_l(gray01: torch.Tensor) -> torch.Tensor:
    """BT.601 gray (N, 1, H, W) in [0, 1] -> CIE L* (N, 1, H, W) in [0, 100] of the neutral colour (y, y, y).

    For a neutral sRGB colour X/Xn = Y/Yn = Z/Zn, so a* = b* = 0 and L* depends on y only; computing it through the
    full rgb_to_lab keeps one definition of Lab in the project (metrics.color) and exports to ONNX.
    """
    return rgb_to_lab(gray_to_rgb(gray01))[:, 0:1]


def lab_to_rgb01(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L* (N, 1, H, W) in [0, 100] and a*b* (N, 2, H, W) -> sRGB (N, 3, H, W) clipped to [0, 1] (D65, skimage's Lab)."""
    return lab_to_rgb(torch.cat([lightness, ab], dim=1))


class LabColorizer(nn.Module):
    """Contract wrapper of a network that predicts chrominance from lightness: gray (N, 1, H, W) BT.601 in [0, 1] ->
    sRGB (N, 3, H, W) in [0, 1]. The output's L* is the gray's own (``gray01_to_lab_l``), its a*b* the network's:
    ``predict_ab(L* (N, 1, H, W) in [0, 100]) -> a*b* (N, 2, H, W)``, by default ``net(L*)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def predict_ab(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.net(lightness)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        lightness = gray01_to_lab_l(gray)
        return lab_to_rgb01(lightness, self.predict_ab(lightness))


def read_weights_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], bool]:
    """Read a PyTorch weights file: returns ``(state_dict, released)`` (tensors only, ``weights_only=True``).

    Accepts a plain state dict (the form the authors released: ``released=True``), or a dict wrapping it under
    ``generator`` (this project's checkpoints, i.e. trained here: ``released=False``), ``state_dict`` or ``model``
    (other training scripts' wrappers: treated as released).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors have many types; the message says what the file is not
        # torch's unpickling message runs to many lines of advice; the CLI prints one line, so keep the line that
        # says what was found ("Unsupported operand 102", "invalid load key") or else the first one.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = [line for line in lines if line.startswith("Unsupported") or "invalid load key" in line]
        reason = (detail or lines or ["no message"])[0]
        raise ValueError(f"{path}: cannot be read as a PyTorch weights file ({type(exc).__name__}: {reason})") from exc
    released = True
    if isinstance(data, Mapping):
        for key in ("generator", "state_dict", "model"):
            inner = data.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                data = inner
                released = key != "generator"
                break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{path}: expected a state dict (names -> tensors), got {type(data).__name__}")
    return dict(data), released
