"""Shipped weights of every method: load a shipped baseline by name, and turn a training checkpoint (SCGAN's or a
baseline's, from the shared trainer) into a shipped file plus its registry entry. The files, the registry, the probe
and SCGAN's generator are ``scgan.shipped``."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from scgan import shipped
from scgan.errors import InputError


def build_shipped_baseline(payload: dict[str, Any], path: Path):
    """The contract module (gray [0,1] -> rgb [0,1]) of a shipped baseline payload, weights loaded strictly."""
    from .registry import get_architecture

    arch = get_architecture(payload["method"])
    net = arch.build(**payload["build_options"])
    arch.load_weights(net, payload["state_dict"], released=False)
    return arch.colorizer(net).eval()


def load_baseline(name: str, folder: Path | None = None):
    """``(contract module, entry, path)`` of the shipped baseline ``name``, sha256 and probe checked."""
    path, entry = shipped.verified_file(name, folder)
    if entry["kind"] != "baseline":
        raise InputError(f"{name}: a shipped SCGAN model, not a baseline")
    module = build_shipped_baseline(shipped.read_shipped_file(path), path)
    shipped.check_probe(name, path, entry, shipped.probe_output(_rgb_of(module), entry["input_size"]))
    return module, entry, path


def _rgb_of(module):
    """The contract module's RGB output (it may also return saliency)."""
    def colorize(gray):
        out = module(gray)
        return out[0] if isinstance(out, tuple | list) else out
    return colorize


def _git_commit() -> str | None:
    """The commit of the working tree this runs from (with -dirty when it has changes), or None outside git. The
    weights folder is left out of the check: shipping writes there, and a model shipped from a clean tree is clean."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             check=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    weights = shipped.weights_dir().resolve()
    changed = [Path(top.stdout.strip(), line[3:].strip('"')).resolve() for line in status.stdout.splitlines()]
    dirty = [path for path in changed if not path.is_relative_to(weights)]
    return commit.stdout.strip() + ("-dirty" if dirty else "")


def _payload_from_checkpoint(checkpoint: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    """The shipped payload (fp16) of a trainer checkpoint: SCGAN's generator, or the injected baseline's."""
    spec = checkpoint.get("generator_spec")
    size = int(checkpoint["config"]["image_size"])
    if spec:
        if spec.get("kind") != "baseline":
            raise InputError(f"{path}: trained an injected generator {spec} that is not a registered baseline")
        state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in checkpoint["generator"].items()}
        return {"format": shipped.SHIPPED_FORMAT, "name": name, "kind": "baseline", "method": spec["name"],
                "build_options": dict(spec.get("options") or {}), "input_size": size, "state_dict": state}
    return {"format": shipped.SHIPPED_FORMAT, "name": name, "kind": "scgan", "method": "scgan",
            "config": checkpoint["config"], "input_size": size,
            "state_dict": shipped.scgan_state_to_ship(checkpoint["generator"])}


def _probe_of_payload(payload: dict[str, Any], path: Path) -> list[float]:
    size = payload["input_size"]
    if payload["kind"] == "scgan":
        from scgan.colorize import ScganColorizer

        colorizer = ScganColorizer(shipped.build_scgan_generator(payload, path))
        return shipped.probe_output(colorizer.colorize_at_size, size)
    return shipped.probe_output(_rgb_of(build_shipped_baseline(payload, path)), size)


def ship_checkpoint(checkpoint_path: str | os.PathLike, name: str, folder: Path | None = None, *,
                    recipe: str = "", budget: str = "", replace: bool = False) -> dict[str, Any]:
    """Write ``checkpoint_path``'s generator as the shipped model ``name`` (fp16; an SCGAN file without the frozen
    backbone) into ``folder`` (default ``scgan.shipped.weights_dir()``) with its registry entry; returns the entry.

    The probe is computed from the written file as loading will read it. Refuses an existing name unless
    ``replace``, a name not of the form ``method:tag``, an SCGAN name for a baseline or the reverse, and a file or a
    folder above the size limits; nothing is left half-written.
    """
    from scgan.atomic import atomic_path
    from scgan.checkpoint import file_sha256, load_checkpoint

    folder = Path(folder) if folder is not None else shipped.weights_dir()
    checkpoint_path = Path(checkpoint_path)
    if not shipped.NAME_PATTERN.match(name):
        raise InputError(f"--name {name!r}: expected METHOD:TAG in lower case, e.g. scgan:mini or pix2pix:mini")
    models = shipped.read_registry(folder) if folder.is_dir() else {}
    if name in models and not replace:
        raise InputError(f"--name {name}: already shipped in {folder} (use --replace to overwrite it)")
    checkpoint = load_checkpoint(checkpoint_path)
    payload = _payload_from_checkpoint(checkpoint, name, checkpoint_path)
    if name.split(":")[0] != payload["method"]:
        raise InputError(f"--name {name}: {checkpoint_path} holds a {payload['method']} model; name it "
                         f"{payload['method']}:TAG")
    folder.mkdir(parents=True, exist_ok=True)
    file_name = name.replace(":", "-") + ".pt"
    target = folder / file_name
    if target.resolve() == checkpoint_path.resolve():
        raise InputError(f"{target}: the shipped file would overwrite the checkpoint it is made from")
    # Serialized in memory first: torch.save names the archive inside the file after the file, and the temporary's
    # name is random; from a buffer one checkpoint always ships to the same bytes (the same sha256).
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getvalue())
        size = tmp.stat().st_size
        others = sum((folder / m["file"]).stat().st_size for n, m in models.items()
                     if n != name and (folder / m["file"]).is_file())
        if size > shipped.MAX_FILE_BYTES or size + others > shipped.MAX_TOTAL_BYTES:
            raise InputError(f"{target}: {size / 2**20:.1f} MiB ({(size + others) / 2**20:.1f} MiB with the other "
                             f"shipped files); limits {shipped.MAX_FILE_BYTES // 2**20} MiB per file, "
                             f"{shipped.MAX_TOTAL_BYTES // 2**20} MiB in all")
        probe = _probe_of_payload(shipped.read_shipped_file(tmp), target)
        sha = file_sha256(tmp)
    train_config = checkpoint.get("train_config") or {}
    batch = int(train_config.get("batch_size", 0))
    step = int(checkpoint.get("step", 0))
    entry = {
        "file": file_name,
        "sha256": sha,
        "kind": payload["kind"],
        "method": payload["method"],
        "input_size": payload["input_size"],
        "build_options": payload.get("build_options") if payload["kind"] == "baseline" else payload["config"],
        "data": {k: train_config.get(k) for k in ("data", "saliency", "policy")},
        "recipe": recipe,
        "budget": budget,
        "images_seen": step * batch,
        "steps": step,
        "epochs": int(checkpoint.get("epoch", 0)),
        "train_config": train_config,
        "checkpoint_sha256": file_sha256(checkpoint_path),
        "commit": _git_commit(),
        "probe": {"input": "scgan.shipped.probe_gray(input_size)", "grid": shipped.PROBE_GRID, "output": probe},
    }
    models[name] = entry
    shipped.write_registry(models, folder)
    return entry
