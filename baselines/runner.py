"""Run a colorizer ONNX file with ONNX Runtime behind the project's colorize interface.

Provider choice (docs/baselines.md): the CUDA execution provider only where a GPU is really usable (torch sees a CUDA
device *and* ONNX Runtime offers the CUDA provider), confirmed afterwards with ``session.get_providers()``; the CPU
provider otherwise. onnxruntime-gpu lists CUDAExecutionProvider as available even on machines without a GPU and, when
asked for it there, prints errors before falling back: we never ask for it then, and keep ORT's logger at "error"
so that a CPU run prints nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from metrics.device import cuda_usable
from scgan.checkpoint import file_sha256  # re-exported: the one file hash of the project (weights, ONNX files)

from .contract import INPUT_NAME, OUTPUT_NAME, SALIENCY_NAME, validate_colorizer

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
# ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. 3 keeps the provider-probing warnings away.
_ORT_LOG_SEVERITY = 3


def choose_providers(device: str = "auto") -> list[str]:
    """ORT providers for ``device``: "auto" (CUDA where usable, else CPU), "cpu", or "cuda"/"cuda:N" (an error
    naming the reason when no usable GPU is present)."""
    device = str(device).lower()
    if device == "cpu":
        return [CPU_PROVIDER]
    if device == "auto":
        return [CUDA_PROVIDER, CPU_PROVIDER] if cuda_usable() else [CPU_PROVIDER]
    if device.startswith("cuda"):
        if not cuda_usable():
            raise ValueError(
                f"device={device!r}: no usable GPU for ONNX Runtime (torch.cuda.is_available()="
                f"{torch.cuda.is_available()}); use device='cpu' or 'auto'"
            )
        return [CUDA_PROVIDER, CPU_PROVIDER]
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")


def make_session(path: str | os.PathLike, device: str = "auto", threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on the providers ``choose_providers(device)`` gives, quiet on CPU.

    When CUDA was requested but the session did not get it (``session.get_providers()``), raises for an explicit
    "cuda" device and keeps the CPU session for "auto".
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(_ORT_LOG_SEVERITY)
    providers = choose_providers(device)
    options = ort.SessionOptions()
    options.log_severity_level = _ORT_LOG_SEVERITY
    if threads:
        options.intra_op_num_threads = int(threads)
    provider_options = None
    if providers[0] == CUDA_PROVIDER:
        index = int(str(device).split(":", 1)[1]) if ":" in str(device) else 0
        provider_options = [{"device_id": index}, {}]
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=providers, provider_options=provider_options
    )
    active = session.get_providers()
    if providers[0] == CUDA_PROVIDER and CUDA_PROVIDER not in active and str(device).lower().startswith("cuda"):
        raise RuntimeError(f"{path}: ONNX Runtime did not start the CUDA provider (active: {active})")
    return session


_HASH_THE_FILE = "file"


class OnnxColorizer:
    """A colorizer ONNX file run by ONNX Runtime; implements ``scgan.colorize.Colorizer``.

    Attributes: ``name``, ``input_size`` (int, or None for any size), ``sha256`` (by default of the ONNX file; the
    caller passes the weights file's hash, or None for a randomly initialised network), ``model_sha256`` (always of
    the ONNX file),
    ``providers`` (what the session really runs on), ``info`` (the contract metadata), ``has_saliency``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "auto",
        batch_size: int = 16,
        name: str | None = None,
        sha256: str | None = _HASH_THE_FILE,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.info = validate_colorizer(self.path, full_check=False)
        self.name = name or self.info.name
        self.input_size = self.info.input_size
        self.has_saliency = self.info.has_saliency
        # sha256 of the ONNX graph itself (changes when the export code changes, even for the same weights).
        self.model_sha256 = file_sha256(self.path)
        self.sha256 = self.model_sha256 if sha256 == _HASH_THE_FILE else sha256
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.session = make_session(self.path, device=device, threads=threads)
        self.providers = self.session.get_providers()
        self._output_names = [OUTPUT_NAME] + ([SALIENCY_NAME] if self.has_saliency else [])

    def __repr__(self) -> str:
        return f"OnnxColorizer({self.name!r}, input_size={self.input_size}, providers={self.providers})"

    def _check_gray(self, gray01: torch.Tensor) -> None:
        if not isinstance(gray01, torch.Tensor) or gray01.ndim != 4 or gray01.shape[1] != 1:
            shape = tuple(gray01.shape) if isinstance(gray01, torch.Tensor) else type(gray01).__name__
            raise ValueError(f"{self.name}: expected gray (N, 1, H, W) in [0, 1], got {shape}")
        if self.input_size is not None and tuple(gray01.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"{self.name}: the model takes {self.input_size}x{self.input_size}, got {tuple(gray01.shape[-2:])} "
                "(use scgan.colorize.colorize to resize)"
            )

    def predict(self, gray01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """gray (N, 1, S, S) float in [0, 1] -> (rgb (N, 3, S, S) in [0, 1], saliency (N, 1, S, S) or None), in
        batches of ``batch_size``; returned as float32 on the input's device (``scgan.colorize.colorize_with_saliency``
        uses it)."""
        self._check_gray(gray01)
        array = gray01.detach().to("cpu", torch.float32).contiguous().numpy()
        rgb_parts, saliency_parts = [], []
        for start in range(0, array.shape[0], self.batch_size):
            outputs = self.session.run(self._output_names, {INPUT_NAME: array[start : start + self.batch_size]})
            rgb_parts.append(outputs[0])
            if self.has_saliency:
                saliency_parts.append(outputs[1])
        rgb = torch.from_numpy(np.concatenate(rgb_parts, axis=0)).to(gray01.device)
        saliency = (
            torch.from_numpy(np.concatenate(saliency_parts, axis=0)).to(gray01.device) if saliency_parts else None
        )
        return rgb, saliency

    def colorize_at_size(self, gray01: torch.Tensor) -> torch.Tensor:
        """gray (N, 1, S, S) in [0, 1] at the model's size -> sRGB (N, 3, S, S) in [0, 1] (the Colorizer protocol)."""
        return self.predict(gray01)[0]

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """RGB or gray images (N, 3|1, H, W) float in [0, 1] -> colorized sRGB (N, 3, H, W) in [0, 1].

        The shared pipeline ``scgan.colorize.colorize`` does the gray conversion, the resize to ``input_size`` and
        (``raw=False``) the Lab recombination of the predicted chroma with the full-resolution input luminance.
        """
        from scgan.colorize import colorize

        return colorize(self, images, raw=raw)
