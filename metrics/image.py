"""Per-image metric kernels: the one implementation behind the registry's metrics (``metrics.registry``), fed by the
evaluation engine (``metrics.engine``), which checks the images and prepares each shared input once per batch.

Every function takes prepared tensors ``(N, 3, H, W)`` (0..255 values or checked images, as each docstring says) and
returns a float64 tensor ``(N,)`` with one value per image, on the input's device. Definitions and references:
``docs/metrics.md``. Longer than 500 lines for one reason: SSIM and CIEDE2000 run in place in reused workspaces
(measured 3-4x faster than allocating each temporary), and each fast path sits next to the general one it must equal.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from metrics._inputs import to_unit_float
from metrics.color import D65_WHITE, LAB_EPSILON, LAB_OFFSET, LAB_SLOPE, XYZ_FROM_RGB, rgb_to_linear

__all__ = [
    "psnr",
    "ssim",
    "ssim_scgan",
    "colourfulness",
    "lab_stats",
    "gaussian_window",
    "ssim_map_mean",
]


# --------------------------------------------------------------------------------------------------------------- PSNR
def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all RGB values, data range 255: ``10 log10(255^2 / MSE)``.

    pred, target: (N, 3, H, W) 0..255 values, uint8 (exact integer path) or float64 (``quantize=False`` of the
    registry metric: unrounded ``x * 255``); the engine (``metrics.engine``) prepares them. Identical images give
    ``inf``. Matches ``skimage.metrics.peak_signal_noise_ratio`` on the uint8 images. Returns float64 (N,).
    """
    with torch.no_grad():
        mse = _per_chunk(_mse_8bit, pred, target)
        # 10 log10(255^2 / 0) = inf, which is what skimage returns (with a warning) for identical images.
        return 10.0 * torch.log10((255.0**2) / mse)


# Metrics run over the batch in chunks of about this many pixels: a working set that stays in the CPU cache is several
# times faster than one pass over a large batch (measured 10x for PSNR on 32 images of 256x256).
CHUNK_PIXELS = 1 << 17


def _per_chunk(fn, *tensors: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` to consecutive batch chunks of ``tensors`` (N, C, H, W) and concatenate the (n,) results
    (chunks spread over worker threads on CPU, see ``_map_images``)."""
    n, _, h, w = tensors[0].shape
    step = max(1, CHUNK_PIXELS // (h * w))
    starts = list(range(0, n, step))
    parts = _map_images(lambda k: fn(*(t[starts[k] : starts[k] + step] for t in tensors)), len(starts),
                        tensors[0].device, None)
    return torch.cat(parts)


def _mse_8bit(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if pred.dtype == torch.uint8 and target.dtype == torch.uint8:
        # Integer values: every difference and square (at most 255^2) is exact in float32, and the sum accumulates in
        # float64, where every partial sum (< 2^53) is exact: the same exact MSE as numpy's, at a quarter of the
        # memory traffic of a float64 pipeline.
        diff = pred.to(torch.float32).sub_(target)
        return diff.square_().sum(dim=(1, 2, 3), dtype=torch.float64) / float(diff[0].numel())
    diff = pred.to(torch.float64) - target.to(torch.float64)
    return diff.square_().mean(dim=(1, 2, 3))


# --------------------------------------------------------------------------------------------------------------- SSIM
def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian taps as ``scipy.ndimage.gaussian_filter`` builds them (radius int(truncate*sigma+0.5)).

    For sigma 1.5 and scikit-image's truncate 3.5: radius 5, 11 taps.
    """
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype)


@functools.lru_cache(maxsize=16)
def _gaussian_weights(channels: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise (horizontal, vertical) conv weights of the 11-tap Gaussian (sigma 1.5) for ``channels`` channels,
    in channels_last memory (cached: building them costs more than filtering a small image)."""
    taps = gaussian_window(1.5, 3.5, torch.float64).to(device=device, dtype=dtype)
    k = taps.numel()
    horizontal = taps.view(1, 1, 1, k).expand(channels, 1, 1, k).contiguous(memory_format=torch.channels_last)
    vertical = taps.view(1, 1, k, 1).expand(channels, 1, k, 1).contiguous(memory_format=torch.channels_last)
    return horizontal, vertical


@functools.lru_cache(maxsize=16)
def _box_sum_weights(channels: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise (horizontal, vertical) float32 conv weights of ``size`` ones (window *sums*, not means)."""
    ones = torch.ones(size, dtype=torch.float32, device=device)
    horizontal = ones.view(1, 1, 1, size).expand(channels, 1, 1, size).contiguous(memory_format=torch.channels_last)
    vertical = ones.view(1, 1, size, 1).expand(channels, 1, size, 1).contiguous(memory_format=torch.channels_last)
    return horizontal, vertical


def _gaussian_valid_filter(stack_nhwc: torch.Tensor) -> torch.Tensor:
    """Filter every channel of a (N, H, W, C) stack with the 11-tap Gaussian along W then H, valid region only.

    Returns (N, C, h, w) in channels_last memory. A depthwise conv over channels-last memory is what the CPU (oneDNN)
    vectorises best: all C channels of a pixel sit side by side.
    """
    channels = stack_nhwc.shape[3]
    stack = stack_nhwc.permute(0, 3, 1, 2)  # a channels_last view, no copy
    horizontal, vertical = _gaussian_weights(channels, stack.dtype, stack.device)
    return F.conv2d(F.conv2d(stack, horizontal, groups=channels), vertical, groups=channels)


def _box_valid_filter(stack_nhwc: torch.Tensor, size: int) -> torch.Tensor:
    """Uniform ``size`` x ``size`` mean of every channel of a (N, H, W, C) stack, valid region, via cumulative sums.

    Exact up to float64 rounding of the running sums (used by ``ssim_scgan``, which runs in float64, where oneDNN
    convolutions are not available). Returns (N, C, h, w).
    """
    x = stack_nhwc.permute(0, 3, 1, 2)
    zeros_w = torch.zeros_like(x[..., :1])
    cw = torch.cat([zeros_w, x], dim=3).cumsum(dim=3)
    rows = cw[..., size:] - cw[..., :-size]
    zeros_h = torch.zeros_like(rows[..., :1, :])
    ch = torch.cat([zeros_h, rows], dim=2).cumsum(dim=2)
    return (ch[..., size:, :] - ch[..., :-size, :]) / float(size * size)


_WINDOW_SIZES = {"gaussian11": 11, "uniform7": 7}


class _SsimWorkspace:
    """The buffers of one SSIM band shape, reused from image to image.

    Why: the C allocator under torch (glibc malloc) hands freed blocks of a few MB back to the OS, so fresh
    temporaries are page-faulted in again for every image: measured 1-3 ms of system time per 256x256 image, more than
    the arithmetic itself.

    ``planes`` (4, N, C, H, W) holds x, y, x*y, (x-y)^2; ``stack`` (N, H, W, 4C) their channels-last interleaving (the
    filter input); ``maps`` (4, N, h, w, C) the four filtered maps, in the memory of ``planes`` (no longer needed once
    the stack is built: a smaller footprint stays in cache); ``scratch`` two (N, h, w, C).
    """

    def __init__(self, key: tuple):
        n, c, height, width, win, dtype, device = key
        h, w = height - win + 1, width - win + 1
        self.key = key
        self.planes = torch.empty(4, n, c, height, width, dtype=dtype, device=device)
        self.stack = torch.empty(n, height, width, 4 * c, dtype=dtype, device=device)
        self.maps = self.planes.view(-1)[: 4 * n * h * w * c].view(4, n, h, w, c)
        self.scratch = torch.empty(2, n, h, w, c, dtype=dtype, device=device)
        self._float64 = None
        self.nbytes = sum(t.numel() * t.element_size() for t in (self.planes, self.stack, self.scratch))

    def float64_buffers(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(4, N, h, w, C) maps and (2, N, h, w, C) scratch in float64 (the exact uint8 path of ``ssim_scgan``),
        allocated on first use."""
        if self._float64 is None:
            self._float64 = (torch.empty(self.maps.shape, dtype=torch.float64, device=self.maps.device),
                             torch.empty(self.scratch.shape, dtype=torch.float64, device=self.maps.device))
            self.nbytes += sum(t.numel() * t.element_size() for t in self._float64)
        return self._float64


# Free workspaces kept for reuse (most recent last), at most this many bytes in all: one per worker thread for the
# image size in use; a new size evicts the oldest.
MAX_FREE_WORKSPACE_BYTES = 128 << 20
_WORKSPACE_LOCK = threading.Lock()
_FREE_WORKSPACES: list[_SsimWorkspace] = []


@contextlib.contextmanager
def _ssim_workspace(key: tuple):
    """A workspace for ``key`` (taken from the free list or new) for the block's exclusive use; returned after it."""
    with _WORKSPACE_LOCK:
        found = next((i for i, ws in enumerate(_FREE_WORKSPACES) if ws.key == key), None)
        workspace = _FREE_WORKSPACES.pop(found) if found is not None else None
    if workspace is None:
        workspace = _SsimWorkspace(key)
    try:
        yield workspace
    finally:
        with _WORKSPACE_LOCK:
            _FREE_WORKSPACES.append(workspace)
            while sum(ws.nbytes for ws in _FREE_WORKSPACES) > MAX_FREE_WORKSPACE_BYTES:
                _FREE_WORKSPACES.pop(0)


def _stack_four_maps(ws: _SsimWorkspace, x: torch.Tensor, y: torch.Tensor, offset: float) -> None:
    """Fill ``ws.stack`` (N, H, W, 4C) with x - offset, y - offset, their product and squared difference."""
    # The four maps are computed plane by plane (contiguous, fast), then interleaved into one channels-last
    # (N, H, W, 4C) stack by a single cat over their (N, H, W, C) views (measured 2x faster than computing in
    # (N, H, W, C) order, where reading the (N, C, H, W) input is already a transposition).
    xc, yc, xy, dd = ws.planes.unbind(0)
    if x.dtype == torch.uint8:
        # uint8 arithmetic would wrap around: convert first (integers are exact in float32)
        xc.copy_(x).sub_(offset)
        yc.copy_(y).sub_(offset)
    else:
        torch.sub(x, offset, out=xc)
        torch.sub(y, offset, out=yc)
    torch.mul(xc, yc, out=xy)
    torch.sub(xc, yc, out=dd).square_()
    torch.cat([plane.permute(0, 2, 3, 1) for plane in (xc, yc, xy, dd)], dim=3, out=ws.stack)


def _ssim_band_sum(x, y, window, data_range, cov_norm, offset, dtype, k1, k2):
    """Sum of the SSIM map over the valid region of (N, C, H, W) images, and the number of map values per image."""
    n, c, height, width = x.shape
    key = (n, c, height, width, _WINDOW_SIZES[window], dtype, x.device)
    with _ssim_workspace(key) as ws:
        _stack_four_maps(ws, x, y, offset)
        if window == "gaussian11":
            filtered = _gaussian_valid_filter(ws.stack)
        else:
            filtered = _box_valid_filter(ws.stack, 7)
        # (N, 4C, h, w) -> (4, N, h, w, C) contiguous: one copy, after which every element-wise op below runs on
        # contiguous memory (faster than on the four strided channel groups).
        ws.maps.copy_(filtered.permute(0, 2, 3, 1).unflatten(3, (4, c)).permute(3, 0, 1, 2, 4))
        ux, uy, uxy, udd = ws.maps.unbind(0)
        c1 = (k1 * data_range) ** 2
        c2 = (k2 * data_range) ** 2
        # In place, in this order: each map is overwritten only after its last use.
        d2 = torch.sub(ux, uy, out=ws.scratch[0]).square_()
        # A2 = 2 cov_norm (E[xy] - mu_x mu_y) + C2
        a2 = uxy.addcmul_(ux, uy, value=-1.0).mul_(2.0 * cov_norm).add_(c2)
        # B2 = A2 + cov_norm (E[(x-y)^2] - d^2)
        b2 = udd.sub_(d2).mul_(cov_norm).add_(a2)
        # A1 = 2 (mu_x + offset)(mu_y + offset) + C1 ; B1 = A1 + d^2
        a1 = torch.add(ux, offset, out=ws.scratch[1]).mul_(uy.add_(offset)).mul_(2.0).add_(c1)
        b1 = d2.add_(a1)
        s_map = a1.mul_(a2).div_(b1.mul_(b2))
        return s_map.sum(dim=(1, 2, 3), dtype=torch.float64), s_map[0].numel()


def _ssim_box7_uint8_band_sum(x, y, data_range, cov_norm, k1=0.01, k2=0.03):
    """``_ssim_band_sum`` of the uniform 7x7 window for uint8 images (N, C, H, W), on the values x / 255, *exactly*.

    The 7x7 window sums of the centred integers u - 128, of their products and of their squared differences are
    integers below 2^24 (at most 49 * 255^2), so a float32 box filter of ones computes them without any rounding
    (fast oneDNN depthwise convolution); the SSIM formula then runs in float64 on these exact sums, scaled by
    (255 * 49)^2, where ``n Sxy - Sx Sy`` and the other integer combinations are still exact. The result agrees with
    a float64 computation on x / 255 (scikit-image's) to float64 rounding, at a fraction of its cost.
    """
    n, c, height, width = x.shape
    win = 7
    count = float(win * win)
    key = (n, c, height, width, win, torch.float32, x.device)
    with _ssim_workspace(key) as ws:
        _stack_four_maps(ws, x, y, 128.0)
        horizontal, vertical = _box_sum_weights(4 * c, win, x.device)
        stack = ws.stack.permute(0, 3, 1, 2)  # a channels_last view, no copy
        sums = F.conv2d(F.conv2d(stack, horizontal, groups=4 * c), vertical, groups=4 * c)
        maps, scratch = ws.float64_buffers()
        maps.copy_(sums.permute(0, 2, 3, 1).unflatten(3, (4, c)).permute(3, 0, 1, 2, 4))
        sx, sy, sxy, sdd = maps.unbind(0)
        scale2 = (255.0 * count) ** 2
        c1 = (k1 * data_range) ** 2 * scale2
        c2 = (k2 * data_range) ** 2 * scale2
        # Everything scaled by (255 n)^2, n = 49: with mu = (S / n + 128) / 255 and cov = (n Sxy - Sx Sy) / (255 n)^2,
        # A1 = 2 (Sx + 128 n)(Sy + 128 n) + C1, A2 = 2 cov_norm (n Sxy - Sx Sy) + C2, B1 = A1 + (Sx - Sy)^2 and
        # B2 = A2 + cov_norm (n Sdd - (Sx - Sy)^2) (the four-map algebra of ssim_map_mean).
        d2 = torch.sub(sx, sy, out=scratch[0]).square_()
        a2 = sxy.mul_(count).addcmul_(sx, sy, value=-1.0).mul_(2.0 * cov_norm).add_(c2)
        b2 = sdd.mul_(count).sub_(d2).mul_(cov_norm).add_(a2)
        a1 = torch.add(sx, 128.0 * count, out=scratch[1]).mul_(sy.add_(128.0 * count)).mul_(2.0).add_(c1)
        b1 = d2.add_(a1)
        s_map = a1.mul_(a2).div_(b1.mul_(b2))
        return s_map.sum(dim=(1, 2, 3)), s_map[0].numel()


# Images are filtered in horizontal bands of about this many input pixels (plus the window's halo rows), so that the
# float temporaries of a large photo (a dozen maps of H x W) stay small.
BAND_PIXELS = 1 << 18


def _row_bands(height: int, width: int, halo: int) -> list[tuple[int, int]]:
    """Output-row ranges [r0, r1) of the valid region (height - halo rows) in bands of about BAND_PIXELS inputs."""
    out_rows = height - halo
    step = max(1, BAND_PIXELS // max(1, width) - halo)
    return [(r0, min(out_rows, r0 + step)) for r0 in range(0, out_rows, step)]


def ssim_map_mean(
    x: torch.Tensor,
    y: torch.Tensor,
    window: str,
    data_range: float,
    cov_norm: float,
    offset: float,
    dtype: torch.dtype,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM over the valid region, averaged over channels, per image: (N, C, H, W) x 2 -> float64 (N,).

    ``window`` is ``"gaussian11"`` (sigma 1.5, truncate 3.5: scikit-image's ``gaussian_weights=True``) or
    ``"uniform7"`` (scikit-image's default). The local statistics are computed without padding: the valid region is
    scikit-image's crop of (win-1)//2 pixels on each side, exactly where its padded filter never reaches the border.
    ``offset`` is subtracted from both images before filtering (centring 0..255 values at 128 keeps float32 variances
    accurate); it is added back to the local means, since the luminance term is not shift-invariant.
    ``"uniform7"`` on two uint8 CPU images computes on x / 255 exactly (``_ssim_box7_uint8_band_sum``; ``offset`` and
    ``dtype`` are then not used).

    Algebra used to filter four maps instead of five (x, y, x*y and (x-y)^2 rather than x^2 and y^2), with
    d = mu_x - mu_y:  mu_x^2 + mu_y^2 = 2 mu_x mu_y + d^2  and  var_x + var_y = 2 cov_xy + var(x - y), so
    ``B1 = A1 + d^2`` and ``B2 = A2 + cov_norm * (E[(x-y)^2] - d^2)`` where A1 = 2 mu_x mu_y + C1 and
    A2 = 2 cov_xy + C2 are the numerator factors. SSIM = A1 A2 / (B1 B2).
    """
    if window not in _WINDOW_SIZES:
        raise ValueError(f"unknown SSIM window {window!r}; expected one of {', '.join(_WINDOW_SIZES)}")
    halo = _WINDOW_SIZES[window] - 1
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    count = 0
    exact_box = window == "uniform7" and x.dtype == torch.uint8 and y.dtype == torch.uint8 and x.device.type == "cpu"
    for r0, r1 in _row_bands(x.shape[2], x.shape[3], halo):
        x_band, y_band = x[:, :, r0 : r1 + halo], y[:, :, r0 : r1 + halo]
        if exact_box:
            band_sum, band_count = _ssim_box7_uint8_band_sum(x_band, y_band, data_range, cov_norm, k1, k2)
        else:
            band_sum, band_count = _ssim_band_sum(x_band, y_band, window, data_range, cov_norm, offset, dtype, k1, k2)
        total += band_sum
        count += band_count
    return total / count


def _check_ssim_size(pred: torch.Tensor, window: int, name: str) -> None:
    h, w = pred.shape[-2:]
    if h < window or w < window:
        raise ValueError(f"{name}: images must be at least {window}x{window} pixels (the SSIM window), got {h}x{w}")


SSIM_PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def check_ssim_precision(precision: str) -> torch.dtype:
    if precision not in SSIM_PRECISIONS:
        raise ValueError(f"ssim: precision must be 'float32' or 'float64', got {precision!r}")
    return SSIM_PRECISIONS[precision]


def ssim(pred: torch.Tensor, target: torch.Tensor, precision: str = "float32", workers: int | None = None
         ) -> torch.Tensor:
    """SSIM of Wang et al. (2004) on 0..255 values: Gaussian window 11x11 (sigma 1.5, truncate 3.5), K1 0.01, K2 0.03,
    population covariance, data range 255, mean over the valid region and over R, G, B. Returns float64 (N,).

    pred, target: (N, 3, H, W) 0..255 values, uint8 or float64 (unrounded ``x * 255``), at least 11x11; the engine
    prepares them. Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)`` on the uint8 images within 1e-5 in the default
    ``precision="float32"`` (values centred at 128, measured error below 1e-6), or to rounding with
    ``precision="float64"`` (slower).

    Speed (CPU): images are filtered one at a time, so that the working set stays in cache, optionally spread over
    ``workers`` threads (``_map_images``). The result does not depend on ``workers``.
    """
    _check_ssim_size(pred, 11, "ssim")
    dtype = check_ssim_precision(precision)

    def one(i: int) -> torch.Tensor:
        a, b = pred[i : i + 1], target[i : i + 1]
        if a.dtype == torch.uint8 and b.dtype == torch.uint8:
            if torch.equal(a, b):
                # Identical images: B1 = A1 and B2 = A2 at every pixel, so the map is exactly 1 (in scikit-image too).
                return torch.ones(1, dtype=torch.float64, device=a.device)
        else:
            a, b = a.to(dtype), b.to(dtype)
        return ssim_map_mean(a, b, "gaussian11", 255.0, 1.0, 128.0, dtype)

    with torch.no_grad():
        return torch.cat(_map_images(one, pred.shape[0], pred.device, workers))


def _map_images(fn, count: int, device: torch.device, workers: int | None) -> list[torch.Tensor]:
    """``[fn(i) for i in range(count)]``, on CPU optionally spread over ``workers`` Python threads (default 1: the
    calling thread). Results are in order and independent of ``workers``.

    Nothing here changes torch's thread count (a process-wide setting the command chooses once): each worker
    computes with the intra-op threads the process has. Image workers pay off with torch at one intra-op thread.
    """
    workers = 1 if workers is None else int(workers)
    if device.type != "cpu" or workers <= 1 or count <= 1:
        return [fn(i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=min(workers, count)) as pool:
        return list(pool.map(fn, range(count)))


def ssim_scgan(pred: torch.Tensor, target: torch.Tensor, workers: int | None = None) -> torch.Tensor:
    """SSIM as the SCGAN paper's evaluation computed it: the floats in [0, 1] as given (no 8-bit rounding), uniform
    7x7 window, sample covariance (factor 49/48), K1 0.01, K2 0.03, **data range 2.0** (scikit-image's old default for
    float images), mean over the valid region and over R, G, B. Computed in float64. Returns float64 (N,).

    pred, target: checked (N, 3, H, W) RGB images as given, float [0, 1] or uint8 (scaled by 1/255), at least 7x7
    (the paper used 256x256). Matches ``skimage.metrics.structural_similarity(pred, target, data_range=2.0,
    channel_axis=-1)`` on the same images as float64. Note: data range 2 makes the constants C1, C2 four times larger
    than for range 1, which raises SSIM on low-contrast regions; the values are not comparable with ``ssim``.
    """
    _check_ssim_size(pred, 7, "ssim_scgan")

    def one(i: int) -> torch.Tensor:
        a, b = pred[i : i + 1], target[i : i + 1]
        if torch.equal(a, b):
            # Identical images: B1 = A1 and B2 = A2 at every pixel, so the map is exactly 1 (in scikit-image too).
            return torch.ones(1, dtype=torch.float64, device=a.device)
        if a.dtype == torch.uint8 and b.dtype == torch.uint8 and a.device.type == "cpu":
            # Exact window sums of the integers in float32, the formula in float64 (see _ssim_box7_uint8_band_sum).
            # CPU only: CUDA convolutions may run float32 as TF32 (10-bit mantissa), where the sums are not exact.
            return ssim_map_mean(a, b, "uniform7", 2.0, 49.0 / 48.0, 128.0, torch.float32)
        return ssim_map_mean(to_unit_float(a, torch.float64), to_unit_float(b, torch.float64), "uniform7", 2.0,
                             49.0 / 48.0, 0.5, torch.float64)

    with torch.no_grad():
        return torch.cat(_map_images(one, pred.shape[0], pred.device, workers))


# ------------------------------------------------------------------------------------------------------- colourfulness
def colourfulness(values: torch.Tensor, absolute: bool) -> torch.Tensor:
    """Colourfulness of Hasler and Suesstrunk (2003) per image on 0..255 RGB values (N, 3, H, W), uint8 (exact integer
    path) or float64: ``sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with population standard
    deviations, ``rg = R - G``, ``yb = (R + G)/2 - B``: signed (``absolute=False``, the SCGAN paper's CCI) or
    absolute ``|rg|``, ``|yb|`` (``absolute=True``, the "CF" of DDColor, CT2 and ColorFormer). Returns float64 (N,).
    """
    with torch.no_grad():
        return _per_chunk(lambda x: _colourfulness_chunk(x, absolute), values)


# The exact integer path of the colourfulness needs n * sum(x^2) - sum(x)^2 <= n^2 * 510^2 to fit in int64:
# images up to about 5.9 megapixels; larger ones use the float64 two-pass formula.
EXACT_COLOURFULNESS_MAX_PIXELS = math.isqrt((2**63 - 1) // (510 * 510))


def _colourfulness_chunk(values: torch.Tensor, absolute: bool) -> torch.Tensor:
    pixels = values.shape[2] * values.shape[3]
    if values.dtype == torch.uint8 and pixels <= EXACT_COLOURFULNESS_MAX_PIXELS:
        # Exact path for 8-bit values: rg = R - G and 2 yb = R + G - 2 B are integers, so their sums and sums of
        # squares are exact in int64 and mean/variance follow with one rounding each (at least as exact as numpy).
        v = values.to(torch.int32)
        r, g, b = v[:, 0], v[:, 1], v[:, 2]
        opp = torch.stack([r - g, r + g - 2 * b], dim=1).flatten(2)
        if absolute:
            opp = opp.abs()
        n = float(opp.shape[2])
        s1 = opp.sum(dim=2, dtype=torch.int64)
        s2 = (opp * opp).sum(dim=2, dtype=torch.int64)
        # Exact integer numerator of n^2 * variance: n * sum(x^2) - sum(x)^2 (see EXACT_COLOURFULNESS_MAX_PIXELS).
        numerator = (s2 * int(n) - s1 * s1).to(torch.float64)
        scale = torch.tensor([1.0, 2.0], dtype=torch.float64, device=values.device)
        mean = s1.to(torch.float64) / n / scale
        variance = numerator / (n * n) / scale**2
        return torch.sqrt(variance.sum(dim=1)) + 0.3 * torch.sqrt((mean**2).sum(dim=1))
    rgb255 = values.to(torch.float64)
    r, g, b = rgb255[:, 0], rgb255[:, 1], rgb255[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    if absolute:
        rg, yb = rg.abs(), yb.abs()
    rg = rg.flatten(1)
    yb = yb.flatten(1)
    mean_rg, mean_yb = rg.mean(dim=1), yb.mean(dim=1)
    # Population standard deviation (ddof 0), written out so that it is the numpy formula term for term.
    std_rg = (rg - mean_rg[:, None]).square().mean(dim=1).sqrt()
    std_yb = (yb - mean_yb[:, None]).square().mean(dim=1).sqrt()
    return torch.sqrt(std_rg**2 + std_yb**2) + 0.3 * torch.sqrt(mean_rg**2 + mean_yb**2)


# ----------------------------------------------------------------------------------------------------- Lab-based ones
# The Lab metrics run over the pixels of one image in chunks of this many pixels, every step in place in float64
# buffers reused from chunk to chunk: a working set that stays in the CPU's L2 cache and no allocation per step
# (allocating each temporary made the same arithmetic 3-4x slower).
LAB_CHUNK_PIXELS = 1 << 14

# sRGB (linear) -> XYZ with each row divided by the D65 white: XYZ / white, the argument of the CIE f(t).
_XYZ_OVER_WHITE = [[float(m) / w for m in row] for row, w in zip(XYZ_FROM_RGB, D65_WHITE)]
_TWO_PI = 2.0 * math.pi
_POW25_7 = 25.0**7
_COS30, _SIN30 = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
_COS6, _SIN6 = math.cos(math.radians(6.0)), math.sin(math.radians(6.0))
_COS63, _SIN63 = math.cos(math.radians(63.0)), math.sin(math.radians(63.0))


@functools.lru_cache(maxsize=4)
def _linear_lut(device: torch.device) -> torch.Tensor:
    """float64 (256,): the linear-light value of every 8-bit sRGB code by ``metrics.color.rgb_to_linear`` (the formula
    float input goes through), so that uint8 images skip the per-pixel power function."""
    return rgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0).to(device)


@functools.lru_cache(maxsize=4)
def _xyz_matrix(device: torch.device) -> torch.Tensor:
    return torch.tensor(_XYZ_OVER_WHITE, dtype=torch.float64, device=device)


class _LabWorkspace:
    """float64 buffers for chunks of up to ``pixels`` pixels of an image pair (``_lab_pair_sums``), and their views
    for a chunk of ``p`` pixels (``views(p)``, made once per chunk size: building views costs more than small ops)."""

    def __init__(self, key: tuple):
        pixels, device = key
        self.key = key
        self.codes = torch.empty(3 * pixels, dtype=torch.int64, device=device)
        # planes: linear RGB, two work planes, Lab of pred and of target, each 3 x pixels
        self.planes = torch.empty(5, 3 * pixels, dtype=torch.float64, device=device)
        self.rows = torch.empty(15, pixels, dtype=torch.float64, device=device)
        self.masks = torch.empty(3, 3 * pixels, dtype=torch.bool, device=device)
        self.nbytes = sum(t.numel() * t.element_size() for t in (self.codes, self.planes, self.rows, self.masks))
        self._views: dict[int, types.SimpleNamespace] = {}

    def views(self, p: int) -> types.SimpleNamespace:
        views = self._views.get(p)
        if views is None:
            planes = [plane[: 3 * p].view(3, p) for plane in self.planes.unbind(0)]
            if len(self._views) >= 8:
                self._views.clear()  # last chunks of many image sizes: keep the cache of views small
            views = types.SimpleNamespace(
                codes=self.codes[: 3 * p], codes_3p=self.codes[: 3 * p].view(3, p),
                linear=planes[0], linear_flat=self.planes[0, : 3 * p], work=planes[1:3], lab_pred=planes[3],
                lab_true=planes[4], rows=[row[:p] for row in self.rows.unbind(0)],
                masks=[mask[:p] for mask in self.masks.unbind(0)], above=self.masks[0, : 3 * p].view(3, p),
            )
            self._views[p] = views
        return views


_LAB_WORKSPACES: list[_LabWorkspace] = []


@contextlib.contextmanager
def _lab_workspace(pixels: int, device: torch.device):
    """A Lab workspace for the block's exclusive use (taken from a free list of at most 4: one per worker)."""
    key = (pixels, device)
    with _WORKSPACE_LOCK:
        found = next((i for i, ws in enumerate(_LAB_WORKSPACES) if ws.key == key), None)
        workspace = _LAB_WORKSPACES.pop(found) if found is not None else None
    if workspace is None:
        workspace = _LabWorkspace(key)
    try:
        yield workspace
    finally:
        with _WORKSPACE_LOCK:
            _LAB_WORKSPACES.append(workspace)
            del _LAB_WORKSPACES[:-4]


def _lab_into(lab: torch.Tensor, rgb: torch.Tensor, v: types.SimpleNamespace) -> None:
    """sRGB chunk (3, p), uint8 or float in [0, 1] -> CIE Lab (3, p) float64 written into ``lab``, in place in the
    workspace views ``v``: ``metrics.color.rgb_to_lab`` (scikit-image's formula, its constants imported from there)
    without temporaries, for the metrics' hot loop."""
    if rgb.dtype == torch.uint8:
        v.codes_3p.copy_(rgb)
        torch.index_select(_linear_lut(rgb.device), 0, v.codes, out=v.linear_flat)
    else:
        v.linear.copy_(rgb_to_linear(rgb.to(torch.float64).clamp(0.0, 1.0)))
    # t = XYZ / white, then the CIE f(t): cube root above 0.008856, else 7.787 t + 16/116.
    t = torch.mm(_xyz_matrix(rgb.device), v.linear, out=v.work[0])
    above = torch.gt(t, LAB_EPSILON, out=v.above)
    straight = torch.mul(t, LAB_SLOPE, out=v.work[1]).add_(LAB_OFFSET)
    f = torch.where(above, _numpy_inplace(np.cbrt, t, t), straight, out=v.linear)
    fx, fy, fz = f.unbind(0)
    torch.mul(fy, 116.0, out=lab[0]).sub_(16.0)
    torch.sub(fx, fy, out=lab[1]).mul_(500.0)
    torch.sub(fy, fz, out=lab[2]).mul_(200.0)


def _torch_cbrt(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.pow(x, 1.0 / 3.0, out=out)


_TORCH_EQUIVALENTS = {np.sqrt: torch.sqrt, np.arctan2: torch.atan2, np.exp: torch.exp, np.cbrt: _torch_cbrt}


def _numpy_inplace(ufunc, out: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
    """``out = ufunc(*inputs)`` for float64 CPU tensors through numpy on the same memory, torch's equivalent on other
    devices. Why: numpy's SIMD float64 ``sqrt``, ``arctan2`` and ``exp`` measured 1.7-2.3x faster than torch's here,
    and torch has no ``cbrt`` (``pow(x, 1/3)`` is 7x slower than numpy's, which scikit-image's ``rgb2lab`` uses)."""
    if out.device.type == "cpu":
        ufunc(*(x.numpy() for x in inputs), out=out.numpy())
        return out
    return _TORCH_EQUIVALENTS[ufunc](*inputs, out=out)


def _chroma_power_ratio_(c: torch.Tensor, out: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """``sqrt(c^7 / (c^7 + 25^7))`` into ``out`` (the G and R_C factor of CIEDE2000)."""
    torch.mul(c, c, out=tmp)  # c^2
    torch.mul(tmp, tmp, out=out).mul_(tmp).mul_(c)  # c^7
    out.div_(torch.add(out, _POW25_7, out=tmp))
    return _numpy_inplace(np.sqrt, out, out)


def _ciede2000_into(de: torch.Tensor, lab_true: torch.Tensor, lab_pred: torch.Tensor, rows, masks) -> torch.Tensor:
    """CIEDE2000 (Sharma, Wu and Dalal 2005; kL = kC = kH = 1) per pixel of two Lab chunks (3, p) into ``de`` (p,),
    following scikit-image's ``deltaE_ciede2000`` step for step (hue angles in [0, 2 pi), its zero-chroma
    conventions), in place: ``lab_true`` and ``lab_pred`` are overwritten; ``rows`` are 13 float64 (p,) scratch
    buffers, ``masks`` 3 bool (p,) ones."""
    l1, a1, b1 = lab_true.unbind(0)
    l2, a2, b2 = lab_pred.unbind(0)
    c1, c2, h1, h2, l_term, c_term, h_term, h_bar, cp_bar, t0, t1, t2, t3 = rows
    m0, m1, m2 = masks

    # a' = a (1 + G), G = 0.5 (1 - sqrt(C^7 / (C^7 + 25^7))) with C the mean chroma of the two colours
    torch.hypot(a1, b1, out=c1)
    torch.hypot(a2, b2, out=c2)
    c_mean = torch.add(c1, c2, out=t0).mul_(0.5)
    scale = _chroma_power_ratio_(c_mean, t1, t2).neg_().add_(1.0).mul_(0.5).add_(1.0)
    a1.mul_(scale)
    a2.mul_(scale)
    torch.hypot(a1, b1, out=c1)
    torch.hypot(a2, b2, out=c2)
    _numpy_inplace(np.arctan2, h1, b1, a1)
    _numpy_inplace(np.arctan2, h2, b2, a2)
    h1.add_(torch.lt(h1, 0.0, out=m0), alpha=_TWO_PI)  # hue angles in [0, 2 pi)
    h2.add_(torch.lt(h2, 0.0, out=m0), alpha=_TWO_PI)

    # lightness term: (L2 - L1) / S_L, S_L = 1 + 0.015 (Lbar - 50)^2 / sqrt(20 + (Lbar - 50)^2)
    lbar_sq = torch.add(l1, l2, out=t0).mul_(0.5).sub_(50.0).square_()
    root = _numpy_inplace(np.sqrt, t1, torch.add(lbar_sq, 20.0, out=t1))
    s_l = torch.mul(lbar_sq, 0.015, out=t2).div_(root).add_(1.0)
    torch.sub(l2, l1, out=l_term).div_(s_l)

    # chroma term: (C2' - C1') / S_C, S_C = 1 + 0.045 Cbar'
    torch.add(c1, c2, out=cp_bar).mul_(0.5)
    torch.sub(c2, c1, out=c_term).div_(torch.mul(cp_bar, 0.045, out=t0).add_(1.0))

    # hue difference dH = h2 - h1 wrapped into [-pi, pi]; dH_term = 2 sqrt(C1' C2') sin(dH / 2) (0 when a chroma
    # is 0: sqrt(C1' C2') is then 0, as scikit-image's explicit dH = 0 gives)
    h_diff = torch.sub(h2, h1, out=t0)
    cc = torch.mul(c1, c2, out=t1)
    wraps = torch.gt(torch.abs(h_diff, out=t2), math.pi, out=m0)
    wrap_shift = torch.sign(h_diff, out=t2).mul_(wraps).mul_(_TWO_PI)
    half_dh_sin = torch.sub(h_diff, wrap_shift, out=t3).mul_(0.5).sin_()
    _numpy_inplace(np.sqrt, h_term, cc).mul_(half_dh_sin).mul_(2.0)

    # mean hue: (h1 + h2) / 2, moved by pi where the hues are more than pi apart (both chromas non-zero);
    # where a chroma is 0: h1 + h2
    h_sum = torch.add(h1, h2, out=h_bar)
    chromatic = torch.ne(cc, 0.0, out=m1)
    wraps.logical_and_(chromatic)
    shift = t2.copy_(torch.lt(h_sum, _TWO_PI, out=m2)).mul_(2.0 * _TWO_PI).sub_(_TWO_PI)  # +2 pi or -2 pi
    mean_hue = shift.mul_(wraps).add_(h_sum).mul_(0.5)
    torch.where(chromatic, mean_hue, h_sum, out=h_bar)

    # T = 1 - 0.17 cos(H - 30 deg) + 0.24 cos(2H) + 0.32 cos(3H + 6 deg) - 0.20 cos(4H - 63 deg); S_H = 1 + 0.015 C' T.
    # The four cosines come from cos H and sin H by the multiple-angle identities (two trigonometric calls instead of
    # four, the most expensive step here; the identities are exact, their rounding is below 1e-15).
    cos1, sin1 = torch.cos(h_bar, out=t1), torch.sin(h_bar, out=t2)
    t = torch.mul(cos1, _COS30, out=t3).add_(torch.mul(sin1, _SIN30, out=c1)).mul_(-0.17).add_(1.0)
    cos2 = torch.mul(cos1, cos1, out=c1).mul_(2.0).sub_(1.0)  # cos 2H = 2 cos^2 H - 1
    t.add_(torch.mul(cos2, 0.24, out=c2))
    # cos 3H = cos H (2 cos 2H - 1), sin 3H = sin H (2 cos 2H + 1); cos(3H + 6) = cos 3H cos 6 - sin 3H sin 6
    cos3 = torch.mul(cos2, 2.0, out=c2).sub_(1.0).mul_(cos1)
    sin3 = torch.mul(cos2, 2.0, out=h1).add_(1.0).mul_(sin1)
    t.add_(cos3.mul_(_COS6).sub_(sin3.mul_(_SIN6)).mul_(0.32))
    # cos 4H = 2 cos^2 2H - 1, sin 4H = 4 sin H cos H cos 2H; cos(4H - 63) = cos 4H cos 63 + sin 4H sin 63
    sin4 = sin1.mul_(cos1).mul_(cos2).mul_(4.0)
    cos4 = torch.mul(cos2, cos2, out=c2).mul_(2.0).sub_(1.0)
    t.sub_(cos4.mul_(_COS63).add_(sin4.mul_(_SIN63)).mul_(0.20))
    h_term.div_(t.mul_(torch.mul(cp_bar, 0.015, out=c1)).add_(1.0))

    # rotation term R_T = -sin(2 dtheta) R_C (dC / S_C)(dH / S_H), dtheta = 30 deg exp(-((H - 275 deg) / 25 deg)^2)
    r_c = _chroma_power_ratio_(cp_bar, t0, t1).mul_(2.0)
    exponent = torch.rad2deg(h_bar, out=t1).sub_(275.0).div_(25.0).square_().neg_()
    dtheta = _numpy_inplace(np.exp, exponent, exponent).mul_(math.radians(30.0))
    r_term = dtheta.mul_(2.0).sin_().neg_().mul_(r_c).mul_(c_term).mul_(h_term)

    torch.mul(l_term, l_term, out=de).addcmul_(c_term, c_term).addcmul_(h_term, h_term).add_(r_term)
    return _numpy_inplace(np.sqrt, de, de.clamp_(min=0.0))


def _lab_pair_sums(pred: torch.Tensor, target: torch.Tensor, max_threshold: float,
                   with_delta_e: bool) -> tuple[float, float]:
    """Sums over the pixels of one image pair (3, H, W) of the CIEDE2000 difference (0.0 when ``with_delta_e`` is
    False) and of the AuC integrand ``max(1 - e / max_threshold, 0)``, e the ab error; float64 chunk by chunk."""
    pred = pred.reshape(3, -1)
    target = target.reshape(3, -1)
    pixels = pred.shape[1]
    chunk = min(LAB_CHUNK_PIXELS, pixels)
    de_sum = torch.zeros((), dtype=torch.float64, device=pred.device)
    auc_sum = torch.zeros((), dtype=torch.float64, device=pred.device)
    with _lab_workspace(chunk, pred.device) as ws:
        for p0 in range(0, pixels, chunk):
            p1 = min(pixels, p0 + chunk)
            v = ws.views(p1 - p0)
            lab_pred, lab_true, rows = v.lab_pred, v.lab_true, v.rows
            _lab_into(lab_pred, pred[:, p0:p1], v)
            _lab_into(lab_true, target[:, p0:p1], v)
            ab_error = torch.hypot(torch.sub(lab_pred[1], lab_true[1], out=rows[0]),
                                   torch.sub(lab_pred[2], lab_true[2], out=rows[1]), out=rows[2])
            auc_sum += ab_error.div_(-max_threshold).add_(1.0).clamp_(min=0.0).sum()
            if with_delta_e:
                de_sum += _ciede2000_into(rows[13], lab_true, lab_pred, rows[:13], v.masks).sum()
    return float(de_sum), float(auc_sum)


def lab_stats(pred: torch.Tensor, target: torch.Tensor, max_threshold: float, with_delta_e: bool,
              workers: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Per-image mean CIEDE2000 (None unless ``with_delta_e``) and raw-accuracy AuC of image pairs (N, 3, H, W), from
    one Lab conversion per image pair; float64 (N,) each, on the input's device.

    ``delta_e00``: mean CIEDE2000 colour difference over the pixels of each image (lower is better); matches
    ``skimage.color.deltaE_ciede2000(rgb2lab(gt), rgb2lab(pred)).mean()``. ``auc_ab``: Zhang et al. (2016), the fraction
    of pixels whose ab error (L2 in CIE Lab's a, b) is below t, integrated over t in [0, max_threshold] and divided by
    it (1 for identical colours). The integral is exact: for one pixel with error e, the integral of [e < t] over
    [0, T] is max(T - e, 0), so the per-image value is ``mean(max(1 - e / T, 0))``. pred, target: checked sRGB images
    as given, float [0, 1] (no rounding) or uint8 (scaled by 1/255), converted to CIE Lab (D65) in float64.
    """
    pixels = float(pred.shape[2] * pred.shape[3])

    def one(i: int) -> tuple[float, float]:
        if torch.equal(pred[i], target[i]):
            # Identical colours: every per-pixel CIEDE2000 and ab error is exactly 0 (what the computation below and
            # scikit-image give), so the AuC integrand is exactly 1.
            return 0.0, pixels
        return _lab_pair_sums(pred[i], target[i], max_threshold, with_delta_e)

    with torch.no_grad():
        sums = torch.tensor(_map_images(one, pred.shape[0], pred.device, workers), dtype=torch.float64)
    means = (sums / pixels).to(pred.device)
    return (means[:, 0].clone() if with_delta_e else None), means[:, 1].clone()


def check_max_threshold(max_threshold) -> float:
    if not max_threshold > 0:
        raise ValueError(f"auc_ab: max_threshold must be positive, got {max_threshold!r}")
    return float(max_threshold)


AUC_MAX_THRESHOLD = 150.0
