"""ONNX Runtime side of the classifiers: provider choice, sessions, the cached ONNX export of a torch classifier, and
the inspection of a user-supplied ONNX classifier (``onnx:PATH.onnx``).

Exported graphs take the already preprocessed batch ``image`` float32 (N, 3, S, S) (dynamic N) and return ``logits``
(N, 1000) and ``features`` (N, D) (the pooled embedding). The resize/crop/normalisation stays in torch, shared by both
backends, so the torch and ONNX Runtime classifiers see identical inputs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metrics.atomic import atomic_path
from metrics.device import cuda_usable

#: Bump when the exported graph changes (inputs, outputs, opset): old cache files are then ignored.
EXPORT_FORMAT = "scgan-classifier-onnx-v1"
EXPORT_OPSET = 18
#: Largest |ORT - torch| logit difference accepted when a fresh export is checked.
EXPORT_ATOL = 1e-4
# ONNX Runtime log severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
_ORT_LOG_SEVERITY = 3


def cache_dir() -> Path:
    """Folder for exported ONNX graphs: ``$SCGAN_CACHE_DIR`` if set, else ``~/.cache/scgan-bench``."""
    env = os.environ.get("SCGAN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scgan-bench"


def create_session(path: str | Path, device: str = "cpu", num_threads: int | None = None,
                   cpu_fallback: bool = False):
    """An ``onnxruntime.InferenceSession`` on ``device`` (from ``metrics.device.resolve_device``), logging errors only.

    CUDA is requested only for a CUDA device and only when :func:`cuda_usable`; the providers the session really got
    are checked (``session.get_providers()``): when CUDA was asked for and not obtained (e.g. missing CUDA libraries),
    a CPU session is returned if ``cpu_fallback`` (for ``device="auto"``), else RuntimeError is raised rather than
    running silently on the CPU.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = _ORT_LOG_SEVERITY
    if num_threads is not None:
        options.intra_op_num_threads = int(num_threads)
    if device.startswith("cuda"):
        if not cuda_usable():
            raise ValueError(
                f"device {device!r}: this onnxruntime build has no usable CUDAExecutionProvider "
                f"(available: {ort.get_available_providers()})"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ValueError(f"{path}: ONNX Runtime cannot load this model ({type(exc).__name__}: {exc})") from exc
    wanted = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    if session.get_providers()[0] != wanted and cpu_fallback and device.startswith("cuda"):
        return create_session(path, "cpu", num_threads)
    if session.get_providers()[0] != wanted:
        raise RuntimeError(f"{path}: asked ONNX Runtime for {wanted}, got {session.get_providers()}")
    return session


class _LogitsAndFeatures(nn.Module):
    """Export wrapper: one graph, two outputs (``forward_logits_and_pooled`` of the wrapped classifier)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        return self.model.forward_logits_and_pooled(image)


def _export_to(model: nn.Module, path: Path, input_size: int) -> None:
    example = torch.zeros(2, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1)
    # The dynamo exporter prints progress lines, logs warnings about optional torchvision ops and emits
    # FutureWarnings from its dependencies: keep them quiet (export errors still raise).
    onnx_logger = logging.getLogger("torch.onnx")
    previous_level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LogitsAndFeatures(model).eval(),
                (example,),
                str(path),
                input_names=["image"],
                output_names=["logits", "features"],
                dynamic_shapes={"image": {0: batch}},
                opset_version=EXPORT_OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        onnx_logger.setLevel(previous_level)


def _set_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ONNX file's ``metadata_props`` as a dict (reads the graph header only)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def check_against_torch(model: nn.Module, session, input_size: int, seed: int = 0) -> float:
    """Max |ORT - torch| over logits and features on a fixed random batch of 3 in the normalised input range."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, input_size, input_size, generator=gen) * 2 - 1
    with torch.no_grad():
        ref_logits, ref_features = model.forward_logits_and_pooled(x)
    logits, features = session.run(["logits", "features"], {"image": x.numpy()})
    return max(
        float(np.abs(logits - ref_logits.numpy()).max()),
        float(np.abs(features - ref_features.numpy()).max()),
    )


def export_classifier(model: nn.Module, path: str | Path, input_size: int, metadata: dict[str, str] | None = None,
                      atol: float = EXPORT_ATOL) -> float:
    """Export ``model`` (with ``forward_logits_and_pooled``) to ``path`` atomically, checked against torch.

    Returns the max abs difference between ONNX Runtime (CPU) and torch; raises RuntimeError (and writes nothing)
    when it exceeds ``atol``.
    """
    model = model.float().cpu().eval()
    path = Path(path)
    with atomic_path(path) as tmp:
        _export_to(model, tmp, input_size)
        _set_metadata(tmp, {"export_format": EXPORT_FORMAT, **(metadata or {})})
        diff = check_against_torch(model, create_session(tmp, "cpu"), input_size)
        if not diff <= atol:
            raise RuntimeError(f"ONNX export of {path.name}: ONNX Runtime differs from torch by {diff:.3g} > {atol}")
    return diff


def cached_export(model: nn.Module, stem: str, weights_sha256: str, input_size: int,
                  directory: str | Path | None = None) -> Path:
    """Path of ``<stem>-<sha256[:16]>.onnx`` in :func:`cache_dir`, exporting it first when missing or stale.

    The file carries the full weights sha256 and :data:`EXPORT_FORMAT` in its metadata; a file whose metadata does
    not match, or that cannot be read, is exported again (atomically, so concurrent users never see half a file).
    """
    directory = Path(directory) if directory is not None else cache_dir()
    path = directory / f"{stem}-{weights_sha256[:16]}.onnx"
    wanted = {"export_format": EXPORT_FORMAT, "weights_sha256": weights_sha256}
    if path.is_file():
        try:
            meta = read_metadata(path)
        except Exception:  # a truncated or foreign file is simply exported again
            meta = {}
        if all(meta.get(k) == v for k, v in wanted.items()):
            return path
    export_classifier(model, path, input_size, metadata=wanted)
    return path


@dataclass(frozen=True)
class OnnxClassifierInfo:
    """What :func:`inspect_onnx_classifier` found: the input name and static size (None when dynamic), the logits
    output, the optional ``features`` output (rank 2), and the fixed batch size (None when dynamic)."""

    input_name: str
    input_size: int | None
    logits_name: str
    features_name: str | None
    fixed_batch: int | None = None


def inspect_onnx_classifier(session, path: str | Path, num_classes: int = 1000) -> OnnxClassifierInfo:
    """Check that ``session`` is an image classifier with ``num_classes`` logits; raise ValueError saying what is not.

    Input: one float32 (N, 3, H, W) tensor (H == W when static; N dynamic or fixed). Logits: the output named
    ``logits`` if any, else the first output; its shape is checked by running one zero batch.
    ``features``: an extra rank-2 output of that name.
    """
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"{path}: an ONNX classifier must have exactly one input, found {[i.name for i in inputs]}")
    inp = inputs[0]
    if inp.type != "tensor(float)":
        raise ValueError(f"{path}: input {inp.name!r} must be float32, found {inp.type}")
    shape = list(inp.shape)
    if len(shape) != 4 or shape[1] not in (3, "3"):
        raise ValueError(f"{path}: input {inp.name!r} must be (N, 3, H, W), found {shape}")
    h, w = shape[2], shape[3]
    size = None
    if isinstance(h, int) and isinstance(w, int):
        if h != w:
            raise ValueError(f"{path}: input {inp.name!r} must be square, found {h}x{w}")
        size = h
    outputs = {o.name: o for o in session.get_outputs()}
    logits_name = "logits" if "logits" in outputs else session.get_outputs()[0].name
    features_name = "features" if "features" in outputs and len(outputs["features"].shape) == 2 else None
    probe = np.zeros((1, 3, size or 224, size or 224), dtype=np.float32)
    fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    if fixed_batch is not None:
        probe = np.zeros((fixed_batch, *probe.shape[1:]), dtype=np.float32)
    try:
        (logits,) = session.run([logits_name], {inp.name: probe})
    except Exception as exc:  # onnxruntime's own error types
        raise ValueError(f"{path}: running one {probe.shape} image failed ({type(exc).__name__}: {exc})") from exc
    if logits.shape != (probe.shape[0], num_classes):
        raise ValueError(
            f"{path}: output {logits_name!r} has shape {tuple(logits.shape)} for {probe.shape[0]} image(s); an "
            f"ImageNet classifier must return (N, {num_classes}) logits"
        )
    return OnnxClassifierInfo(inp.name, size, logits_name, features_name, fixed_batch)
