"""The evaluation engine (metrics/engine.py): exact 8-bit quantization of float input, shared inputs computed once per
batch, and CNI (metrics/naturalness.py) against a per-pixel transcription of the SCGAN evaluation code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch

import metrics
import metrics.engine
from metrics import functional as MF
from metrics.engine import quantize_uint8


# ------------------------------------------------------------------------------------------------------ quantization
def test_float32_quantization_is_exact_for_every_8bit_level():
    """u / 255 for every level u, made in float32 or float64: the float32 path gives back u, with no float64 repair."""
    levels = torch.arange(256, dtype=torch.int64)
    for dtype in (torch.float32, torch.float64):
        x = (levels.to(dtype) / 255.0).view(1, 1, 16, 16).expand(1, 3, 16, 16)
        t = x.to(torch.float32) * 255.0 + 0.5
        # t = x * 255 + 0.5 in float32 is never an integer (so no value takes the float64 repair) ...
        assert not bool((t == torch.trunc(t)).any())
        assert float((t - 0.5 - levels.view(1, 1, 16, 16).to(torch.float32)).abs().max()) < 2.0**-15
        # ... and round back to the level itself.
        assert torch.equal(quantize_uint8(x)[0, 0].flatten().to(torch.int64), levels), dtype


def test_quantization_equals_the_float64_rounding_on_any_float_input():
    """Random floats and values placed on and next to every .5 tie: float32 + repair == floor(x * 255 + 0.5) in
    float64 (the rounding of scgan.data.to_uint8)."""
    rng = np.random.default_rng(5)
    ties = (np.arange(255) + 0.5) / 255.0
    near = np.concatenate([ties, np.nextafter(ties, 0.0), np.nextafter(ties, 1.0), ties + 1e-9, ties - 1e-9])
    values = np.concatenate([near, rng.random(3 * 32 * 32 - near.size % (3 * 32 * 32))])
    values = np.clip(values, 0.0, 1.0)[: 3 * 32 * 32 * (values.size // (3 * 32 * 32))]
    for dtype in (np.float64, np.float32):
        x = torch.from_numpy(values.astype(dtype).reshape(-1, 3, 32, 32))
        expected = np.floor(x.numpy().astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(quantize_uint8(x).numpy(), expected)
        if dtype == np.float32:  # the set holds float32 ties, so the float64 repair is exercised
            t = x * np.float32(255.0) + np.float32(0.5)
            assert bool((t == torch.trunc(t)).any())
        # The torch steps (used off the CPU) give the same bytes.
        np.testing.assert_array_equal(metrics.engine._quantize_torch(x).numpy(), expected)
    half = torch.from_numpy(values.astype(np.float16).reshape(-1, 3, 32, 32))
    expected = np.floor(half.numpy().astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(quantize_uint8(half).numpy(), expected)
    # Slight overshoot (allowed up to 1e-6 by the input check) is clamped like to_uint8 does.
    for dtype in (torch.float32, torch.float64):
        edge = torch.tensor([-1e-6, 1.0 + 1e-6, 0.0, 1.0], dtype=dtype).view(1, 1, 2, 2).expand(1, 3, 2, 2)
        assert quantize_uint8(edge)[0, 0].flatten().tolist() == [0, 255, 0, 255]


def test_float_input_gives_the_uint8_values():
    """Float images made from uint8 give bit-for-bit the uint8 values of the 0..255 metrics (one quantization)."""
    rng = np.random.default_rng(6)
    a = torch.from_numpy(rng.integers(0, 256, (3, 3, 20, 24), dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, (3, 3, 20, 24), dtype=np.uint8))
    suite_u8 = metrics.MetricSuite(["psnr", "ssim", "cci", "cf_abs", "cni", "cci_ratio", "delta_cf"])
    suite_f = metrics.MetricSuite(["psnr", "ssim", "cci", "cf_abs", "cni", "cci_ratio", "delta_cf"])
    suite_u8.update(a, b)
    suite_f.update(a.float() / 255.0, b.float() / 255.0)
    for name, values in suite_u8.columns().items():
        np.testing.assert_array_equal(suite_f.columns()[name], values, err_msg=name)


def test_shared_inputs_are_computed_once_per_batch(monkeypatch):
    """cci, cci_ratio and delta_cf share one colourfulness pass over pred; the quantization runs once per side."""
    import metrics.image

    counts = {"colourfulness": 0, "quantize": 0}
    real_cf, real_q = metrics.image.colourfulness, metrics.engine.quantize_uint8

    def counting_cf(*args):
        counts["colourfulness"] += 1
        return real_cf(*args)

    def counting_q(*args):
        counts["quantize"] += 1
        return real_q(*args)

    monkeypatch.setattr(metrics.image, "colourfulness", counting_cf)
    monkeypatch.setattr(metrics.engine, "quantize_uint8", counting_q)
    pred, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    suite = metrics.MetricSuite(["cci", "cci_ratio", "psnr", "ssim", "delta_cf", "cf_abs"])
    suite.update(pred, gt)
    # cci (pred, signed) + cf_abs (pred, abs) + cf_abs (gt, abs): three passes for six uses; two quantizations.
    assert counts == {"colourfulness": 3, "quantize": 2}


def test_registry_metadata_drives_the_checks():
    with pytest.raises(ValueError, match="psnr_salient: needs a saliency map"):
        metrics.MetricSuite(["psnr_salient"]).update(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"saliency: expected maps of shape \(1, 1, 8, 8\)"):
        MF.psnr_salient(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.rand(1, 1, 4, 4))
    assert metrics.metric_info("cni").inputs == ("uint8",) and not metrics.metric_info("cni").paired
    assert metrics.metric_info("bleeding").needs_saliency
    assert "cni" in metrics.registry.default_metrics()
    assert not any(metrics.metric_info(n).needs_saliency for n in metrics.registry.default_metrics())


# ------------------------------------------------------------------------------------------------ saliency metrics
def test_saliency_metrics_match_numpy():
    rng = np.random.default_rng(7)
    pred = rng.integers(0, 256, (2, 3, 12, 14), dtype=np.uint8)
    gt = rng.integers(0, 256, (2, 3, 12, 14), dtype=np.uint8)
    saliency = rng.random((2, 1, 12, 14)).astype(np.float32)
    p, t, s = torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(saliency)
    mask = saliency[:, 0] >= 0.5
    for i in range(2):
        diff = pred[i].astype(np.float64) - gt[i].astype(np.float64)
        inside = diff[:, mask[i]]
        assert float(MF.psnr_salient(p, t, s)[i]) == pytest.approx(10 * np.log10(255.0**2 / np.mean(inside**2)),
                                                                    rel=1e-12)
        rgb = pred[i].astype(np.float64)[:, ~mask[i]]
        rg, yb = rgb[0] - rgb[1], 0.5 * (rgb[0] + rgb[1]) - rgb[2]
        ref = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
        assert float(MF.cci_background(p, s)[i]) == pytest.approx(ref, rel=1e-9)
    empty = torch.zeros(2, 1, 12, 14)
    assert torch.isnan(MF.psnr_salient(p, t, empty)).all() and torch.isnan(MF.bleeding(p, t, empty)).all()


# ------------------------------------------------------------------------------------------------------------- CNI
def _rgb2hsl_reference(r, g, b):
    """Transcription of rgb2hsl of the SCGAN evaluation code (evaluation/indexes_CCI.py), one pixel."""
    r, g, b = r / 255, g / 255, b / 255
    c_max, c_min = max(r, g, b), min(r, g, b)
    pf, df = c_max + c_min, c_max - c_min
    if c_max == c_min:
        h = 0
    elif c_max == r:
        h = (60 * ((g - b) / df) + 360) % 360
    elif c_max == g:
        h = (60 * ((b - r) / df) + 120) % 360
    else:
        h = (60 * ((r - g) / df) + 240) % 360
    lightness = pf / 2
    s = 0 if df == 0 else df / (1 - abs(2 * lightness - 1))
    return h, s, lightness


def _cni_reference(img: np.ndarray) -> float:
    """Transcription of SingleImageCNI, pixel by pixel: img uint8 (H, W, 3)."""
    skin, grass, sky = [], [], []
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            h, s, lightness = _rgb2hsl_reference(img[i, j, 0], img[i, j, 1], img[i, j, 2])
            if s > 0.1 and lightness > 0.2 and lightness < 0.8:
                if 25 <= h <= 70:
                    skin.append(s)
                if 95 <= h <= 135:
                    grass.append(s)
                if 185 <= h <= 260:
                    sky.append(s)

    def average(values):
        total = 0
        for v in values:
            total += v
        return total / len(values) if values else total

    n_skin = math.exp(-0.5 * math.pow((average(skin) - 0.76) / 0.52, 2))
    n_grass = math.exp(-0.5 * math.pow((average(grass) - 0.81) / 0.53, 2))
    n_sky = math.exp(-0.5 * math.pow((average(sky) - 0.43) / 0.22, 2))
    count = len(skin) + len(grass) + len(sky)
    return 0 if count == 0 else (len(skin) * n_skin + len(grass) * n_grass + len(sky) * n_sky) / count


def _cni_images() -> list[np.ndarray]:
    steps = np.arange(0, 256, 17, dtype=np.uint8)  # 16 levels per channel: every hue sector, grays, the bounds
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(64, 64, 3)
    rng = np.random.default_rng(8)
    return [
        grid,
        rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
        np.ascontiguousarray(skimage.data.astronaut()[150:214, 180:244]),  # skin
        np.ascontiguousarray(skimage.data.coffee()[:48, :64]),
        np.full((8, 8, 3), 128, dtype=np.uint8),  # gray: no pixel in any class, CNI 0
    ]


@pytest.mark.parametrize("index", range(5))
def test_cni_matches_the_per_pixel_reference(index):
    img = _cni_images()[index]
    ours = float(MF.cni(torch.from_numpy(img.transpose(2, 0, 1).copy())[None])[0])
    assert abs(ours - _cni_reference(img)) <= 1e-9
    if index == 4:
        assert ours == 0.0


def test_cni_float_input_and_streaming():
    img = _cni_images()[2]
    u8 = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
    assert float(MF.cni(u8.double() / 255.0)[0]) == float(MF.cni(u8)[0])
    m = metrics.create_metric("cni")
    m.update(u8)
    m.update(torch.cat([u8, u8]))
    assert m.values().shape == (3,) and m.compute() == pytest.approx(_cni_reference(img), abs=1e-9)


def test_use_image_workers_is_the_commands_one_thread_setting(monkeypatch):
    """An evaluation command sets threads once: one intra-op thread, images spread over workers; values unchanged."""
    before = torch.get_num_threads()
    monkeypatch.setitem(metrics.engine._PROCESS_WORKERS, "workers", 1)
    rng = np.random.default_rng(9)
    a = torch.from_numpy(rng.integers(0, 256, (4, 3, 20, 20), dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, (4, 3, 20, 20), dtype=np.uint8))
    serial = metrics.MetricSuite(["ssim", "ssim_scgan", "delta_e00"])
    serial.update(a, b)
    try:
        assert metrics.engine.use_image_workers(3) == 3
        assert torch.get_num_threads() == 1
        suite = metrics.MetricSuite(["ssim", "ssim_scgan", "delta_e00"])
        assert metrics.engine.prepare_batch(list(suite.metrics.values()), a, b).workers == 3
        suite.update(a, b)
        for name, values in serial.columns().items():
            np.testing.assert_array_equal(suite.columns()[name], values, err_msg=name)
        with pytest.raises(ValueError, match="workers must be at least 1"):
            metrics.engine.use_image_workers(0)
    finally:
        torch.set_num_threads(before)
