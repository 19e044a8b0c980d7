"""Resize policies: how every command brings an image to the size a protocol measures it at (docs/data.md), with a
bit-exact port of OpenCV's ``INTER_LINEAR`` on uint8, and the decode-and-resize path of the evaluation commands."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scgan.data.imageio import DECODE_ERRORS, ImageEntry, is_gray, load_image
from scgan.errors import ImageReadError, InputError

# ----------------------------------------------------------------------------------------------------------------------
# Resizing
# ----------------------------------------------------------------------------------------------------------------------

# OpenCV's fixed-point interpolation weights: 11 fractional bits (INTER_RESIZE_COEF_BITS).
_COEF_BITS = 11
_COEF_ONE = 1 << _COEF_BITS


def _opencv_linear_taps(
    src: int, dst: int, clamp_weights: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and fixed-point weights (w0, w1) of OpenCV's INTER_LINEAR along one axis.

    Half-pixel centres: ``f = (d + 0.5) * src / dst - 0.5`` computed in double then rounded to float32 as OpenCV does;
    ``i0 = floor(f)``; weights ``round(2048 * (1 - frac))`` and ``round(2048 * frac)`` (each rounded half to even).
    Along x OpenCV moves a tap that falls outside the image onto the edge pixel with weights (2048, 0)
    (``clamp_weights``); along y it keeps the weights and clamps only the row index.
    """
    scale = 1.0 / (dst / src)  # OpenCV: scale_x = 1. / inv_scale_x with inv_scale_x = dst / src, in double
    d = np.arange(dst, dtype=np.float64)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = (f - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low = i0 < 0
        frac[low] = 0.0
        i0[low] = 0
        high = i0 >= src - 1
        frac[high] = 0.0
        i0[high] = src - 1
    w0 = np.rint((np.float32(1.0) - frac) * np.float32(_COEF_ONE)).astype(np.int32)
    w1 = np.rint(frac * np.float32(_COEF_ONE)).astype(np.int32)
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    return i0, i1, w0, w1


def resize_bilinear_opencv(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize uint8 ``(H, W, C)`` (or ``(H, W)``) to ``(height, width)`` as ``cv2.resize(..., INTER_LINEAR)`` does.

    Bilinear with half-pixel centres, no antialiasing, OpenCV's fixed-point arithmetic: the horizontal pass is exact
    in integers (weights with 11 fractional bits); the vertical pass reproduces OpenCV's SIMD path
    (``((h0 >> 4) * w0 >> 16) + ((h1 >> 4) * w1 >> 16)``, then ``+2 >> 2``). When both sides shrink by exactly 2,
    OpenCV switches to its area mode, the rounded mean of each 2x2 block; so does this function.
    Checked bit for bit against ``cv2.resize`` of opencv-python-headless 4.14 on x86_64 (1,500 random shapes from
    1x1 to 120x120 inputs and 1 to 300 outputs, 1/3/4 channels, plus the sample photos to 256x256: no difference).
    OpenCV's scalar fallback rounds ``(h0*w0 + h1*w1 + 2**21) >> 22`` instead and may differ by one level where a
    build has no SIMD; see docs/data.md.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise InputError(f"resize: expected uint8 (H, W) or (H, W, C), got {arr.dtype} {tuple(arr.shape)}")
    if height < 1 or width < 1:
        raise InputError(f"resize: output size must be positive, got {height}x{width}")
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[..., None]
    src_h, src_w = arr.shape[:2]
    if src_h == 0 or src_w == 0:
        raise InputError(f"resize: empty input of shape {tuple(arr.shape)}")
    if (src_h, src_w) == (height, width):
        out = arr.copy()
    elif src_h == 2 * height and src_w == 2 * width:
        # OpenCV: "INTER_AREA (fast) is equal to INTER_LINEAR" for an exact 2x shrink, and uses it.
        block = arr.astype(np.int32)
        total = block[0::2, 0::2] + block[0::2, 1::2] + block[1::2, 0::2] + block[1::2, 1::2]
        out = ((total + 2) >> 2).astype(np.uint8)
    else:
        x0, x1, wx0, wx1 = _opencv_linear_taps(src_w, width, clamp_weights=True)
        y0, y1, wy0, wy1 = _opencv_linear_taps(src_h, height, clamp_weights=False)
        rows = np.union1d(y0, y1)  # only the source rows the vertical pass reads
        src_rows = arr[rows]
        # int32 is enough: 255 * 2048 per horizontal value, (value >> 4) * 2048 in the vertical products.
        horizontal = src_rows[:, x0].astype(np.int32) * wx0[None, :, None]
        horizontal += src_rows[:, x1].astype(np.int32) * wx1[None, :, None]
        # OpenCV's SIMD path packs value >> 4 to int16 and keeps the high 16 bits of each product (_mm_mulhi_epi16):
        # arithmetic shifts, i.e. floors.
        horizontal >>= 4
        top = (horizontal[np.searchsorted(rows, y0)] * wy0[:, None, None]) >> 16
        bottom = (horizontal[np.searchsorted(rows, y1)] * wy1[:, None, None]) >> 16
        out = np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


@dataclass(frozen=True)
class ResizePolicy:
    """A named way of bringing an image to the size a model or a metric protocol uses (recorded in outputs)."""

    name: str
    mode: str  # "squash" (both sides to size), "crop" (short side to size, centre crop), "none"
    size: int | None
    interpolation: str | None
    description: str

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) this policy gives for an input of ``height`` x ``width``."""
        if self.mode == "none":
            return height, width
        return self.size, self.size

    def info(self) -> dict[str, Any]:
        """JSON-ready description for recording in outputs."""
        return {
            "name": self.name,
            "mode": self.mode,
            "size": self.size,
            "interpolation": self.interpolation,
            "description": self.description,
        }


_OPENCV_LINEAR = "bilinear, half-pixel centres, no antialias, OpenCV INTER_LINEAR fixed-point on uint8"

RESIZE_POLICIES: dict[str, ResizePolicy] = {
    "squash256": ResizePolicy(
        name="squash256",
        mode="squash",
        size=256,
        interpolation=_OPENCV_LINEAR,
        description="both sides to 256 (aspect ratio not kept), as the SCGAN paper's cv2.resize((256, 256))",
    ),
    "crop256": ResizePolicy(
        name="crop256",
        mode="crop",
        size=256,
        interpolation=_OPENCV_LINEAR,
        description=(
            "short side to 256 (long side int(256 * long / short)), then the centre 256x256 crop "
            "(offset round((side - 256) / 2)), as torchvision Resize(256) + CenterCrop(256) place it"
        ),
    ),
    "native": ResizePolicy(
        name="native",
        mode="none",
        size=None,
        interpolation=None,
        description="unchanged: the file's own size",
    ),
}


def get_resize_policy(policy: str | ResizePolicy) -> ResizePolicy:
    """The ``ResizePolicy`` for a name (or the policy itself); ``InputError`` listing the names otherwise."""
    if isinstance(policy, ResizePolicy):
        return policy
    try:
        return RESIZE_POLICIES[policy]
    except (KeyError, TypeError):
        raise InputError(f"unknown resize policy {policy!r}; choose from {', '.join(RESIZE_POLICIES)}") from None


def resize_policy_info(policy: str | ResizePolicy) -> dict[str, Any]:
    """The description/parameters dict of a policy, for recording in outputs (JSON-ready)."""
    return get_resize_policy(policy).info()


#: Largest image (in pixels) measured at its own size (policy ``native``): 4096 x 4096. The metrics hold several
#: float copies of an image, so a 9000 x 9000 photo would need gigabytes; larger files are refused, naming the file
#: and the policies that bring them to the protocol size.
MAX_NATIVE_PIXELS = 4096 * 4096


def load_for_protocol(path: str | os.PathLike | ImageEntry, policy: str | ResizePolicy) -> tuple[np.ndarray, bool]:
    """``(resize_image(load_image(path), policy), is_gray of the decoded image)``: the one decode-and-resize path of
    ``scgan eval`` and ``scgan leaderboard``.

    Only the decoded uint8 file and the resized result are held (no float copy of the full-resolution image). Under
    ``native`` an image of more than ``MAX_NATIVE_PIXELS`` is an ``ImageReadError`` naming the file (the header is
    read first, so nothing is decoded).
    """
    policy = get_resize_policy(policy)
    path = Path(path.path if isinstance(path, ImageEntry) else path)
    if policy.mode == "none":
        try:
            with Image.open(path) as header:
                width, height = header.size
        except DECODE_ERRORS:
            width = height = 0  # load_image below names the problem
        if width * height > MAX_NATIVE_PIXELS:
            raise ImageReadError(
                path,
                f"{width}x{height} is too large to measure at its own size (more than {MAX_NATIVE_PIXELS:,} pixels); "
                "use a resize policy that brings it to the protocol size (--resize squash256 or crop256)",
            )
    image = load_image(path)
    gray = is_gray(image)
    return resize_image(image, policy), gray


def resize_image(img: np.ndarray, policy: str | ResizePolicy) -> np.ndarray:
    """Apply a resize policy to uint8 ``(H, W, 3)`` RGB (or ``(H, W)``); returns uint8 of the policy's size.

    ``native`` returns the input array itself (no copy).
    """
    policy = get_resize_policy(policy)
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise InputError(f"resize_image: expected uint8 (H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    if policy.mode == "none":
        return arr
    size = policy.size
    if policy.mode == "squash":
        return resize_bilinear_opencv(arr, size, size)
    if policy.mode == "crop":
        height, width = arr.shape[:2]
        if height <= width:
            new_h, new_w = size, max(size, int(size * width / height))
        else:
            new_h, new_w = max(size, int(size * height / width)), size
        resized = resize_bilinear_opencv(arr, new_h, new_w)
        top = int(round((new_h - size) / 2.0))
        left = int(round((new_w - size) / 2.0))
        return np.ascontiguousarray(resized[top : top + size, left : left + size])
    raise InputError(f"resize policy {policy.name!r} has unknown mode {policy.mode!r}")
