"""Metric throughput: the project's batched PSNR + SSIM + CCI (candidate) vs a per-image scikit-image/numpy loop
(peer: ``peak_signal_noise_ratio`` + ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`` + the numpy CCI formula), on the same 256x256 photos in the same run.
A second group does the same for the SCGAN-protocol SSIM and the Lab metrics: ``ssim_scgan`` + ``delta_e00`` +
``auc_ab`` against ``structural_similarity(data_range=2.0)`` + ``rgb2lab`` (once per image, shared by the two Lab
metrics, as the peer loop of a careful user would) + ``deltaE_ciede2000`` + the numpy AuC.

Every test also checks the values against the peer at the tolerances of docs/metrics.md (PSNR 1e-6 dB, SSIM 1e-5,
CCI 1e-9 relative, SSIM (SCGAN) 1e-5, delta E00 1e-6, AuC 1e-9), so under ``--benchmark-disable`` this suite is a
quick correctness test. No pair in these sets is identical (identical pairs are a shortcut of every metric).

``test_metrics_batched_float`` runs the same candidate on float32 images ``u / 255`` (a model's output type): the
engine quantizes them to 8 bits once per batch, so both dtypes are reported against the same skimage loop.

Peer convention (bench/benchjson.py): ``group`` + ``extra_info["role"]`` + ``extra_info["items"]`` (images).
``test_metrics_speedup_ratio`` additionally times both sides interleaved (median of rounds, torch at 1 thread and at
its default thread count) and stores the speed-ups in ``extra_info``; run

    .venv/bin/python -m pytest bench/test_metrics_speed.py --benchmark-enable -s

to see them printed.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics import MetricSuite
from metrics import functional as MF

SIZE = 256
GROUP = f"metrics-psnr-ssim-cci-{SIZE}x{SIZE}"


def _photos() -> np.ndarray:
    """The embedded sample photos squashed to 256x256 (uint8 (N, H, W, 3)), each under two distortions."""
    from scgan import data

    gts, preds = [], []
    rng = np.random.default_rng(0)
    for entry in data.list_images("samples"):
        img = data.resize_image(data.load_image(entry.path), "squash256")
        x = img.astype(np.float64)
        gray = x @ np.array([0.299, 0.587, 0.114])
        noisy = x + rng.normal(0, 10, x.shape)
        faded = gray[..., None] + 0.5 * (x - gray[..., None])
        for pred in (noisy, faded):
            gts.append(img)
            preds.append(np.clip(np.round(pred), 0, 255).astype(np.uint8))
    return np.stack(gts), np.stack(preds)


@pytest.fixture(scope="module")
def images():
    gt, pred = _photos()
    gt_t = torch.from_numpy(gt).permute(0, 3, 1, 2).contiguous()
    pred_t = torch.from_numpy(pred).permute(0, 3, 1, 2).contiguous()
    return gt, pred, gt_t, pred_t


def numpy_cci(img: np.ndarray) -> float:
    img = img.astype(np.float64)
    rg = img[..., 0] - img[..., 1]
    yb = 0.5 * (img[..., 0] + img[..., 1]) - img[..., 2]
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def skimage_loop(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Peer: one image at a time with scikit-image and numpy; (N, 3) rows of psnr, ssim, cci."""
    rows = []
    for g, p in zip(gt, pred):
        rows.append(
            (
                peak_signal_noise_ratio(g, p, data_range=255),
                structural_similarity(
                    g, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
                    channel_axis=-1,
                ),
                numpy_cci(p),
            )
        )
    return np.array(rows)


def project_batched(gt: torch.Tensor, pred: torch.Tensor, workers: int | None = None) -> np.ndarray:
    """Candidate: the project's metrics on the whole batch (N, 3, H, W), uint8 or float, in one engine pass (the
    batch checked and, for float input, quantized once); (N, 3) rows of psnr, ssim, cci. ``workers``: image worker
    threads (what the evaluation commands use, ``metrics.engine.use_image_workers``); None: the calling thread."""
    suite = MetricSuite(["psnr", "ssim", "cci"], workers=workers)
    suite.update(pred, gt)
    columns = suite.columns()
    return np.stack([columns["psnr"], columns["ssim"], columns["cci"]], axis=1)


def check_close(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(ours[:, 0], ref[:, 0], rtol=0, atol=1e-6)  # PSNR, dB
    np.testing.assert_allclose(ours[:, 1], ref[:, 1], rtol=0, atol=1e-5)  # SSIM
    np.testing.assert_allclose(ours[:, 2], ref[:, 2], rtol=1e-9, atol=0)  # CCI


def _info(benchmark, role: str, label: str, count: int) -> None:
    benchmark.group = GROUP
    benchmark.extra_info.update(
        role=role, items=count, label=label, shape=[count, 3, SIZE, SIZE], dtype="uint8",
        threads=torch.get_num_threads() if role == "candidate" else 1,
    )


def test_metrics_skimage_loop(benchmark, images):
    gt, pred, gt_t, pred_t = images
    _info(benchmark, "peer", "skimage-loop", len(gt))
    ref = benchmark(skimage_loop, gt, pred)
    check_close(project_batched(gt_t, pred_t), ref)


def test_metrics_batched(benchmark, images):
    gt, pred, gt_t, pred_t = images
    _info(benchmark, "candidate", "scgan-metrics-batched", len(gt))
    ours = benchmark(project_batched, gt_t, pred_t)
    # Disabled (CI): a quick check on two images; enabled: every image.
    count = len(gt) if benchmark.enabled else 2
    check_close(ours[:count], skimage_loop(gt[:count], pred[:count]))


def test_metrics_batched_float(benchmark, images):
    """The same metrics on float32 images ``u / 255`` (what a model outputs): quantized once per batch by the engine."""
    gt, pred, gt_t, pred_t = images
    _info(benchmark, "candidate", "scgan-metrics-batched-float32", len(gt))
    benchmark.extra_info["dtype"] = "float32"
    gt_f, pred_f = gt_t.float() / 255.0, pred_t.float() / 255.0
    ours = benchmark(project_batched, gt_f, pred_f)
    count = len(gt) if benchmark.enabled else 2
    check_close(ours[:count], skimage_loop(gt[:count], pred[:count]))


def _timed(fn, rounds: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds of ``rounds`` calls."""
    wall, cpu = [], []
    for _ in range(rounds):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def test_metrics_speedup_ratio(benchmark, images):
    """Both sides timed in alternation (so that load from other processes hits both alike); speed-ups in extra_info.

    Reported: wall-clock speed-ups at 1 torch thread and at torch's default thread count, and the CPU-time speed-up at
    1 thread (CPU seconds per image of the peer / of the project: insensitive to other processes' load, which on a
    shared machine makes the wall-clock ratios swing by 2x between runs).
    """
    gt, pred, gt_t, pred_t = images
    _info(benchmark, "candidate", "scgan-metrics-batched-ratio", len(gt))
    ours = benchmark(project_batched, gt_t, pred_t)
    if not benchmark.enabled:
        check_close(ours[:2], skimage_loop(gt[:2], pred[:2]))
        return
    check_close(ours, skimage_loop(gt, pred))
    default_threads = torch.get_num_threads()
    gt_f, pred_f = gt_t.float() / 255.0, pred_t.float() / 255.0
    workers = max(default_threads, os.cpu_count() or 1)
    peer, single, single_float, default, default_float, pooled, pooled_float = [], [], [], [], [], [], []
    try:
        for _ in range(7):
            peer.append(_timed(lambda: skimage_loop(gt, pred), 1))
            torch.set_num_threads(1)
            single.append(_timed(lambda: project_batched(gt_t, pred_t), 3))
            single_float.append(_timed(lambda: project_batched(gt_f, pred_f), 3))
            # The evaluation commands' setting: one intra-op thread, images spread over one worker per core.
            pooled.append(_timed(lambda: project_batched(gt_t, pred_t, workers), 3))
            pooled_float.append(_timed(lambda: project_batched(gt_f, pred_f, workers), 3))
            torch.set_num_threads(default_threads)
            default.append(_timed(lambda: project_batched(gt_t, pred_t), 3))
            default_float.append(_timed(lambda: project_batched(gt_f, pred_f), 3))
    finally:
        torch.set_num_threads(default_threads)
    n = len(gt)
    peer_s, single_s, float_s, default_s, default_float_s, pooled_s, pooled_float_s = (
        statistics.median(w for w, _ in v)
        for v in (peer, single, single_float, default, default_float, pooled, pooled_float))
    peer_cpu, single_cpu = (statistics.median(c for _, c in v) for v in (peer, single))
    benchmark.extra_info.update(
        skimage_images_per_s=n / peer_s,
        project_images_per_s_1thread=n / single_s,
        project_images_per_s_default_threads=n / default_s,
        default_threads=default_threads,
        speedup_1thread=peer_s / single_s,
        speedup_float32_1thread=peer_s / float_s,
        float32_over_uint8_time=float_s / single_s,
        speedup_default_threads=peer_s / default_s,
        speedup_float32_default_threads=peer_s / default_float_s,
        cpu_time_speedup_1thread=peer_cpu / single_cpu,
        image_workers=workers,
        speedup_image_workers=peer_s / pooled_s,
        speedup_float32_image_workers=peer_s / pooled_float_s,
    )
    print(
        f"\n[metrics speed] {n} images {SIZE}x{SIZE}: skimage loop {n / peer_s:.1f} img/s; project "
        f"{n / single_s:.1f} img/s at 1 thread ({peer_s / single_s:.2f}x; float32 input {n / float_s:.1f} img/s, "
        f"{peer_s / float_s:.2f}x, {float_s / single_s:.2f}x the uint8 time), {n / default_s:.1f} img/s at "
        f"{default_threads} threads ({peer_s / default_s:.2f}x; float32 {n / default_float_s:.1f} img/s, "
        f"{peer_s / default_float_s:.2f}x); CPU time per image at 1 thread: skimage "
        f"{1e3 * peer_cpu / n:.2f} ms, project {1e3 * single_cpu / n:.2f} ms ({peer_cpu / single_cpu:.2f}x); "
        f"with {workers} image workers at 1 intra-op thread (the evaluation commands' setting): uint8 "
        f"{n / pooled_s:.1f} img/s ({peer_s / pooled_s:.2f}x), float32 {n / pooled_float_s:.1f} img/s "
        f"({peer_s / pooled_float_s:.2f}x)"
    )


# ------------------------------------------------------------------------------------- ssim_scgan + delta_e00 + auc_ab
LAB_GROUP = f"metrics-ssim_scgan-delta_e00-auc_ab-{SIZE}x{SIZE}"


def skimage_lab_loop(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Peer: one image at a time; (N, 3) rows of ssim_scgan, delta_e00, auc_ab (one rgb2lab per image and side)."""
    rows = []
    for g, p in zip(gt, pred):
        lab_g, lab_p = rgb2lab(g), rgb2lab(p)
        ab_error = np.hypot(lab_p[..., 1] - lab_g[..., 1], lab_p[..., 2] - lab_g[..., 2])
        rows.append(
            (
                structural_similarity(g / 255.0, p / 255.0, data_range=2.0, channel_axis=-1),
                deltaE_ciede2000(lab_g, lab_p).mean(),
                np.clip(1.0 - ab_error / 150.0, 0.0, None).mean(),
            )
        )
    return np.array(rows)


def project_lab_batched(gt: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
    """Candidate: (N, 3) rows of ssim_scgan, delta_e00, auc_ab on the uint8 batch, the last two from one Lab
    conversion per pair (the engine's compute group, as MetricSuite and the leaderboard get them)."""
    lab = MF.lab_metrics(pred, gt)
    return torch.stack([MF.ssim_scgan(pred, gt), lab["delta_e00"], lab["auc_ab"]], dim=1).numpy()


def check_lab_close(ours: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(ours[:, 0], ref[:, 0], rtol=0, atol=1e-5)  # SSIM (SCGAN protocol)
    np.testing.assert_allclose(ours[:, 1], ref[:, 1], rtol=0, atol=1e-6)  # delta E00
    np.testing.assert_allclose(ours[:, 2], ref[:, 2], rtol=0, atol=1e-9)  # AuC


def _lab_info(benchmark, role: str, label: str, count: int) -> None:
    _info(benchmark, role, label, count)
    benchmark.group = LAB_GROUP


def test_lab_metrics_skimage_loop(benchmark, images):
    gt, pred, gt_t, pred_t = images
    _lab_info(benchmark, "peer", "skimage-loop-ssim_scgan-lab", len(gt))
    ref = benchmark(skimage_lab_loop, gt, pred)
    check_lab_close(project_lab_batched(gt_t, pred_t), ref)


def test_lab_metrics_batched(benchmark, images):
    gt, pred, gt_t, pred_t = images
    _lab_info(benchmark, "candidate", "scgan-ssim_scgan-lab-batched", len(gt))
    ours = benchmark(project_lab_batched, gt_t, pred_t)
    count = len(gt) if benchmark.enabled else 2
    check_lab_close(ours[:count], skimage_lab_loop(gt[:count], pred[:count]))


def test_lab_metrics_speedup_ratio(benchmark, images):
    """As ``test_metrics_speedup_ratio``, for ssim_scgan + delta_e00 + auc_ab (speed-ups in extra_info)."""
    gt, pred, gt_t, pred_t = images
    _lab_info(benchmark, "candidate", "scgan-ssim_scgan-lab-batched-ratio", len(gt))
    ours = benchmark(project_lab_batched, gt_t, pred_t)
    if not benchmark.enabled:
        check_lab_close(ours[:2], skimage_lab_loop(gt[:2], pred[:2]))
        return
    check_lab_close(ours, skimage_lab_loop(gt, pred))
    default_threads = torch.get_num_threads()
    peer, single = [], []
    try:
        for _ in range(5):
            peer.append(_timed(lambda: skimage_lab_loop(gt, pred), 1))
            torch.set_num_threads(1)
            single.append(_timed(lambda: project_lab_batched(gt_t, pred_t), 3))
            torch.set_num_threads(default_threads)
    finally:
        torch.set_num_threads(default_threads)
    n = len(gt)
    peer_s, single_s = (statistics.median(w for w, _ in v) for v in (peer, single))
    peer_cpu, single_cpu = (statistics.median(c for _, c in v) for v in (peer, single))
    benchmark.extra_info.update(
        skimage_images_per_s=n / peer_s,
        project_images_per_s_1thread=n / single_s,
        speedup_1thread=peer_s / single_s,
        cpu_time_speedup_1thread=peer_cpu / single_cpu,
    )
    print(
        f"\n[ssim_scgan + delta_e00 + auc_ab speed] {n} images {SIZE}x{SIZE}: skimage loop {n / peer_s:.1f} img/s; "
        f"project {n / single_s:.1f} img/s at 1 thread ({peer_s / single_s:.2f}x); CPU time per image: skimage "
        f"{1e3 * peer_cpu / n:.2f} ms, project {1e3 * single_cpu / n:.2f} ms ({peer_cpu / single_cpu:.2f}x)"
    )
