"""Salient-object detectors for SCGAN's saliency ground truth: uint8 RGB ``(H, W, 3)`` -> float32 ``(H, W)`` in [0, 1].

* :class:`OnnxSaliencyDetector`: any SOD model exported to ONNX whose input is an RGB image and whose first output is a
  one-channel map in [0, 1] (docs/training.md). Conventions (those of U^2-Net / U^2-Net-p, the development model): input
  ``1x3xSxS`` float32, RGB / 255 then ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); ``S`` is read
  from the model's input shape (320 for U^2-Net-p) and the image is squashed to it (bilinear); the first output is the
  fused map after sigmoid, resized back to the image size (bilinear). A model whose output leaves [0, 1] slightly
  (numerical noise) is clipped; one that is clearly not a probability map is an error.
* :func:`spectral_residual_saliency`: the weight-free spectral-residual detector of Hou & Zhang (CVPR 2007), so that the
  pipeline runs on a fresh machine: on the gray image downscaled to 64 px (long side), the log amplitude spectrum minus
  its 3x3 local average is recombined with the original phase, inverse-transformed, squared, smoothed with a Gaussian
  and normalised to [0, 1].

``scgan.saliency`` runs a detector over a data set and writes the maps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from scgan.errors import InputError

#: ImageNet normalisation used by U^2-Net-style SOD models (docs/training.md).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

#: Tolerance for an ONNX model's output leaving [0, 1] before it is considered "not a probability map".
_RANGE_SLACK = 1e-3


def _check_rgb_uint8(image: np.ndarray, what: str = "image") -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise InputError(f"{what}: expected a uint8 RGB array of shape (H, W, 3), got shape {shape} dtype {dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{what}: empty image of shape {image.shape}")


def resize_float_map(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float32 (H, W) array (Pillow mode 'F', no quantisation)."""
    if array.shape == (height, width):
        return array.astype(np.float32, copy=False)
    resized = Image.fromarray(array.astype(np.float32, copy=False), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def _gray_bt601(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float64 (H, W) BT.601 luma on 0..1."""
    rgb = image.astype(np.float64) / 255.0
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


# ---------------------------------------------------------------------------------------------- spectral residual
def spectral_residual_saliency(image: np.ndarray, work_size: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) of one image.

    Args:
        image: uint8 RGB array (H, W, 3), sRGB.
        work_size: the long side of the downscaled gray image the spectrum is analysed on (64 in the paper).
        sigma: standard deviation, in pixels of the downscaled image, of the Gaussian that smooths the squared
            reconstruction.

    Returns:
        float32 (H, W) in [0, 1] (resized back to the input size, bilinear); constant images give all zeros.
    """
    from scipy import ndimage

    _check_rgb_uint8(image)
    if work_size < 8:
        raise InputError(f"work_size must be at least 8 pixels, got {work_size}")
    height, width = image.shape[:2]
    scale = work_size / max(height, width)
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    gray = resize_float_map(_gray_bt601(image).astype(np.float32), small_h, small_w).astype(np.float64)

    spectrum = np.fft.fft2(gray)
    # log amplitude; the tiny floor keeps log finite where the amplitude is exactly zero (constant images).
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    phase = np.angle(spectrum)
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="nearest")
    reconstruction = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    # Zero padding at the borders damps the bright edges left by the FFT's periodic wrap-around.
    saliency = ndimage.gaussian_filter(reconstruction, sigma=sigma, mode="constant")

    low, high = float(saliency.min()), float(saliency.max())
    if not np.isfinite(high) or high - low <= 1e-12 * max(1.0, abs(high)) or float(gray.max() - gray.min()) < 1e-6:
        return np.zeros((height, width), dtype=np.float32)
    saliency = (saliency - low) / (high - low)
    return np.clip(resize_float_map(saliency.astype(np.float32), height, width), 0.0, 1.0)


class SpectralResidualDetector:
    """Callable wrapper of :func:`spectral_residual_saliency` with the detector interface (``name``, ``__call__``)."""

    def __init__(self, work_size: int = 64, sigma: float = 2.5):
        self.work_size = work_size
        self.sigma = sigma
        self.name = f"spectral-residual(work_size={work_size},sigma={sigma})"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return spectral_residual_saliency(image, self.work_size, self.sigma)


# ----------------------------------------------------------------------------------------------------- ONNX SOD
def cpu_or_cuda_providers() -> list[str]:
    """ONNX Runtime providers that really work here: CUDA only when torch sees a GPU, else CPU alone.

    onnxruntime-gpu lists the CUDA provider even on machines without a GPU; asking for it there prints errors, so it is
    requested only when a device exists.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = []
    try:
        import torch

        if torch.cuda.is_available() and "CUDAExecutionProvider" in available:
            providers.append("CUDAExecutionProvider")
    except ImportError:  # pragma: no cover - torch is a dependency; keep the CPU path usable without it
        pass
    providers.append("CPUExecutionProvider")
    return providers


class OnnxSaliencyDetector:
    """A salient-object-detection ONNX model (U^2-Net-style conventions, see the module docstring).

    Calling it on a uint8 RGB (H, W, 3) image returns float32 (H, W) in [0, 1].
    """

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"saliency model not found: {path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no provider chatter on CPU-only machines
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=list(providers or cpu_or_cuda_providers())
            )
        except Exception as exc:  # ORT raises its own exception types for unreadable or invalid models
            raise InputError(f"{path}: cannot load as an ONNX model: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"{path}: a saliency model must have exactly one input, it has {len(inputs)}")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise InputError(f"{path}: input {self.input_name!r} must be (N, 3, H, W) RGB, got shape {shape}")
        # Fixed spatial size when the model declares one, else U^2-Net's 320.
        self.input_size = (
            (int(shape[2]), int(shape[3])) if isinstance(shape[2], int) and isinstance(shape[3], int) else (320, 320)
        )
        self.path = path
        self.name = f"onnx:{path.name}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _check_rgb_uint8(image)
        height, width = image.shape[:2]
        in_h, in_w = self.input_size
        resized = np.asarray(
            Image.fromarray(image).resize((in_w, in_h), Image.Resampling.BILINEAR), dtype=np.float32
        )
        normalised = (resized / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        batch = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)
        output = np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
        if output.ndim == 4:
            if output.shape[:2] != (1, 1):
                raise InputError(f"{self.path}: first output must have one channel, got shape {output.shape}")
            output = output[0, 0]
        elif output.ndim == 3 and output.shape[0] == 1:
            output = output[0]
        elif output.ndim != 2:
            raise InputError(f"{self.path}: first output must be a one-channel map, got shape {output.shape}")
        if not np.all(np.isfinite(output)):
            raise InputError(f"{self.path}: model produced non-finite saliency values")
        low, high = float(output.min()), float(output.max())
        if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            raise InputError(
                f"{self.path}: first output must be a map in [0, 1] (after sigmoid), "
                f"got values in [{low:.3g}, {high:.3g}]"
            )
        return np.clip(resize_float_map(output, height, width), 0.0, 1.0)


def build_detector(
    model: str | os.PathLike | None = None, method: str | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The detector the command line asks for: ``model`` (an ONNX path) or ``method`` (``"spectral"``)."""
    if model is not None and method is not None:
        raise InputError("give either --model SOD.onnx or --method spectral, not both")
    if model is not None:
        return OnnxSaliencyDetector(model)
    if method in (None, "spectral"):
        return SpectralResidualDetector()
    raise InputError(f"unknown saliency method {method!r}; available: spectral (or --model SOD.onnx)")
