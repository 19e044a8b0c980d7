"""The fast paths of the image metrics against scikit-image and against their own general paths.

- ``ssim_scgan`` on uint8 images: exact integer window sums (float32) and the formula in float64.
- ``delta_e00`` / ``auc_ab``: chunked in-place CIEDE2000 with a lookup table for 8-bit codes, per pixel against
  scikit-image on hand-picked hard cases (zero chroma, hue wrap-around, the blue region of the rotation term).
- Identical pairs skip the work: the values are the ones the full computation gives.
- ``delta_e00`` and ``auc_ab`` of the same pairs share one Lab conversion per batch (the engine's compute group).
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch
from skimage.metrics import structural_similarity

import metrics.image
from metrics import functional as MF


def nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def ref_ssim_scgan(gt01, pred01):
    return structural_similarity(gt01, pred01, data_range=2.0, channel_axis=-1)


# ------------------------------------------------------------------------------------------------------- ssim_scgan
@pytest.mark.parametrize("kind", ["random", "flat", "saturated", "one-level-apart", "photo"])
def test_ssim_scgan_uint8_exact_path_equals_float64_path(kind):
    rng = np.random.default_rng(21)
    if kind == "random":
        gt = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
        pred = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    elif kind == "flat":  # zero variance everywhere: the constants C1, C2 carry the value
        gt = np.full((16, 20, 3), 77, dtype=np.uint8)
        pred = np.full((16, 20, 3), 80, dtype=np.uint8)
    elif kind == "saturated":  # the largest window sums the exact path must hold (49 * 255^2 < 2^24)
        gt = np.where(rng.random((18, 18, 3)) < 0.5, 0, 255).astype(np.uint8)
        pred = (255 - gt).astype(np.uint8)
    elif kind == "one-level-apart":
        gt = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
        pred = (gt + (rng.random(gt.shape) < 0.3)).astype(np.uint8)
    else:
        gt = np.ascontiguousarray(skimage.data.coffee()[100:228, 200:328])
        pred = np.clip(gt.astype(np.int64) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    exact = float(MF.ssim_scgan(nchw(pred), nchw(gt))[0])
    float64 = float(MF.ssim_scgan(nchw(pred).double() / 255.0, nchw(gt).double() / 255.0)[0])
    assert abs(exact - float64) < 1e-12, kind
    assert abs(exact - ref_ssim_scgan(gt / 255.0, pred / 255.0)) < 1e-12, kind


def test_ssim_scgan_exact_path_bands_and_batches():
    """Row bands and batch composition leave the exact uint8 path's values unchanged (to rounding)."""
    rng = np.random.default_rng(22)
    gt = rng.integers(0, 256, (3, 3, 40, 33), dtype=np.uint8)
    pred = rng.integers(0, 256, (3, 3, 40, 33), dtype=np.uint8)
    batched = MF.ssim_scgan(torch.from_numpy(pred), torch.from_numpy(gt))
    for i in range(3):
        ref = ref_ssim_scgan(gt[i].transpose(1, 2, 0) / 255.0, pred[i].transpose(1, 2, 0) / 255.0)
        assert abs(float(batched[i]) - ref) < 1e-12


def test_ssim_scgan_exact_path_in_row_bands(monkeypatch):
    rng = np.random.default_rng(23)
    gt = rng.integers(0, 256, (1, 3, 64, 48), dtype=np.uint8)
    pred = rng.integers(0, 256, (1, 3, 64, 48), dtype=np.uint8)
    whole = float(MF.ssim_scgan(torch.from_numpy(pred), torch.from_numpy(gt))[0])
    monkeypatch.setattr(metrics.image, "BAND_PIXELS", 48 * 10)
    assert len(metrics.image._row_bands(64, 48, 6)) > 5
    assert float(MF.ssim_scgan(torch.from_numpy(pred), torch.from_numpy(gt))[0]) == pytest.approx(whole, abs=1e-12)


def test_identical_pairs_shortcut_gives_what_the_computation_gives():
    """Identical images skip the work; the computation itself gives exactly the same values (1, 1, 0, 1)."""
    img = nchw(skimage.data.astronaut()[100:140, 200:250])
    x8 = img
    xf = img.float() / 255.0
    assert float(metrics.image.ssim_map_mean(x8, x8, "uniform7", 2.0, 49 / 48, 128.0, torch.float32)[0]) == 1.0
    assert float(metrics.image.ssim_map_mean(xf.double(), xf.double(), "uniform7", 2.0, 49 / 48, 0.5,
                                             torch.float64)[0]) == 1.0
    assert float(metrics.image.ssim_map_mean(x8, x8, "gaussian11", 255.0, 1.0, 128.0, torch.float32)[0]) == 1.0
    pixels = float(img.shape[2] * img.shape[3])
    assert metrics.image._lab_pair_sums(x8[0], x8[0], 150.0, True) == (0.0, pixels)
    assert metrics.image._lab_pair_sums(xf[0], xf[0], 150.0, True) == (0.0, pixels)
    for fn, value in ((MF.ssim, 1.0), (MF.ssim_scgan, 1.0), (MF.delta_e00, 0.0), (MF.auc_ab, 1.0)):
        assert float(fn(x8, x8)[0]) == value


# ----------------------------------------------------------------------------------------------------- Lab metrics
def _hard_colour_pairs() -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) uint8 colour pairs that exercise every branch of CIEDE2000: grays (zero chroma) against colours and
    against grays, hue differences just above and below 180 degrees, hues around 275 degrees (the rotation term),
    primaries, near-identical colours, and random pairs."""
    rng = np.random.default_rng(31)
    first, second = [], []
    grays = [np.array([v, v, v]) for v in (0, 1, 17, 128, 254, 255)]
    primaries = [np.array(c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
                                       (255, 0, 255))]
    for a in grays + primaries:
        for b in grays + primaries:
            first.append(a)
            second.append(b)
    # hues around 275 degrees (blue-violet) against each other and against their opposites
    for _ in range(200):
        blue = np.array([rng.integers(40, 140), rng.integers(0, 80), rng.integers(150, 256)])
        first.append(blue)
        second.append(np.clip(blue + rng.integers(-30, 31, 3), 0, 255))
        first.append(blue)
        second.append(255 - blue)
    # near-identical colours (one code apart) and random pairs
    base = rng.integers(0, 256, (500, 3))
    first.extend(base)
    second.extend(np.clip(base + rng.integers(-1, 2, base.shape), 0, 255))
    first.extend(rng.integers(0, 256, (1000, 3)))
    second.extend(rng.integers(0, 256, (1000, 3)))
    return np.array(first, dtype=np.uint8), np.array(second, dtype=np.uint8)


def test_ciede2000_per_pixel_matches_skimage_on_hard_cases(monkeypatch):
    """Per pixel (one row of pixels, chunks of 64 so the chunk loop runs), including the zero-chroma conventions."""
    monkeypatch.setattr(metrics.image, "LAB_CHUNK_PIXELS", 64)
    true, pred = _hard_colour_pairs()
    lab_true = skimage.color.rgb2lab(true[None])[0]
    lab_pred = skimage.color.rgb2lab(pred[None])[0]
    expected_de = skimage.color.deltaE_ciede2000(lab_true, lab_pred)
    expected_ab = np.hypot(*(lab_pred[:, 1:] - lab_true[:, 1:]).T)
    ws_key = min(64, true.shape[0])
    with metrics.image._lab_workspace(ws_key, torch.device("cpu")) as ws:
        got_de, got_ab = [], []
        for p0 in range(0, true.shape[0], 64):
            t = torch.from_numpy(np.ascontiguousarray(true[p0 : p0 + 64].T))
            p = torch.from_numpy(np.ascontiguousarray(pred[p0 : p0 + 64].T))
            v = ws.views(t.shape[1])
            metrics.image._lab_into(v.lab_pred, p, v)
            metrics.image._lab_into(v.lab_true, t, v)
            got_ab.append(torch.hypot(v.lab_pred[1] - v.lab_true[1], v.lab_pred[2] - v.lab_true[2]).numpy())
            de = metrics.image._ciede2000_into(v.rows[13], v.lab_true, v.lab_pred, v.rows[:13], v.masks)
            got_de.append(de.numpy().copy())
    np.testing.assert_allclose(np.concatenate(got_de), expected_de, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.concatenate(got_ab), expected_ab, rtol=0, atol=1e-10)
    # The public functions on the same pairs as 1x1 images (one value per pixel).
    p_img = torch.from_numpy(pred.reshape(-1, 3, 1, 1).copy())
    t_img = torch.from_numpy(true.reshape(-1, 3, 1, 1).copy())
    np.testing.assert_allclose(MF.delta_e00(p_img[:300], t_img[:300]).numpy(), expected_de[:300], rtol=0,
                               atol=1e-10)


def test_lab_metrics_uint8_and_float_inputs_agree():
    """uint8 (lookup table) and float (formula) inputs give the same values; so do float32 images of u / 255."""
    rng = np.random.default_rng(32)
    gt = torch.from_numpy(rng.integers(0, 256, (2, 3, 30, 20), dtype=np.uint8))
    pred = torch.from_numpy(rng.integers(0, 256, (2, 3, 30, 20), dtype=np.uint8))
    u8 = MF.lab_metrics(pred, gt)
    f64 = MF.lab_metrics(pred.double() / 255, gt.double() / 255)
    for name in ("delta_e00", "auc_ab"):
        np.testing.assert_allclose(u8[name].numpy(), f64[name].numpy(), rtol=0, atol=1e-12)
    f32 = MF.delta_e00(pred.float() / 255, gt.float() / 255)
    np.testing.assert_allclose(f32.numpy(), u8["delta_e00"].numpy(), rtol=0, atol=1e-5)  # float32 input rounding


def test_lab_chunk_size_does_not_change_values(monkeypatch):
    img = skimage.data.chelsea()[:90, :110]
    noisy = np.clip(img + np.random.default_rng(33).normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    p, t = nchw(noisy), nchw(img)
    whole = MF.lab_metrics(p, t)
    monkeypatch.setattr(metrics.image, "LAB_CHUNK_PIXELS", 1000)  # 10 chunks, the last one partial
    chunked = MF.lab_metrics(p, t)
    for name in whole:
        assert float(chunked[name][0]) == pytest.approx(float(whole[name][0]), abs=1e-12), name


def test_lab_metrics_share_one_conversion_per_batch_and_keep_nothing_between_calls(monkeypatch):
    """One engine pass gives both Lab metrics from one conversion per pair; separate calls keep no hidden state (no
    cache keyed on tensors): each converts again, and values follow in-place changes."""
    rng = np.random.default_rng(34)
    gt = torch.from_numpy(rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8))
    pred = torch.from_numpy(rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8))
    fresh_auc = MF.auc_ab(pred, gt).clone()
    calls = []
    real = metrics.image._lab_pair_sums
    monkeypatch.setattr(metrics.image, "_lab_pair_sums", lambda *a: calls.append(1) or real(*a))
    combined = MF.lab_metrics(pred, gt)
    assert len(calls) == 2
    de = MF.delta_e00(pred.clone(), gt.numpy().copy())
    auc = MF.auc_ab(pred.clone(), gt.clone())
    assert len(calls) == 6
    assert torch.equal(de, combined["delta_e00"]) and torch.equal(auc, combined["auc_ab"])
    assert torch.equal(auc, fresh_auc)
    MF.auc_ab(pred, gt, max_threshold=50.0)
    assert len(calls) == 8
    pred[1, 0, 3, 3] ^= 0x40
    changed = MF.auc_ab(pred, gt)
    assert float(changed[0]) == float(fresh_auc[0]) and float(changed[1]) != float(fresh_auc[1])


def test_metric_suite_converts_to_lab_once_per_pair(monkeypatch):
    """auc_ab listed before delta_e00: still one Lab conversion per image pair, and the values of separate calls."""
    from metrics import MetricSuite

    rng = np.random.default_rng(35)
    gt = rng.integers(0, 256, (3, 3, 12, 12), dtype=np.uint8)
    pred = rng.integers(0, 256, (3, 3, 12, 12), dtype=np.uint8)
    expected = {name: getattr(MF, name)(torch.from_numpy(pred), torch.from_numpy(gt)).numpy()
                for name in ("auc_ab", "delta_e00")}
    calls = []
    real = metrics.image._lab_pair_sums
    monkeypatch.setattr(metrics.image, "_lab_pair_sums", lambda *a: calls.append(1) or real(*a))
    suite = MetricSuite(["auc_ab", "delta_e00"])
    suite.update(pred, gt)  # numpy arrays: checked once by the engine
    assert len(calls) == 3
    suite.update(pred, gt)  # the next batch (here the same images) is converted again: nothing kept between batches
    assert len(calls) == 6
    for name, values in suite.columns().items():
        np.testing.assert_array_equal(values, np.concatenate([expected[name]] * 2))


def test_lab_metrics_torch_fallback_of_the_numpy_steps(monkeypatch):
    """Off the CPU the numpy steps (cbrt, sqrt, arctan2, exp) run as torch ops: same values (checked here on CPU)."""
    rng = np.random.default_rng(36)
    gt = torch.from_numpy(rng.integers(0, 256, (2, 3, 20, 20), dtype=np.uint8))
    pred = torch.from_numpy(rng.integers(0, 256, (2, 3, 20, 20), dtype=np.uint8))
    with_numpy = MF.lab_metrics(pred, gt)
    monkeypatch.setattr(metrics.image, "_numpy_inplace",
                        lambda ufunc, out, *inputs: metrics.image._TORCH_EQUIVALENTS[ufunc](*inputs, out=out))
    with_torch = MF.lab_metrics(pred, gt)
    for name in with_numpy:
        np.testing.assert_allclose(with_torch[name].numpy(), with_numpy[name].numpy(), rtol=0, atol=1e-12)
