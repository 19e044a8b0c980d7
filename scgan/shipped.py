"""Shipped weights: trained colorizers that come with the package, loaded by name (``scgan:mini``, ``pix2pix:mini``).

The package folder ``scgan/weights/`` holds one small file per model (fp16 tensors) and ``registry.json``, which pins
each file's sha256 and records its metadata (data, recipe, commit, budget, images seen, input size, build options)
and a probe: the model's output on a fixed gray image generated here (:func:`probe_gray`), pooled to 4x4 per colour
channel. Loading a model checks both: a file that was changed, or that loads but computes something else, fails with
an InputError naming it. ``$SCGAN_WEIGHTS_DIR`` points at another folder of the same form (tests, a local set).

File format ``"scgan-bench/shipped/1"`` (``torch.save`` dict, opened with ``weights_only=True``): ``"name"``,
``"kind"`` (``"scgan"`` or ``"baseline"``), ``"method"`` (``scgan`` or the baseline's registry name), ``"config"``
(SCGAN: ModelConfig dict) or ``"build_options"`` (baseline), ``"input_size"`` and ``"state_dict"``. An SCGAN file
leaves out the frozen EfficientNet-Lite0 global backbone (``global_features.backbone.*``): those weights come from the
installed package, as when the generator is built for training.

This module knows the files, the registry and SCGAN's generator; building a baseline network is ``baselines.shipped``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scgan.errors import InputError

SHIPPED_FORMAT = "scgan-bench/shipped/1"
REGISTRY_FORMAT = "scgan-bench/shipped-registry/1"
REGISTRY_NAME = "registry.json"
#: Size limits of the package's weights (issue 11): each file, and all files together.
MAX_FILE_BYTES = 12 * 2**20
MAX_TOTAL_BYTES = 25 * 2**20
#: The probe: output pooled to PROBE_GRID x PROBE_GRID per channel; a stored value may differ by PROBE_TOLERANCE
#: (float32 on another CPU or library build), far below what another set of weights changes.
PROBE_GRID = 4
PROBE_TOLERANCE = 2e-3
#: Parameters of an SCGAN file that are not stored: the frozen backbone, rebuilt from the installed package.
FROZEN_PREFIX = "global_features.backbone."
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*$")
HOW_TO_MAKE = (
    "train them with bench/recipes (README there) and ship a checkpoint with `scgan ship-weights RUN_DIR/checkpoint.pt "
    "--name NAME`"
)


def weights_dir() -> Path:
    """The folder of shipped weights: ``$SCGAN_WEIGHTS_DIR`` or the package's ``scgan/weights``."""
    override = os.environ.get("SCGAN_WEIGHTS_DIR")
    return Path(override) if override else Path(__file__).parent / "weights"


def looks_like_name(text: str) -> bool:
    """True for ``method:tag`` names (``scgan:mini``) that are not an existing file: what resolves through the
    registry rather than as a path."""
    return bool(NAME_PATTERN.match(str(text))) and not Path(str(text)).exists()


def read_registry(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Name -> registry entry of the shipped models in ``folder`` (default :func:`weights_dir`); {} when none."""
    path = (folder or weights_dir()) / REGISTRY_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a shipped-weights registry ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT or not isinstance(data.get("models"), dict):
        raise InputError(f"{path}: not a shipped-weights registry (expected format {REGISTRY_FORMAT!r})")
    return data["models"]


def write_registry(models: dict[str, dict[str, Any]], folder: Path) -> Path:
    from scgan.atomic import write_text

    payload = {"format": REGISTRY_FORMAT, "models": dict(sorted(models.items()))}
    return write_text(folder / REGISTRY_NAME, json.dumps(payload, indent=2) + "\n")


def get_entry(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The registry entry of ``name``; an InputError saying none are installed (and how to make them), or listing the
    shipped names."""
    folder = folder or weights_dir()
    models = read_registry(folder)
    if not models:
        raise InputError(f"{name}: no shipped weights are installed yet (none in {folder}); {HOW_TO_MAKE}")
    if name not in models:
        raise InputError(f"{name}: no such shipped model; shipped: {', '.join(models)}")
    return models[name]


def verified_file(name: str, folder: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """``(path, entry)`` of ``name``'s file after checking its sha256 against the registry (InputError naming the
    file on a mismatch or a missing file)."""
    from scgan.checkpoint import file_sha256

    folder = folder or weights_dir()
    entry = get_entry(name, folder)
    path = folder / entry["file"]
    if not path.is_file():
        raise InputError(f"{name}: shipped weights file missing: {path}")
    sha = file_sha256(path)
    if sha != entry["sha256"]:
        raise InputError(f"{path}: sha256 {sha} does not match the registry's {entry['sha256']} for {name} "
                         "(the file was changed or replaced)")
    return path, entry


def read_shipped_file(path: Path) -> dict[str, Any]:
    """The payload of a shipped file with float tensors in float32 (stored as fp16)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling raises many types; the line names the file
        raise InputError(f"{path}: not a shipped weights file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != SHIPPED_FORMAT:
        raise InputError(f"{path}: not a shipped weights file (expected format {SHIPPED_FORMAT!r})")
    data["state_dict"] = {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
    return data


def probe_gray(size: int) -> torch.Tensor:
    """The fixed probe input ``(1, 1, size, size)`` in [0, 1]: a smooth pattern (gradient, rings, a bright disc) made
    from a formula, so it is the same on every machine and needs no file."""
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    radius = ((x - 0.35) ** 2 + (y - 0.4) ** 2).sqrt()
    image = 0.45 * x + 0.25 * y + 0.15 * torch.cos(18.0 * radius) + 0.3 * (radius < 0.18).double()
    return image.clamp(0.0, 1.0).to(torch.float32)[None, None]


def probe_output(colorize_gray: Callable[[torch.Tensor], torch.Tensor], size: int) -> list[float]:
    """``colorize_gray`` (gray (1, 1, S, S) in [0, 1] -> RGB (1, 3, S, S) in [0, 1]) on :func:`probe_gray`, pooled to
    PROBE_GRID x PROBE_GRID per channel: 48 numbers, rounded to 6 decimals."""
    with torch.no_grad():
        rgb = colorize_gray(probe_gray(size)).float()
    pooled = torch.nn.functional.adaptive_avg_pool2d(rgb, PROBE_GRID)
    return [round(float(v), 6) for v in pooled.flatten()]


def check_probe(name: str, path: Path, entry: dict[str, Any], output: list[float]) -> None:
    """InputError naming the file when ``output`` differs from the registry's probe by more than PROBE_TOLERANCE."""
    stored = entry["probe"]["output"]
    difference = max((abs(a - b) for a, b in zip(output, stored)), default=float("inf"))
    if len(output) != len(stored) or not difference <= PROBE_TOLERANCE:
        raise InputError(f"{path}: {name} loads but computes something else: its probe output differs from the "
                         f"registry's by {difference:.3g} (tolerance {PROBE_TOLERANCE})")


# ------------------------------------------------------------------------------------------------------- SCGAN
def scgan_state_to_ship(generator_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An SCGAN generator's state dict as shipped: fp16 floats, without the frozen backbone."""
    return {k: (v.half() if v.is_floating_point() else v).contiguous()
            for k, v in generator_state.items() if not k.startswith(FROZEN_PREFIX)}


def build_scgan_generator(payload: dict[str, Any], path: Path):
    """The SCGAN generator of a shipped payload (eval mode, CPU): built from its config (the frozen backbone loads
    from the installed package), then the stored weights loaded strictly with only the backbone's keys added."""
    from scgan.config import ModelConfig
    from scgan.model import build_generator, load_state_dict_strict

    generator = build_generator(ModelConfig.from_dict(payload["config"]))
    own = generator.state_dict()
    stored = payload["state_dict"]
    clash = sorted(k for k in stored if k.startswith(FROZEN_PREFIX))
    if clash:
        raise InputError(f"{path}: stores frozen backbone weights ({clash[0]} ...); a shipped file must not")
    full = {**{k: v for k, v in own.items() if k.startswith(FROZEN_PREFIX)}, **stored}
    load_state_dict_strict(generator, full, path)
    return generator.eval()


def load_scgan(name: str, device: str | torch.device = "cpu", folder: Path | None = None):
    """``(generator, entry, sha256)`` of the shipped SCGAN model ``name``, sha256 and probe checked."""
    from scgan.colorize import ScganColorizer

    path, entry = verified_file(name, folder)
    if entry["kind"] != "scgan":
        raise InputError(f"{name}: a shipped {entry['method']} model, not SCGAN")
    generator = build_scgan_generator(read_shipped_file(path), path)
    colorizer = ScganColorizer(generator, name=name)
    check_probe(name, path, entry, probe_output(colorizer.colorize_at_size, colorizer.input_size))
    return generator.to(device).eval(), entry, entry["sha256"]
