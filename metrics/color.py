"""Colour conversions in torch: sRGB <-> BT.601 gray, sRGB <-> CIE L*a*b* (D65, 2 degree observer).

Every function takes and returns batched image tensors ``(N, C, H, W)`` (channel order RGB or L, a, b), keeps the input
dtype (float32 or float64; integer input is rejected: scale it to [0, 1] first), is differentiable, and uses only
element-wise ops (``torch.where``, ``pow``, ``clamp``, multiply/add) so that it exports to ONNX inside a larger graph.

The Lab conversion reproduces ``skimage.color.rgb2lab`` / ``lab2rgb`` (scikit-image 0.26) constant for constant:
sRGB companding with the linear segment below 0.04045 (decoding) and 0.0031308 (encoding), the sRGB -> XYZ matrix of
the sRGB specification (Rec. 709 primaries, D65), the D65 2-degree white point (0.95047, 1.0, 1.08883), and the CIE
f(t) with the threshold 0.008856, slope 7.787 and offset 16/116 (inverse threshold 0.2068966), as scikit-image
uses them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "BT601_WEIGHTS",
    "D65_WHITE",
    "XYZ_FROM_RGB",
    "RGB_FROM_XYZ",
    "rgb_to_gray",
    "gray_to_rgb",
    "rgb_to_linear",
    "linear_to_rgb",
    "rgb_to_xyz",
    "xyz_to_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
]

# ITU-R BT.601 luma (what OpenCV's RGB2GRAY computes and SCGAN trained on).
BT601_WEIGHTS = (0.299, 0.587, 0.114)

# sRGB (linear) -> CIE XYZ, D65, as in the sRGB specification and scikit-image's `xyz_from_rgb`.
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
# The exact inverse (scikit-image computes it the same way: `linalg.inv(xyz_from_rgb)`).
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)

# CIE XYZ of the D65 reference white for the 2 degree observer, Y normalised to 1 (scikit-image's value).
D65_WHITE = (0.95047, 1.0, 1.08883)

# sRGB transfer function (IEC 61966-2-1) thresholds as scikit-image uses them.
_SRGB_DECODE_THRESHOLD = 0.04045
_SRGB_ENCODE_THRESHOLD = 0.0031308
# CIE Lab f(t): cube root above 0.008856, else the linear segment 7.787 t + 16/116; inverse threshold 0.2068966.
LAB_EPSILON = 0.008856
LAB_SLOPE = 7.787
LAB_OFFSET = 16.0 / 116.0
_LAB_INVERSE_THRESHOLD = 0.2068966


def _check_float_image(x: torch.Tensor, channels: int, what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{what}: expected shape (N, {channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{what}: expected a floating-point tensor, got {x.dtype} (scale integer images to [0, 1])")


def _mix(x: torch.Tensor, matrix) -> torch.Tensor:
    """Per-pixel 3x3 matrix product ``out[:, i] = sum_j matrix[i][j] * x[:, j]`` with element-wise ops only."""
    c0, c1, c2 = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    rows = [float(m[0]) * c0 + float(m[1]) * c1 + float(m[2]) * c2 for m in matrix]
    return torch.cat(rows, dim=1)


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B``.

    rgb: (N, 3, H, W) float RGB (any scale; [0, 1] by convention). Returns (N, 1, H, W) of the same dtype and scale.
    """
    _check_float_image(rgb, 3, "rgb_to_gray(rgb)")
    wr, wg, wb = BT601_WEIGHTS
    return wr * rgb[:, 0:1] + wg * rgb[:, 1:2] + wb * rgb[:, 2:3]


def gray_to_rgb(gray: torch.Tensor) -> torch.Tensor:
    """Repeat one gray channel into three: (N, 1, H, W) -> (N, 3, H, W), same dtype and scale."""
    _check_float_image(gray, 1, "gray_to_rgb(gray)")
    return torch.cat([gray, gray, gray], dim=1)


def rgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded [0, 1] values -> linear light (the sRGB decoding curve, element-wise, any shape)."""
    # Each branch sees only inputs where it is valid (clamp), so the pow has a finite gradient everywhere.
    curved = torch.pow((torch.clamp(rgb, min=_SRGB_DECODE_THRESHOLD) + 0.055) / 1.055, 2.4)
    return torch.where(rgb > _SRGB_DECODE_THRESHOLD, curved, rgb / 12.92)


def linear_to_rgb(linear: torch.Tensor) -> torch.Tensor:
    """Linear light -> sRGB-encoded values (the sRGB encoding curve, element-wise, not clipped)."""
    curved = 1.055 * torch.pow(torch.clamp(linear, min=_SRGB_ENCODE_THRESHOLD), 1.0 / 2.4) - 0.055
    return torch.where(linear > _SRGB_ENCODE_THRESHOLD, curved, linear * 12.92)


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, H, W) in [0, 1] -> CIE XYZ (D65, Y of white = 1), same dtype."""
    _check_float_image(rgb, 3, "rgb_to_xyz(rgb)")
    return _mix(rgb_to_linear(rgb), XYZ_FROM_RGB)


def xyz_to_rgb(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (N, 3, H, W) -> sRGB clipped to [0, 1], same dtype (scikit-image's `xyz2rgb`)."""
    _check_float_image(xyz, 3, "xyz_to_rgb(xyz)")
    return torch.clamp(linear_to_rgb(_mix(xyz, RGB_FROM_XYZ)), 0.0, 1.0)


def xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (N, 3, H, W) -> CIE L*a*b* (L in 0..100), D65 2-degree white, same dtype."""
    _check_float_image(xyz, 3, "xyz_to_lab(xyz)")
    wx, wy, wz = D65_WHITE
    t = torch.cat([xyz[:, 0:1] / wx, xyz[:, 1:2] / wy, xyz[:, 2:3] / wz], dim=1)
    cube_root = torch.pow(torch.clamp(t, min=LAB_EPSILON), 1.0 / 3.0)
    f = torch.where(t > LAB_EPSILON, cube_root, LAB_SLOPE * t + LAB_OFFSET)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_xyz(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (N, 3, H, W) -> CIE XYZ (D65, Y of white = 1), same dtype.

    As in scikit-image, a negative intermediate z (impossible colours, b* too large for L*) is set to 0.
    """
    _check_float_image(lab, 3, "lab_to_xyz(lab)")
    fy = (lab[:, 0:1] + 16.0) / 116.0
    fx = lab[:, 1:2] / 500.0 + fy
    fz = torch.clamp(fy - lab[:, 2:3] / 200.0, min=0.0)
    f = torch.cat([fx, fy, fz], dim=1)
    cubed = torch.pow(torch.clamp(f, min=_LAB_INVERSE_THRESHOLD), 3.0)
    t = torch.where(f > _LAB_INVERSE_THRESHOLD, cubed, (f - LAB_OFFSET) / LAB_SLOPE)
    wx, wy, wz = D65_WHITE
    return torch.cat([t[:, 0:1] * wx, t[:, 1:2] * wy, t[:, 2:3] * wz], dim=1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, H, W) float in [0, 1] -> CIE L*a*b* (N, 3, H, W): L in [0, 100], a/b roughly [-128, 127].

    D65, 2-degree observer; matches ``skimage.color.rgb2lab``. Same dtype as the input; compute in float64 when the
    result feeds a metric with a tight tolerance.
    """
    _check_float_image(rgb, 3, "rgb_to_lab(rgb)")
    return xyz_to_lab(rgb_to_xyz(rgb))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (N, 3, H, W) (L in [0, 100]) -> sRGB (N, 3, H, W) clipped to [0, 1]; matches skimage's ``lab2rgb``.

    D65, 2-degree observer, same dtype as the input. Out-of-gamut colours are clipped per channel (as skimage does).
    """
    _check_float_image(lab, 3, "lab_to_rgb(lab)")
    return xyz_to_rgb(lab_to_xyz(lab))
