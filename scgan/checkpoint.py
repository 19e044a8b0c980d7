"""SCGAN checkpoint files: atomic save, safe load, generator rebuild from the stored config.

Checkpoint format ``"scgan-bench/checkpoint/1"`` (a ``torch.save`` dict; see docs/model.md):

- ``"format"``: ``"scgan-bench/checkpoint/1"``
- ``"config"``: :meth:`scgan.config.ModelConfig.to_dict` of the architecture
- ``"generator"``: the generator's state dict (spectral norm kept as ``parametrizations.weight.original`` + u/v)
- written by the trainer as well: ``"discriminator_c"``, ``"discriminator_a"``, ``"train_config"``, ``"optimizers"``,
  ``"schedulers"``, ``"epoch"``, ``"step"``, ``"rng"``.

Global-feature weights (``scgan pretrain-global`` output) use ``"scgan-bench/global-features/1"``: ``"format"``,
``"config"`` (ModelConfig dict) and ``"state_dict"`` (of ``generator.global_features``), plus any extra keys the
writer records (e.g. the pretraining source).

Files are loaded with ``torch.load(weights_only=True)``: only tensors and plain Python containers/numbers/strings are
accepted, so a checkpoint cannot run code when opened. Store RNG states as tensors or plain lists.
``trusted=True`` lifts the restriction for files you made yourself.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from scgan.atomic import atomic_path, remove_leftover_temporaries
from scgan.config import ModelConfig, get_config
from scgan.errors import InputError
from scgan.state_dict import load_state_dict_strict

CHECKPOINT_FORMAT = "scgan-bench/checkpoint/1"
GLOBAL_FEATURES_FORMAT = "scgan-bench/global-features/1"

__all__ = [
    "CHECKPOINT_FORMAT",
    "GLOBAL_FEATURES_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "load_generator",
    "save_global_features",
    "load_global_features",
    "load_pretrained_global_features",
    "init_global_features",
    "file_sha256",
    "remove_leftover_temporaries",
]


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks): the identity of a checkpoint in reports and metadata."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _config_dict(config: ModelConfig | dict | str) -> dict[str, Any]:
    return get_config(config).to_dict()


def _save(path: str | os.PathLike, payload: dict) -> Path:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    # A checkpoint has one writer: temporaries beside it that are not ours are what a killed write left (a resumed run
    # clears them with its first save; `remove_leftover_temporaries` does it at once).
    remove_leftover_temporaries(path)
    return Path(path)


def _load(path: str | os.PathLike, what: str, trusted: bool) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise InputError(f"{path}: not a file (expected a {what})")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        objects = [line for line in lines if "Unsupported global" in line]
        if objects:
            raise InputError(
                f"{path}: the {what} holds Python objects other than tensors and plain containers, so it was not "
                f"opened safely (weights_only); load it with trusted=True only if you made the file ({objects[0]})"
            ) from exc
        detail = [line for line in lines if line.startswith("Unsupported") or "invalid load key" in line]
        reason = (detail or lines or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a {what} (cannot unpickle: {reason})") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a {what} ({reason})") from exc


def _check_payload(data: Any, path, what: str, fmt: str, required: tuple[str, ...]) -> dict[str, Any]:
    """``data`` if it is a dict tagged ``"format": fmt`` holding the ``required`` keys; else an InputError naming
    ``path`` and what is wrong."""
    tag = data.get("format") if isinstance(data, dict) else None
    if tag != fmt:
        if tag is not None:
            found = f"format {tag!r}"
        else:
            found = "no 'format' key" if isinstance(data, dict) else f"a {type(data).__name__}, not a dict"
        raise InputError(f"{path}: not an scgan-bench {what} ({found}; expected format {fmt!r})")
    missing = [key for key in required if key not in data]
    if missing:
        raise InputError(f"{path}: {what} has no {missing} entries")
    return data


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically with ``torch.save``; returns the path.

    ``payload`` needs ``"config"`` (ModelConfig, its dict, or a preset name; stored as a dict) and ``"generator"``
    (state dict); ``"format"`` is added when absent and must be ``CHECKPOINT_FORMAT`` when present. Other keys (the
    trainer's) are stored as given.
    """
    if not isinstance(payload, dict):
        raise InputError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    missing = [key for key in ("config", "generator") if key not in payload]
    if missing:
        raise InputError(f"checkpoint payload for {path} lacks {missing}")
    fmt = payload.get("format", CHECKPOINT_FORMAT)
    if fmt != CHECKPOINT_FORMAT:
        raise InputError(f"checkpoint payload for {path} has format {fmt!r}, expected {CHECKPOINT_FORMAT!r}")
    data = dict(payload)
    data["format"] = CHECKPOINT_FORMAT
    data["config"] = _config_dict(payload["config"])
    return _save(path, data)


def load_checkpoint(path: str | os.PathLike, *, trusted: bool = False) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors on CPU).

    Raises ``FileNotFoundError`` for a missing file and :class:`InputError` (naming the file) for anything that is
    not an scgan-bench checkpoint. ``weights_only=True`` unless ``trusted``.
    """
    data = _load(path, "checkpoint", trusted)
    return _check_payload(data, path, "checkpoint", CHECKPOINT_FORMAT, ("config", "generator"))


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Rebuild the generator from a checkpoint's stored config and load its weights (strict).

    Returns ``(generator in eval mode on device, checkpoint dict)``.
    """
    from scgan.model import build_generator

    checkpoint = load_checkpoint(path)
    spec = checkpoint.get("generator_spec")
    if spec:  # the trainer ran an injected generator (scgan.training): its weights are not an SCGAN generator's
        kind, name = spec.get("kind"), spec.get("name")
        hint = (f"load it with baselines.load_method('{name}:{path}') or `scgan export --baseline {name} --weights "
                f"{path}`" if kind == "baseline" else "rebuild that network and load checkpoint['generator'] into it")
        raise InputError(
            f"{path}: not an SCGAN generator: the run trained the injected generator {kind}:{name} (generator_spec "
            f"{spec}) with SCGAN's trainer; {hint}"
        )
    try:
        config = ModelConfig.from_dict(checkpoint["config"])
    except (InputError, TypeError) as exc:
        raise InputError(f"{path}: bad model config: {exc}") from exc
    generator = build_generator(config)
    load_state_dict_strict(generator, checkpoint["generator"], path)
    return generator.to(device).eval(), checkpoint


def save_global_features(
    path: str | os.PathLike, network: torch.nn.Module, config: ModelConfig | dict | str, **extra: Any
) -> Path:
    """Write a global feature network's weights (format ``GLOBAL_FEATURES_FORMAT``) atomically.

    ``network`` is a :class:`scgan.model.GlobalFeatureNetwork` (or ``generator.global_features``); ``extra`` keys
    (e.g. ``source="distillation"``, ``epochs=...``) are stored alongside and must be plain Python values.
    """
    reserved = {"format", "config", "state_dict"} & set(extra)
    if reserved:
        raise InputError(f"save_global_features: extra keys {sorted(reserved)} are reserved")
    payload = {
        "format": GLOBAL_FEATURES_FORMAT,
        "config": _config_dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        **extra,
    }
    return _save(path, payload)


def load_global_features(path: str | os.PathLike) -> dict[str, Any]:
    """Load a file written by :func:`save_global_features`; checks the format tag and the keys."""
    data = _load(path, "global-features file", trusted=False)
    return _check_payload(data, path, "global-features file", GLOBAL_FEATURES_FORMAT, ("config", "state_dict"))


def load_pretrained_global_features(network: torch.nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``scgan pretrain-global`` file and load it into ``network`` (a :class:`scgan.model.GlobalFeatureNetwork`,
    strict); returns the file's payload."""
    payload = load_global_features(path)
    network.load_pretrained(payload, path)
    return payload


def init_global_features(generator: torch.nn.Module, global_init: str) -> str:
    """Initialise ``generator``'s global features for training; returns a description for the checkpoint.

    ``global_init``: for ``vgg16-gray``, the path of a ``scgan pretrain-global`` file (the paper) or ``"none"`` (random
    init, Table II); required. For ``efficientnet-lite0`` the packaged weights were loaded at build time, so it must
    be ``""`` (a path or ``"none"`` is an error: nothing would be loaded, or the ablation belongs to VGG-16-Gray).
    """
    config = generator.config
    if generator.global_features is None:
        return "absent (--no-global)"
    if config.global_backbone == "efficientnet-lite0":
        if global_init not in ("", None):
            raise InputError(
                f"--global-init {global_init}: the efficientnet-lite0 global backbone uses the packaged ImageNet "
                "weights (frozen); --global-init is for --global-backbone vgg16-gray"
            )
        return "efficientnet-lite0 (packaged ImageNet weights, frozen)"
    if global_init in ("", None):
        raise InputError(
            "--global-init is required with --global-backbone vgg16-gray: the path of `scgan pretrain-global` output "
            "(the paper), or 'none' for randomly initialised global features (Table II ablation, same as "
            "--random-global)"
        )
    if global_init == "none":
        return "random"
    payload = load_pretrained_global_features(generator.global_features, global_init)
    return f"{global_init} ({payload.get('source', 'unknown source')})"
