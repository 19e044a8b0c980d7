"""ONNX export of an SCGAN generator behind the colorizer contract (docs/baselines.md), checked against ONNX Runtime.

The exported graph:

- input ``gray``: float32 ``(N, 1, S, S)``, BT.601 luma in ``[0, 1]`` (S = the preset's ``image_size``; N dynamic);
- output ``rgb``: float32 ``(N, 3, S, S)`` in ``[0, 1]``; with ``with_saliency=True`` a second output ``saliency``
  ``(N, 1, S, S)`` in ``[0, 1]``;
- SCGAN's normalisation baked in (``gray * 2 - 1`` in, ``(rgb + 1) / 2`` out); BatchNorm with running statistics
  (eval mode); spectral norm folded into plain weights (the eval-mode ``original / sigma``);
- one self-contained file (weights inside, no external data), metadata ``name``, ``input_size``, ``source``,
  ``paper`` (plus ``preset`` and ``config``, the ModelConfig as JSON).

Every export is checked before the file appears: ``onnx.checker``, then ONNX Runtime (CPU provider) against the
PyTorch generator on random input with a different batch size than the one traced; above ``atol`` (1e-4) it fails.
The file is written atomically. ``onnx``/``onnxruntime`` are imported here only, not by ``import scgan``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from scgan.atomic import atomic_path
from scgan.config import PRESETS
from scgan.errors import InputError, ScganError

__all__ = ["ExportCheckError", "ColorizerGraph", "export_generator", "PAPER", "DEFAULT_OPSET"]

PAPER = (
    "Y. Zhao, L.-M. Po, K.-W. Cheung, W.-Y. Yu, Y. A. U. Rehman, 'SCGAN: Saliency Map-guided Colorization with "
    "Generative Adversarial Network', IEEE TCSVT 2020 (arXiv:2011.11377)"
)
DEFAULT_OPSET = 18
DEFAULT_ATOL = 1e-4


class ExportCheckError(ScganError):
    """The exported graph does not reproduce the PyTorch model (or does not pass the ONNX checker)."""


class ColorizerGraph(nn.Module):
    """The generator with the colorizer contract's normalisation: gray ``[0, 1]`` in, RGB ``[0, 1]`` out."""

    def __init__(self, generator: nn.Module, with_saliency: bool) -> None:
        super().__init__()
        self.generator = generator
        self.with_saliency = with_saliency

    def forward(self, gray: torch.Tensor):
        rgb, saliency = self.generator(gray * 2.0 - 1.0)
        rgb = (rgb + 1.0) * 0.5
        if self.with_saliency:
            return rgb, saliency
        return rgb


@contextlib.contextmanager
def _quiet_exporter_logs():
    """Silence the exporter's per-run notes (e.g. "torchvision is not installed. Skipping torchvision::nms")."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _resolve(generator_or_checkpoint, seed: int):
    """-> (eval-mode generator, default name, source description)."""
    from scgan.model import Generator, build_generator

    if isinstance(generator_or_checkpoint, Generator):
        generator = generator_or_checkpoint
        return generator, generator.config.name, "in-memory generator"
    if isinstance(generator_or_checkpoint, str) and generator_or_checkpoint in PRESETS:
        with torch.random.fork_rng(devices=[]):  # seeded weights without resetting the caller's RNG stream
            torch.manual_seed(seed)
            generator = build_generator(generator_or_checkpoint)
        source = f"preset {generator_or_checkpoint}, untrained (N(0, 0.02) init, seed {seed})"
        return generator.eval(), generator_or_checkpoint, source
    if isinstance(generator_or_checkpoint, (str, os.PathLike)):
        from scgan.checkpoint import file_sha256, load_generator

        path = Path(generator_or_checkpoint)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: neither a checkpoint file nor a preset name (presets: {', '.join(PRESETS)})"
            )
        generator, checkpoint = load_generator(path)
        source = f"checkpoint {path.name} (sha256 {file_sha256(path)})"
        if "epoch" in checkpoint:
            source += f", epoch {checkpoint['epoch']}"
        return generator, path.stem, source
    kind = type(generator_or_checkpoint).__name__
    raise InputError(f"export_generator: expected a Generator, a checkpoint path or a preset name, got {kind}")


def export_generator(
    generator_or_checkpoint,
    out_path: str | os.PathLike,
    *,
    with_saliency: bool = False,
    opset: int = DEFAULT_OPSET,
    name: str | None = None,
    source: str | None = None,
    atol: float = DEFAULT_ATOL,
    seed: int = 0,
) -> float:
    """Export an SCGAN generator as an ONNX colorizer and check it; returns the max abs difference between ONNX
    Runtime and PyTorch on the check input (over all outputs).

    ``generator_or_checkpoint``: a :class:`scgan.model.Generator`, a checkpoint path (loaded strictly) or a preset name
    (untrained weights, N(0, 0.02) with ``seed``: for benchmarking the graph, not for colorizing). The generator itself
    is not modified. Raises :class:`ExportCheckError` when the check fails (nothing is written then).
    """
    import numpy as np
    import onnx
    import onnxruntime as ort

    from scgan import paths
    from scgan.model import fold_spectral_norm

    paths.check_suffix("out_path", out_path, (".onnx",), "an ONNX file")
    if isinstance(generator_or_checkpoint, str | os.PathLike) and Path(generator_or_checkpoint).exists():
        paths.check_outputs_apart({"out_path": out_path}, {"checkpoint": generator_or_checkpoint})
    paths.prepare_output_file("out_path", out_path)
    generator, default_name, default_source = _resolve(generator_or_checkpoint, seed)
    if with_saliency and generator.saliency_branch is None:
        raise InputError(f"with_saliency: {default_name} has no saliency branch (config saliency=False)")
    config = generator.config
    size = config.image_size
    folded = fold_spectral_norm(generator).cpu()
    graph = ColorizerGraph(folded, with_saliency).eval()
    output_names = ["rgb", "saliency"] if with_saliency else ["rgb"]
    metadata = {
        "name": name or default_name,
        "input_size": str(size),
        "source": source or default_source,
        "paper": PAPER,
        "preset": config.name,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "producer": "scgan-bench scgan.export",
    }

    with atomic_path(out_path) as tmp:
        example = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(seed))
        with warnings.catch_warnings(), _quiet_exporter_logs():
            # torch.export's own deprecation chatter; real failures raise.
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
            torch.onnx.export(
                graph,
                (example,),
                str(tmp),
                input_names=["gray"],
                output_names=output_names,
                dynamic_shapes={"gray": {0: torch.export.Dim("batch", min=1, max=4096)}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
        model = onnx.load(str(tmp), load_external_data=False)
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
            raise ExportCheckError(f"{out_path}: export produced external data; expected one self-contained file")
        del model.metadata_props[:]
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        model.doc_string = f"SCGAN colorizer {metadata['name']}: gray (N,1,{size},{size}) [0,1] -> rgb [0,1]"
        try:
            onnx.checker.check_model(model, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportCheckError(f"{out_path}: ONNX checker: {exc}") from exc
        onnx.save(model, str(tmp))

        # ONNX Runtime against PyTorch (the original generator, spectral norm and all), batch 2 != traced batch 1.
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        probe = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(seed + 1))
        ort_outputs = session.run(output_names, {"gray": probe.numpy()})
        was_training = generator.training
        generator.eval()
        device = next(generator.parameters()).device
        with torch.no_grad():
            rgb, saliency = generator(probe.to(device) * 2.0 - 1.0)
        generator.train(was_training)
        expected = [((rgb + 1.0) * 0.5).cpu().numpy()]
        if with_saliency:
            expected.append(saliency.cpu().numpy())
        diffs = []
        for out_name, got, want in zip(output_names, ort_outputs, expected):
            if got.shape != want.shape:
                raise ExportCheckError(f"{out_path}: output {out_name} has shape {got.shape}, PyTorch {want.shape}")
            diffs.append(float(np.abs(got - want).max()))
        max_diff = max(diffs)
        if not max_diff <= atol:
            raise ExportCheckError(
                f"{out_path}: ONNX Runtime differs from PyTorch by {max_diff:.3g} (> {atol:g}) "
                f"on {', '.join(output_names)}; nothing written"
            )
    return max_diff
