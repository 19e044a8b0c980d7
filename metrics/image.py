"""Per-image metric implementations (the one implementation behind ``metrics.functional`` and the streaming objects).

Every function takes checked image tensors (see ``metrics._inputs``) ``(N, 3, H, W)`` RGB and returns a float64 tensor
``(N,)`` with one value per image, on the input's device. Definitions and references: DESIGN section 7 and
``docs/metrics.md``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from metrics._inputs import as_image_tensor, check_pair, to_8bit_values, to_unit_float
from metrics.color import rgb_to_lab

__all__ = [
    "psnr",
    "ssim",
    "ssim_scgan",
    "cci",
    "cf_abs",
    "delta_e00",
    "auc_ab",
    "gaussian_window",
    "ssim_map_mean",
]


_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"users": 0, "saved": 1}


@contextlib.contextmanager
def _one_intra_op_thread():
    """Run torch with one intra-op thread inside the block (restored after the last concurrent user leaves).

    Per-image metric ops are too small for intra-op threading: on a machine shared with other processes, OpenMP
    threads spin at every op boundary and were measured 10-70x slower than one thread. Parallelism comes from
    ``_map_images`` spreading images over worker threads instead.

    Side effect (torch's thread setting is process-wide): while a metric call runs, the calling thread computes with
    one intra-op thread, and a thread that makes its *first* torch call during that time starts with one intra-op
    thread (torch reads the setting once per thread). Threads already running keep their own setting; the caller's
    setting is restored when the last concurrent metric call returns.
    """
    with _THREADS_LOCK:
        if _THREADS_STATE["users"] == 0:
            _THREADS_STATE["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_STATE["users"] += 1
    try:
        yield _THREADS_STATE["saved"]
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["users"] -= 1
            if _THREADS_STATE["users"] == 0:
                torch.set_num_threads(_THREADS_STATE["saved"])


def _metric_entry_point(fn):
    """Decorator of the public metrics: the whole call (input checks included) runs with one intra-op thread."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _one_intra_op_thread():
            return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------------------------------- PSNR
@_metric_entry_point
def psnr(pred, target, quantize: bool = True) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB over all RGB values, data range 255: ``10 log10(255^2 / MSE)``.

    pred, target: (N, 3, H, W) RGB, float [0, 1] or uint8. Float input is mapped to 0..255 by ``x * 255`` rounded to
    integers (``quantize=True``, the 8-bit protocol; see ``metrics._inputs.to_8bit_values``). Identical images give
    ``inf``. Matches ``skimage.metrics.peak_signal_noise_ratio`` on the uint8 images. Returns float64 (N,).
    """
    pred, target = check_pair(pred, target)
    with torch.no_grad():
        mse = _per_chunk(lambda p, t: _mse_8bit(p, t, quantize), pred, target)
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


def _mse_8bit(pred: torch.Tensor, target: torch.Tensor, quantize: bool) -> torch.Tensor:
    a = _integer_values(pred, quantize)
    b = _integer_values(target, quantize)
    if a is not None and b is not None:
        # Integer values: every difference and square (at most 255^2) is exact in float32, and the sum accumulates in
        # float64, where every partial sum (< 2^53) is exact: the same exact MSE as numpy's, at a quarter of the
        # memory traffic of a float64 pipeline.
        diff = a.to(torch.float32).sub_(b)
        return diff.square_().sum(dim=(1, 2, 3), dtype=torch.float64) / float(diff[0].numel())
    diff = to_8bit_values(pred, quantize) - to_8bit_values(target, quantize)
    return diff.square_().mean(dim=(1, 2, 3))


def _integer_values(images: torch.Tensor, quantize: bool) -> torch.Tensor | None:
    """0..255 integer values (uint8 tensor) of a checked image, or None when they are not integers (quantize=False)."""
    if images.dtype == torch.uint8:
        return images
    if quantize:
        return to_8bit_values(images, True, torch.float64).to(torch.uint8)
    return None


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
        self.nbytes = sum(t.numel() * t.element_size() for t in (self.planes, self.stack, self.scratch))


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


def _ssim_band_sum(x, y, window, data_range, cov_norm, offset, dtype, k1, k2):
    """Sum of the SSIM map over the valid region of (N, C, H, W) images, and the number of map values per image."""
    n, c, height, width = x.shape
    key = (n, c, height, width, _WINDOW_SIZES[window], dtype, x.device)
    with _ssim_workspace(key) as ws:
        # The four maps are computed plane by plane (contiguous, fast), then interleaved into one channels-last
        # (N, H, W, 4C) stack by a single cat over their (N, H, W, C) views (measured 2x faster than computing in
        # (N, H, W, C) order, where reading the (N, C, H, W) input is already a transposition).
        xc, yc, xy, dd = ws.planes.unbind(0)
        torch.sub(x, offset, out=xc)
        torch.sub(y, offset, out=yc)
        torch.mul(xc, yc, out=xy)
        torch.sub(xc, yc, out=dd).square_()
        torch.cat([plane.permute(0, 2, 3, 1) for plane in (xc, yc, xy, dd)], dim=3, out=ws.stack)
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
    for r0, r1 in _row_bands(x.shape[2], x.shape[3], halo):
        band_sum, band_count = _ssim_band_sum(
            x[:, :, r0 : r1 + halo], y[:, :, r0 : r1 + halo], window, data_range, cov_norm, offset, dtype, k1, k2
        )
        total += band_sum
        count += band_count
    return total / count


def _check_ssim_size(pred: torch.Tensor, window: int, name: str) -> None:
    h, w = pred.shape[-2:]
    if h < window or w < window:
        raise ValueError(f"{name}: images must be at least {window}x{window} pixels (the SSIM window), got {h}x{w}")


@_metric_entry_point
def ssim(
    pred, target, quantize: bool = True, precision: str = "float32", workers: int | None = None
) -> torch.Tensor:
    """SSIM of Wang et al. (2004) on 0..255 values: Gaussian window 11x11 (sigma 1.5, truncate 3.5), K1 0.01, K2 0.03,
    population covariance, data range 255, mean over the valid region and over R, G, B. Returns float64 (N,).

    pred, target: (N, 3, H, W) RGB, float [0, 1] or uint8, at least 11x11. Float input is mapped to 0..255 by
    ``x * 255`` rounded to integers (``quantize=True``). Matches ``skimage.metrics.structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)`` on the uint8
    images within 1e-5 in the default ``precision="float32"`` (values centred at 128, measured error below 1e-6), or
    to rounding with ``precision="float64"`` (slower).

    Speed (CPU): images are filtered one at a time, so that the working set stays in cache, and spread over
    ``workers`` threads (default: ``torch.get_num_threads()``), each running torch with one intra-op thread (every
    metric here does so; see ``_one_intra_op_thread``). The result does not depend on ``workers``.
    """
    pred, target = check_pair(pred, target)
    _check_ssim_size(pred, 11, "ssim")
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if precision not in dtypes:
        raise ValueError(f"ssim: precision must be 'float32' or 'float64', got {precision!r}")
    dtype = dtypes[precision]

    def one(i: int) -> torch.Tensor:
        a = _integer_values(pred[i : i + 1], quantize)
        b = _integer_values(target[i : i + 1], quantize)
        if a is None or b is None:
            a = to_8bit_values(pred[i : i + 1], quantize, dtype)
            b = to_8bit_values(target[i : i + 1], quantize, dtype)
        return ssim_map_mean(a, b, "gaussian11", 255.0, 1.0, 128.0, dtype)

    with torch.no_grad():
        return torch.cat(_map_images(one, pred.shape[0], pred.device, workers))


def _map_images(fn, count: int, device: torch.device, workers: int | None) -> list[torch.Tensor]:
    """``[fn(i) for i in range(count)]``; on CPU with one intra-op thread, spread over ``workers`` Python threads
    (default: torch's intra-op thread count at entry). Results are in order and independent of ``workers``."""
    if device.type != "cpu":
        return [fn(i) for i in range(count)]
    with _one_intra_op_thread() as threads:
        workers = threads if workers is None else int(workers)
        if workers <= 1 or count <= 1:
            return [fn(i) for i in range(count)]
        with ThreadPoolExecutor(max_workers=min(workers, count)) as pool:
            return list(pool.map(fn, range(count)))


@_metric_entry_point
def ssim_scgan(pred, target) -> torch.Tensor:
    """SSIM as the SCGAN paper's evaluation computed it: the floats in [0, 1] as given (no 8-bit rounding), uniform
    7x7 window, sample covariance (factor 49/48), K1 0.01, K2 0.03, **data range 2.0** (scikit-image's old default for
    float images), mean over the valid region and over R, G, B. Computed in float64. Returns float64 (N,).

    pred, target: (N, 3, H, W) RGB, float [0, 1] or uint8 (scaled by 1/255), at least 7x7 (the paper used 256x256).
    Matches ``skimage.metrics.structural_similarity(pred, target, data_range=2.0, channel_axis=-1)`` on the same
    images as float64. Note: data range 2 makes the constants C1, C2 four times larger than for range 1, which raises
    SSIM on low-contrast regions; the values are not comparable with ``ssim``.
    """
    pred, target = check_pair(pred, target)
    _check_ssim_size(pred, 7, "ssim_scgan")

    def chunk(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = to_unit_float(p, torch.float64)
        b = to_unit_float(t, torch.float64)
        return ssim_map_mean(a, b, "uniform7", 2.0, 49.0 / 48.0, 0.5, torch.float64)

    with torch.no_grad():
        return _per_chunk(chunk, pred, target)


# ------------------------------------------------------------------------------------------------------- colourfulness
def _colourfulness(images: torch.Tensor, absolute: bool, quantize: bool) -> torch.Tensor:
    return _per_chunk(lambda x: _colourfulness_chunk(x, absolute, quantize), images)


# The exact integer path of the colourfulness needs n * sum(x^2) - sum(x)^2 <= n^2 * 510^2 to fit in int64:
# images up to about 5.9 megapixels; larger ones use the float64 two-pass formula.
EXACT_COLOURFULNESS_MAX_PIXELS = math.isqrt((2**63 - 1) // (510 * 510))


def _colourfulness_chunk(images: torch.Tensor, absolute: bool, quantize: bool) -> torch.Tensor:
    integer = _integer_values(images, quantize)
    pixels = images.shape[2] * images.shape[3]
    if integer is not None and pixels <= EXACT_COLOURFULNESS_MAX_PIXELS:
        # Exact path for 8-bit values: rg = R - G and 2 yb = R + G - 2 B are integers, so their sums and sums of
        # squares are exact in int64 and mean/variance follow with one rounding each (at least as exact as numpy).
        v = integer.to(torch.int32)
        r, g, b = v[:, 0], v[:, 1], v[:, 2]
        opp = torch.stack([r - g, r + g - 2 * b], dim=1).flatten(2)
        if absolute:
            opp = opp.abs()
        n = float(opp.shape[2])
        s1 = opp.sum(dim=2, dtype=torch.int64)
        s2 = (opp * opp).sum(dim=2, dtype=torch.int64)
        # Exact integer numerator of n^2 * variance: n * sum(x^2) - sum(x)^2 (see EXACT_COLOURFULNESS_MAX_PIXELS).
        numerator = (s2 * int(n) - s1 * s1).to(torch.float64)
        scale = torch.tensor([1.0, 2.0], dtype=torch.float64, device=images.device)
        mean = s1.to(torch.float64) / n / scale
        variance = numerator / (n * n) / scale**2
        return torch.sqrt(variance.sum(dim=1)) + 0.3 * torch.sqrt((mean**2).sum(dim=1))
    rgb255 = to_8bit_values(images, quantize)
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


@_metric_entry_point
def cci(pred, quantize: bool = True) -> torch.Tensor:
    """Colourfulness of Hasler and Suesstrunk (2003), the SCGAN paper's CCI, on 0..255 RGB values, signed opponents:
    ``rg = R - G``, ``yb = (R + G)/2 - B``; ``sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with
    population standard deviations. Returns float64 (N,).

    pred: (N, 3, H, W) RGB, float [0, 1] (mapped by ``x * 255`` rounded, ``quantize=True``) or uint8.
    """
    pred = as_image_tensor(pred, "pred")
    with torch.no_grad():
        return _colourfulness(pred, absolute=False, quantize=quantize)


@_metric_entry_point
def cf_abs(pred, quantize: bool = True) -> torch.Tensor:
    """Colourfulness with absolute opponents ``rg = |R - G|``, ``yb = |(R + G)/2 - B|`` (the "CF" that DDColor, CT2 and
    ColorFormer report); otherwise as ``cci``. Returns float64 (N,).

    pred: (N, 3, H, W) RGB, float [0, 1] (mapped by ``x * 255`` rounded, ``quantize=True``) or uint8.
    """
    pred = as_image_tensor(pred, "pred")
    with torch.no_grad():
        return _colourfulness(pred, absolute=True, quantize=quantize)


# ----------------------------------------------------------------------------------------------------- Lab-based ones
def ciede2000(
    lab1: torch.Tensor, lab2: torch.Tensor, kl: float = 1.0, kc: float = 1.0, kh: float = 1.0
) -> torch.Tensor:
    """CIEDE2000 colour difference per pixel (Sharma, Wu and Dalal 2005), lab (N, 3, H, W) -> (N, H, W).

    Follows scikit-image's ``deltaE_ciede2000`` step for step (hue angles in [0, 2 pi), zero-chroma conventions).
    """
    l1, a1, b1 = lab1[:, 0], lab1[:, 1], lab1[:, 2]
    l2, a2, b2 = lab2[:, 0], lab2[:, 1], lab2[:, 2]
    two_pi = 2.0 * math.pi
    c_bar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = c_bar**7
    g = 0.5 * (1.0 - torch.sqrt(c7 / (c7 + 25.0**7)))
    scale = 1.0 + g
    a1p, a2p = a1 * scale, a2 * scale
    c1, c2 = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1 = torch.atan2(b1, a1p)
    h2 = torch.atan2(b2, a2p)
    h1 = torch.where(h1 < 0.0, h1 + two_pi, h1)
    h2 = torch.where(h2 < 0.0, h2 + two_pi, h2)

    l_bar = 0.5 * (l1 + l2)
    tmp = (l_bar - 50.0) ** 2
    sl = 1.0 + 0.015 * tmp / torch.sqrt(20.0 + tmp)
    l_term = (l2 - l1) / (kl * sl)

    cp_bar = 0.5 * (c1 + c2)
    sc = 1.0 + 0.045 * cp_bar
    c_term = (c2 - c1) / (kc * sc)

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = c1 * c2
    dh = torch.where(h_diff > math.pi, h_diff - two_pi, h_diff)
    dh = torch.where(h_diff < -math.pi, h_diff + two_pi, dh)
    dh = torch.where(cc == 0.0, torch.zeros_like(dh), dh)
    dh_term = 2.0 * torch.sqrt(cc) * torch.sin(dh / 2.0)

    wrap = (cc != 0.0) & (h_diff.abs() > math.pi)
    h_bar = torch.where(wrap & (h_sum < two_pi), h_sum + two_pi, h_sum)
    h_bar = torch.where(wrap & (h_sum >= two_pi), h_sum - two_pi, h_bar)
    h_bar = torch.where(cc == 0.0, h_bar * 2.0, h_bar)
    h_bar = h_bar * 0.5

    t = (
        1.0
        - 0.17 * torch.cos(h_bar - math.radians(30.0))
        + 0.24 * torch.cos(2.0 * h_bar)
        + 0.32 * torch.cos(3.0 * h_bar + math.radians(6.0))
        - 0.20 * torch.cos(4.0 * h_bar - math.radians(63.0))
    )
    sh = 1.0 + 0.015 * cp_bar * t
    h_term = dh_term / (kh * sh)

    c7p = cp_bar**7
    rc = 2.0 * torch.sqrt(c7p / (c7p + 25.0**7))
    dtheta = math.radians(30.0) * torch.exp(-(((torch.rad2deg(h_bar) - 275.0) / 25.0) ** 2))
    r_term = -torch.sin(2.0 * dtheta) * rc * c_term * h_term

    de2 = l_term**2 + c_term**2 + h_term**2 + r_term
    return torch.sqrt(torch.clamp(de2, min=0.0))


@_metric_entry_point
def delta_e00(pred, target) -> torch.Tensor:
    """Mean CIEDE2000 colour difference over the pixels of each image (lower is better). Returns float64 (N,).

    pred, target: (N, 3, H, W) sRGB, float [0, 1] as given (no rounding) or uint8 (scaled by 1/255), converted to
    CIE Lab (D65) in float64. Matches ``skimage.color.deltaE_ciede2000(rgb2lab(gt), rgb2lab(pred)).mean()``.
    """
    pred, target = check_pair(pred, target)

    def per_pixel(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        lab_pred = rgb_to_lab(to_unit_float(p, torch.float64))
        lab_true = rgb_to_lab(to_unit_float(t, torch.float64))
        return ciede2000(lab_true, lab_pred)

    with torch.no_grad():
        return _per_chunk(lambda p, t: _pixel_mean(per_pixel, p, t), pred, target)


def _pixel_mean(per_pixel, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of ``per_pixel(pred_band, target_band) -> (n, h, W)``, computed in row bands of about
    BAND_PIXELS pixels (bounded memory on large photos). Returns float64 (n,)."""
    height, width = pred.shape[2], pred.shape[3]
    step = max(1, BAND_PIXELS // width)
    total = torch.zeros(pred.shape[0], dtype=torch.float64, device=pred.device)
    for r0 in range(0, height, step):
        total += per_pixel(pred[:, :, r0 : r0 + step], target[:, :, r0 : r0 + step]).sum(dim=(1, 2))
    return total / float(height * width)


AUC_MAX_THRESHOLD = 150.0


@_metric_entry_point
def auc_ab(pred, target, max_threshold: float = AUC_MAX_THRESHOLD) -> torch.Tensor:
    """Raw accuracy AuC of Zhang et al. (2016): the fraction of pixels whose ab error (L2 in CIE Lab's a, b) is below t,
    integrated over t in [0, 150] and divided by 150 (higher is better, 1 for identical colours). Returns float64 (N,).

    The integral is exact: for one pixel with error e, the integral of [e < t] over [0, T] is max(T - e, 0), so the
    per-image value is ``mean(max(1 - e / T, 0))``. pred, target: (N, 3, H, W) sRGB, float [0, 1] as given or uint8,
    converted to Lab in float64.
    """
    if not max_threshold > 0:
        raise ValueError(f"auc_ab: max_threshold must be positive, got {max_threshold!r}")
    pred, target = check_pair(pred, target)

    def per_pixel(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        lab_pred = rgb_to_lab(to_unit_float(p, torch.float64))
        lab_true = rgb_to_lab(to_unit_float(t, torch.float64))
        error = torch.hypot(lab_pred[:, 1] - lab_true[:, 1], lab_pred[:, 2] - lab_true[:, 2])
        return torch.clamp(1.0 - error / max_threshold, min=0.0)

    with torch.no_grad():
        return _per_chunk(lambda p, t: _pixel_mean(per_pixel, p, t), pred, target)
