"""``load_method(spec)``: one object per leaderboard row, whatever the method is.

Specs: ``gt``, ``gray``, ``tint`` (anchors); ``METHOD:TAG`` (a shipped model, ``scgan:mini``, ``pix2pix:mini``: see
``scgan.shipped``); ``onnx:PATH`` (any colorizer ONNX file); ``scgan:CKPT`` (a SCGAN checkpoint);
``NAME[:WEIGHTS]`` for the published architectures (``baselines.list_methods()``). Every model runs the same way: as
an ONNX file in ONNX Runtime behind the shared colorize pipeline (docs/baselines.md). Checkpoints and PyTorch weights
are exported once into a cache (``$SCGAN_CACHE_DIR``, default ``~/.cache/scgan-bench``), keyed by the sha256 of the
weights and of the code that builds the graph, so a second run starts at once and a code change re-exports.

The returned object has ``name``, ``input_size`` (int or None), ``sha256`` (of the weights file; None for anchors and
randomly initialised architectures) and ``colorize(images (N, 3, H, W) RGB [0, 1], raw) -> (N, 3, H, W) [0, 1]``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from .anchors import GrayAnchor, GroundTruthAnchor, TintAnchor

RANDOM_INIT_SUFFIX = "[random-init]"


def cache_dir() -> Path:
    """Where exported ONNX files are cached: ``$SCGAN_CACHE_DIR`` or ``~/.cache/scgan-bench``."""
    root = os.environ.get("SCGAN_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "scgan-bench"


def _code_fingerprint(*modules) -> str:
    """sha256 over the source files of the modules that define an exported graph (a code change invalidates)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _cached_path(kind: str, *parts: str) -> Path:
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    return cache_dir() / "onnx" / f"{kind}-{key}.onnx"


def _load_architecture(name: str, weights: str | None, device: str, batch_size: int):
    import metrics.color

    from . import export as export_module
    from .archs import _common
    from .registry import get_architecture
    from .runner import OnnxColorizer, file_sha256

    arch = get_architecture(name)
    arch_module = sys.modules[arch.build.__module__]  # the module that defines the network
    fingerprint = _code_fingerprint(arch_module, _common, export_module, metrics.color)
    if weights is not None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"{name}: weights file not found: {weights}")
        weights_sha = file_sha256(weights)
        display_name = name
    else:
        weights_sha = f"random-seed{export_module.RANDOM_INIT_SEED}"
        display_name = name + RANDOM_INIT_SUFFIX
    path = _cached_path(name, weights_sha, fingerprint)
    if not path.is_file():
        export_module.export_baseline(name, weights=weights, out_path=path)
    return OnnxColorizer(
        path,
        device=device,
        batch_size=batch_size,
        name=display_name,
        sha256=weights_sha if weights is not None else None,
    )


def _load_scgan(checkpoint: str, device: str, batch_size: int):
    from .runner import OnnxColorizer, file_sha256

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"scgan: checkpoint not found: {checkpoint}")
    import scgan.checkpoint
    import scgan.config
    import scgan.export
    import scgan.model

    sha = file_sha256(checkpoint)
    # The graph comes from the generator's definition as much as from the exporter: both key the cache.
    fingerprint = _code_fingerprint(scgan.export, scgan.model, scgan.config, scgan.checkpoint)
    path = _cached_path("scgan", sha, fingerprint)
    if not path.is_file():
        scgan.export.export_generator(checkpoint, path)
    return OnnxColorizer(path, device=device, batch_size=batch_size, name="scgan", sha256=sha)


def _load_shipped(spec: str, device: str, batch_size: int):
    """A shipped model (sha256 and probe checked at every load), exported once into the cache."""
    import metrics.color
    import scgan.export
    import scgan.model
    import scgan.shipped

    from . import export as export_module
    from . import shipped
    from .runner import OnnxColorizer

    entry = scgan.shipped.get_entry(spec)
    if entry["kind"] == "scgan":
        generator, entry, sha = scgan.shipped.load_scgan(spec)
        path = _cached_path("shipped", sha, _code_fingerprint(scgan.export, scgan.model, scgan.shipped))
        if not path.is_file():
            scgan.export.export_generator(generator, path, name=spec, source=f"shipped weights {spec} sha256={sha}")
    else:
        from .registry import get_architecture

        module, entry, file = shipped.load_baseline(spec)
        sha = entry["sha256"]
        arch = get_architecture(entry["method"])
        arch_module = sys.modules[arch.build.__module__]
        fingerprint = _code_fingerprint(arch_module, export_module, metrics.color, scgan.shipped)
        path = _cached_path("shipped", sha, fingerprint)
        if not path.is_file():
            metadata = {"name": spec, "source": f"shipped weights {file.name} sha256={sha}", "paper": arch.paper,
                        "build_options": repr(dict(sorted(entry["build_options"].items())))}
            export_module.export_module(module, path, entry["input_size"], metadata, has_saliency=arch.has_saliency)
    return OnnxColorizer(path, device=device, batch_size=batch_size, name=spec, sha256=sha)


def load_method(spec: str, device: str = "cpu", batch_size: int = 16):
    """The method named by ``spec`` (see the module docstring), ready to ``colorize(images, raw)``.

    ``device``: "cpu", "auto" or "cuda[:N]" for the ONNX Runtime session. Unknown names raise ValueError listing the
    known ones; missing files FileNotFoundError naming them.
    """
    from scgan.shipped import looks_like_name as scgan_shipped_name

    from .registry import architecture_names

    spec = str(spec).strip()
    if spec == "gt":
        return GroundTruthAnchor()
    if spec == "gray":
        return GrayAnchor()
    if spec == "tint":
        return TintAnchor()
    head, sep, tail = spec.partition(":")
    if (head == "scgan" or head in architecture_names()) and scgan_shipped_name(spec):
        return _load_shipped(spec, device, batch_size)
    if head == "onnx":
        from .runner import OnnxColorizer

        if not tail:
            raise ValueError("method spec 'onnx:PATH' needs a path")
        return OnnxColorizer(tail, device=device, batch_size=batch_size)
    if head == "scgan":
        if not tail:
            raise ValueError("method spec 'scgan:CHECKPOINT' needs a checkpoint path")
        return _load_scgan(tail, device, batch_size)
    if head in architecture_names():
        return _load_architecture(head, tail or None, device, batch_size)
    known = ["gt", "gray", "tint", "METHOD:TAG (shipped)", "onnx:PATH", "scgan:CHECKPOINT"]
    known += [f"{n}[:WEIGHTS]" for n in architecture_names()]
    raise ValueError(f"unknown method {spec!r}; known: {', '.join(known)}")
