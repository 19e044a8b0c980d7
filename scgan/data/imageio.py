"""Image files in and out: decoding any photo to uint8 RGB, the gray rule, tensors, and writing PNGs.

Every command reads a photo through :func:`load_image` (docs/data.md gives the rules and the reasons behind them):
``np.ndarray`` uint8 ``(H, W, 3)``, RGB, sRGB values as stored (ICC profiles are not applied, like OpenCV and
scikit-image); EXIF orientation applied; palette, CMYK, alpha, 16-bit, gray and 1-bit files converted. In memory for
models and metrics: ``torch.float32`` ``(3, H, W)`` or ``(N, 3, H, W)``, RGB, ``[0, 1]`` (:func:`to_tensor`).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from scgan.atomic import atomic_path
from scgan.errors import ImageReadError, InputError

# The gray rule (docs/data.md): an image whose 99th percentile of |R-G| + |G-B| (0..255 values) is at most this is gray.
GRAY_CHROMA_THRESHOLD = 2.0


@dataclass(frozen=True)
class ImageEntry:
    """One image of a data set.

    ``name``: relative POSIX path inside its source (``"sub/a.jpg"``), the pairing key.
    ``path``: where the file is.
    ``label``: class index (0..999 for ImageNet), ``-1`` when the set has no labels.
    """

    name: str
    path: Path
    label: int = -1

    @property
    def has_label(self) -> bool:
        return self.label >= 0


# ----------------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------------

# What Pillow (and the decoders under it) raise on a file it cannot read. TypeError and the like are left out on
# purpose: they would be bugs here, not bad files.
DECODE_ERRORS = (
    OSError,  # includes PIL.UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # Pillow raises it for malformed PNG/GIF structures
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def load_image(path: str | os.PathLike | ImageEntry) -> np.ndarray:
    """Read an image file as ``np.ndarray`` uint8 ``(H, W, 3)``, RGB (sRGB values as stored, ICC profiles ignored).

    Rules (docs/data.md): EXIF orientation is applied; the image is fully decoded here, so a truncated or corrupt file
    fails now and not later; the first frame of a multi-frame file is used; gray and 1-bit files become three equal
    channels; palette files are expanded; CMYK uses Pillow's conversion; alpha (RGBA, LA, palette transparency) is
    composited over white; 16-bit gray is scaled with ``round(v * 255 / 65535)``; 16-bit RGB(A) PNGs keep Pillow's
    high byte (``v // 256``, within one level of the rounded scale).

    ``path`` may also be an ``ImageEntry``. Raises ``ImageReadError(path, reason)`` for a missing, empty, truncated or
    undecodable file and for pixel formats without a defined 0..255 meaning (32-bit float).
    """
    path = Path(path.path if isinstance(path, ImageEntry) else path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(path, f"cannot stat file: {exc}") from exc
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as opened:
            # Full decode now: Pillow is lazy, and a truncated file would otherwise fail (or, with
            # ImageFile.LOAD_TRUNCATED_IMAGES, silently turn gray) somewhere far from here.
            opened.load()
            # In place: a copy of a huge decoded photo would double the memory this read needs.
            ImageOps.exif_transpose(opened, in_place=True)
            return _pil_to_rgb_array(opened, path)
    except ImageReadError:
        raise
    except DECODE_ERRORS as exc:
        raise ImageReadError(path, _decode_error_reason(exc)) from exc


def _decode_error_reason(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if "cannot identify image file" in message:
        return "not a recognised image format (cannot identify image file)"
    if "truncated" in message.lower():
        return f"truncated image data ({message})"
    return f"cannot decode image ({type(exc).__name__}: {message})"


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb * a + 255 * (1 - a)`` with ``a = alpha / 255``, rounded half up; uint8 (H, W, 3)."""
    rgb = rgb.astype(np.int32)
    a = alpha.astype(np.int32)[..., None]
    out = (rgb * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _pil_to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("RGB", "L", "1") and "transparency" in image.info:
        # PNG colour-key transparency (tRNS): the keyed pixels are transparent, like alpha 0.
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if mode in ("L", "1"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit gray (PNG, TIFF). Mode "I" is 32-bit signed: treated as 16-bit data, clipped to 0..65535.
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        gray = ((values + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535), since 65535 = 255 * 257
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise ImageReadError(path, "32-bit float image: no defined 0..255 value range, convert it to 8 or 16 bit")
    if mode == "P":
        if "transparency" in image.info:
            image = image.convert("RGBA")
            mode = "RGBA"
        else:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if mode in ("PA", "RGBa", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"), dtype=np.uint8)
        rgb = np.repeat(la[..., :1], 3, axis=2)
        return _composite_on_white(rgb, la[..., 1])
    try:
        converted = image.convert("RGB")  # CMYK, YCbCr, RGBX, HSV, ...
    except ValueError as exc:
        raise ImageReadError(path, f"unsupported pixel mode {mode!r}: {exc}") from exc
    return np.asarray(converted, dtype=np.uint8).copy()


# ----------------------------------------------------------------------------------------------------------------------
# Gray rule
# ----------------------------------------------------------------------------------------------------------------------


def _as_uint8_hwc(img: Any, what: str = "image") -> np.ndarray:
    """Accept uint8 (H, W, 3) arrays, or float (3, H, W) tensors/arrays in [0, 1] (converted with ``to_uint8``)."""
    if isinstance(img, torch.Tensor):
        return to_uint8(img)
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"{what}: expected uint8 (H, W, 3) RGB, got shape {tuple(arr.shape)}")
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return to_uint8(torch.from_numpy(np.ascontiguousarray(arr)))
    raise InputError(f"{what}: expected uint8 (H, W, 3) or float (3, H, W) in [0, 1], got dtype {arr.dtype}")


def chroma_p99(img: Any) -> float:
    """99th percentile of ``|R - G| + |G - B|`` over the pixels, on 0..255 values.

    ``img``: uint8 ``(H, W, 3)`` RGB, or float ``(3, H, W)`` RGB in [0, 1] (rounded to 0..255 first).
    The percentile is numpy's default (linear interpolation between the two nearest ranks).
    """
    arr = _as_uint8_hwc(img, "chroma_p99")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"chroma_p99: empty image of shape {tuple(arr.shape)}")
    # A histogram of the integer chroma values 0..510, built a band of rows at a time: memory stays small for a huge
    # photo (no full-size int16 copies), and the percentile below is exactly numpy's.
    histogram = np.zeros(511, dtype=np.int64)
    rows = max(1, _CHROMA_CHUNK_PIXELS // arr.shape[1])
    for top in range(0, arr.shape[0], rows):
        rgb = arr[top : top + rows].astype(np.int16)
        chroma = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
        histogram += np.bincount(chroma.ravel(), minlength=511)
    return _percentile_99_of_histogram(histogram)


# Pixels per band of rows in chroma_p99.
_CHROMA_CHUNK_PIXELS = 1 << 20


def _percentile_99_of_histogram(histogram: np.ndarray) -> float:
    """``np.percentile(values, 99)`` (method "linear") of the integer values a histogram counts, computed as numpy
    does: virtual index ``(n - 1) * 0.99``, its two neighbours in sorted order, numpy's ``_lerp`` (checked equal on
    3,000 random integer arrays)."""
    count = int(histogram.sum())
    cumulative = np.cumsum(histogram)
    virtual = (count - 1) * np.true_divide(99, 100)
    below = int(np.floor(virtual))
    above = min(below + 1, count - 1)
    gamma = virtual - below
    low = np.int16(np.searchsorted(cumulative, below, side="right"))
    high = np.int16(np.searchsorted(cumulative, above, side="right"))
    step = high - low
    value = high - step * (1 - gamma) if gamma >= 0.5 else low + step * gamma
    return float(value)


def is_gray(img: Any) -> bool:
    """True when the image has negligible chroma: ``chroma_p99(img) <= 2`` (docs/data.md)."""
    return chroma_p99(img) <= GRAY_CHROMA_THRESHOLD


# ----------------------------------------------------------------------------------------------------------------------
# Tensors and saving
# ----------------------------------------------------------------------------------------------------------------------


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, C)`` (or ``(H, W)``) -> ``torch.float32`` ``(C, H, W)`` in [0, 1] (``value / 255``)."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise InputError(f"to_tensor: expected uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise InputError(f"to_tensor: expected (H, W, C), got shape {tuple(arr.shape)}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float32).div_(255.0)


def to_uint8(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] -> uint8 ``(H, W, C)`` / ``(N, H, W, C)``.

    Values are clipped to [0, 1] and rounded half up (``floor(x * 255 + 0.5)``). NaN or infinity is an error.
    """
    t = torch.as_tensor(tensor).detach().cpu()
    if t.dtype == torch.uint8:
        raise InputError("to_uint8: already uint8 (expected float in [0, 1])")
    if not t.is_floating_point():
        raise InputError(f"to_uint8: expected a float tensor in [0, 1], got {t.dtype}")
    if t.ndim not in (3, 4):
        raise InputError(f"to_uint8: expected (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InputError("to_uint8: image contains NaN or infinite values")
    t = t.to(torch.float64).clamp(0.0, 1.0)
    scaled = torch.floor(t * 255.0 + 0.5).to(torch.uint8)
    return scaled.movedim(-3, -1).contiguous().numpy()


def save_image(img: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write an image as PNG atomically (temp file beside it, then rename) and return the path.

    ``img``: uint8 ``(H, W, 3)`` / ``(H, W)`` / ``(H, W, 1)``, or float ``(3, H, W)`` / ``(1, H, W)`` in [0, 1]
    (tensor or array; rounded with ``to_uint8``). One channel is written as an 8-bit gray PNG.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"save_image writes PNG: {path} must end in .png")
    if isinstance(img, torch.Tensor) or np.issubdtype(np.asarray(img).dtype, np.floating):
        t = torch.as_tensor(img)
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise InputError(f"save_image {path}: expected float (3, H, W) or (1, H, W), got {tuple(t.shape)}")
        arr = to_uint8(t)
    else:
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            raise InputError(f"save_image {path}: expected uint8 or float in [0, 1], got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise InputError(f"save_image {path}: expected (H, W, 3) or (H, W), got {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"save_image {path}: empty image {tuple(arr.shape)}")
    pil = Image.fromarray(np.ascontiguousarray(arr), mode="L" if arr.ndim == 2 else "RGB")
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
    return path
