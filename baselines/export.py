"""Export a baseline to the ONNX colorizer contract, checked against PyTorch with ONNX Runtime.

Every export: torch -> ONNX (opset 17, dynamic batch, fixed H and W = the model's input size, one self-contained
file, written atomically), ``onnx.checker``, the contract validator, then ONNX Runtime output vs PyTorch output on a
random gray batch: the max abs difference is returned and the export fails above ``PARITY_TOLERANCE`` (1e-4), as for
SCGAN's own export.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .contract import INPUT_NAME, OUTPUT_NAME, SALIENCY_NAME, ColorizerInfo, check_model, set_metadata

PARITY_TOLERANCE = 1e-4
OPSET = 17
RANDOM_INIT_SEED = 0


class ExportParityError(RuntimeError):
    """ONNX Runtime and PyTorch disagree by more than the tolerance on the same input."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    info: ColorizerInfo


def onnx_parity(module: nn.Module, onnx_path: str | os.PathLike, example: torch.Tensor) -> float:
    """Max abs difference between ``module(example)`` in PyTorch and the ONNX file in ONNX Runtime (CPU), over every
    output (a module returning a tuple is compared output by output, in the file's output order).

    This is the same check as ``scgan.export.export_generator`` does inline (that one is not exposed as a helper).
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module(example)
    expected = expected if isinstance(expected, tuple | list) else (expected,)
    got = session.run(None, {session.get_inputs()[0].name: example.detach().cpu().numpy()})
    if len(got) != len(expected):
        raise ExportParityError(f"{onnx_path}: {len(got)} ONNX outputs but {len(expected)} PyTorch outputs")
    return max(float(np.max(np.abs(g - e.detach().cpu().numpy()))) for g, e in zip(got, expected))


def export_module(
    module: nn.Module,
    out_path: str | os.PathLike,
    input_size: int,
    metadata: dict[str, str],
    has_saliency: bool = False,
    seed: int = 0,
    batch: int = 2,
) -> ExportResult:
    """Export a contract module (gray (N,1,S,S) [0,1] -> rgb (, saliency)) to ``out_path`` and check it.

    ``metadata`` must hold at least name, source and paper; input_size is added. Raises ExportParityError (the file
    is removed) when ONNX Runtime differs from PyTorch by more than PARITY_TOLERANCE.
    """
    from scgan.atomic import atomic_path

    module = module.eval()
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise ValueError(f"--out {out_path}: the file name must end in .onnx")
    generator = torch.Generator().manual_seed(seed)
    example = torch.rand(batch, 1, input_size, input_size, generator=generator)
    output_names = [OUTPUT_NAME] + ([SALIENCY_NAME] if has_saliency else [])
    dynamic_axes = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]}
    import onnx

    with atomic_path(out_path) as tmp:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated in favour of torch.export; it handles these graphs
            # (element-wise Lab maths, BatchNorm, Resize) reliably and with a fixed opset, so it is used on purpose.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
        model = onnx.load(str(tmp))
        set_metadata(model, input_size=input_size, **metadata)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ExportParityError(f"{out_path}: onnx.checker failed: {exc}") from exc
        info = check_model(model, out_path)
        onnx.save(model, str(tmp))
        # Probe with another batch size than the traced one: checks the dynamic batch as well as the values.
        probe = torch.rand(batch + 1, 1, input_size, input_size, generator=generator)
        difference = onnx_parity(module, tmp, probe)
        if not difference <= PARITY_TOLERANCE:
            raise ExportParityError(
                f"{out_path}: ONNX Runtime differs from PyTorch by {difference:.3g} (max abs), above {PARITY_TOLERANCE}"
            )
    return ExportResult(path=out_path, max_abs_diff=difference, info=info)


def build_baseline(name: str, weights: str | os.PathLike | None = None, seed: int = RANDOM_INIT_SEED, **options):
    """The contract module of a published baseline, in eval mode, and a description of its weights.

    Returns ``(module, source, sha256)``: with ``weights`` the file is loaded strictly (``source`` names the file and
    its sha256); without, the architecture is randomly initialised with ``seed`` (``source`` says so, sha256 None).
    ``options`` are the architecture's build options (smaller test settings, ECCV 2016's ``temperature``); they
    override the build options a checkpoint trained here records.
    """
    from .archs._common import read_weights_file
    from .registry import get_architecture
    from .runner import file_sha256

    arch = get_architecture(name)
    if weights is not None and Path(weights).is_file():
        from .train import read_build_options

        options = {**read_build_options(weights), **options}  # a checkpoint of a smaller variant trained here
    torch.manual_seed(seed)
    net = arch.build(**options)
    if weights is not None:
        state_dict, released = read_weights_file(weights)
        arch.load_weights(net, state_dict, released=released)
        sha = file_sha256(weights)
        origin = "released weights" if released else "weights trained with scgan-bench"
        source = f"{origin}: {Path(weights).name} sha256={sha}"
    else:
        sha = None
        source = f"random initialisation (seed {seed}; no weights loaded)"
    return arch.colorizer(net).eval(), source, sha


def export_baseline(
    name: str,
    weights: str | os.PathLike | None = None,
    out_path: str | os.PathLike = "baseline.onnx",
    input_size: int | None = None,
    seed: int = RANDOM_INIT_SEED,
    **options,
) -> ExportResult:
    """Export the published baseline ``name`` (``baselines.list_methods()``) to the colorizer contract.

    ``weights``: a PyTorch state dict in the authors' layout (or this project's checkpoint of it); None exports the
    randomly initialised architecture (the metadata ``source`` says so). ``input_size`` overrides the paper's size
    (for fully convolutional nets and tests); ``options`` are build options (smaller test settings).
    """
    from .registry import get_architecture
    from .train import trained_size

    arch = get_architecture(name)
    module, source, _ = build_baseline(name, weights, seed=seed, **options)
    if input_size is None and weights is not None and Path(weights).is_file():
        input_size = trained_size(weights)
    size = int(input_size or arch.input_size)
    metadata = {"name": name, "source": source, "paper": arch.paper}
    if options:
        metadata["build_options"] = repr(dict(sorted(options.items())))
    return export_module(module, out_path, size, metadata, has_saliency=arch.has_saliency)
