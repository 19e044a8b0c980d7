"""Image metrics calibrated against their references (docs/metrics.md) on real photos and distortions.

Longer than 500 lines for one reason: every metric is checked against its reference function (``ref_*`` below) on the
same distorted photo pairs (``photo_pairs``, ``distort``); tests/ is not a package, so they cannot live in a helper
module shared by several test files.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import metrics
from metrics import functional as MF
from metrics.color import lab_to_rgb, rgb_to_lab

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


# ------------------------------------------------------------------------------------------------ references (numpy)
def ref_psnr(gt, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # divide by zero for identical images -> inf, as we do
        return peak_signal_noise_ratio(gt, pred, data_range=255)


def ref_ssim(gt, pred):
    return structural_similarity(
        gt, pred, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
    )


def ref_ssim_scgan(gt01, pred01):
    return structural_similarity(gt01, pred01, data_range=2.0, channel_axis=-1)


def ref_colourfulness(img, absolute=False):
    img = img.astype(np.float64)
    rg = img[..., 0] - img[..., 1]
    yb = 0.5 * (img[..., 0] + img[..., 1]) - img[..., 2]
    if absolute:
        rg, yb = np.abs(rg), np.abs(yb)
    return np.sqrt(np.std(rg) ** 2 + np.std(yb) ** 2) + 0.3 * np.sqrt(np.mean(rg) ** 2 + np.mean(yb) ** 2)


def ref_delta_e00(gt, pred):
    return skimage.color.deltaE_ciede2000(skimage.color.rgb2lab(gt), skimage.color.rgb2lab(pred)).mean()


def ref_auc_ab(gt, pred, max_t=150.0):
    """Integral of the empirical CDF of the ab error over [0, max_t] / max_t, summed step by step over the sorted
    errors (an independent way of writing what metrics.image.auc_ab computes in closed form)."""
    lab_gt, lab_pred = skimage.color.rgb2lab(gt), skimage.color.rgb2lab(pred)
    err = np.sort(np.hypot(*(lab_gt[..., 1:] - lab_pred[..., 1:]).reshape(-1, 2).T))
    n = err.size
    knots = np.concatenate([[0.0], np.minimum(err, max_t), [max_t]])
    # On [knots[i], knots[i+1]] the fraction of errors strictly below t is i / n.
    widths = np.diff(knots)
    return float(np.sum(widths * np.arange(n + 1) / n) / max_t)


# --------------------------------------------------------------------------------------------------------- fixtures
def nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def distort(img: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) -> a distorted uint8 copy."""
    rng = np.random.default_rng(seed)
    x = img.astype(np.float64)
    if kind == "noise":
        out = x + rng.normal(0, 8, x.shape)
    elif kind == "desaturate":
        gray = x @ np.array([0.299, 0.587, 0.114])
        out = 0.5 * x + 0.5 * gray[..., None]
    elif kind == "hue":
        lab = skimage.color.rgb2lab(img)
        angle = np.deg2rad(60)
        a, b = lab[..., 1].copy(), lab[..., 2].copy()
        lab[..., 1], lab[..., 2] = a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)
        out = skimage.color.lab2rgb(lab) * 255
    elif kind == "gray":
        gray = x @ np.array([0.299, 0.587, 0.114])
        out = np.repeat(gray[..., None], 3, axis=2)
    else:
        raise ValueError(kind)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


DISTORTIONS = ("noise", "desaturate", "hue", "gray")


@pytest.fixture(scope="module")
def photo_pairs():
    """(name, gt uint8 HWC, pred uint8 HWC): the photos (crops, to keep the suite fast: astronaut 256x256, the others
    160x200) under every distortion."""
    pairs = []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        if name == "astronaut":
            img = np.ascontiguousarray(img[:256, 128:384])
        else:
            img = np.ascontiguousarray(img[40:200, 60:260])
        for kind in DISTORTIONS:
            pairs.append((f"{name}-{kind}", img, distort(img, kind)))
    return pairs


# ------------------------------------------------------------------------------------------------------ calibration
def test_psnr_ssim_match_skimage_on_photos(photo_pairs):
    for label, gt, pred in photo_pairs:
        p, t = nchw(pred), nchw(gt)
        assert abs(float(MF.psnr(p, t)[0]) - ref_psnr(gt, pred)) <= 1e-6, label
        assert abs(float(MF.ssim(p, t)[0]) - ref_ssim(gt, pred)) <= 1e-5, label


def test_ssim_float64_precision_matches_to_rounding(photo_pairs):
    label, gt, pred = photo_pairs[0]
    assert abs(float(MF.ssim(nchw(pred), nchw(gt), precision="float64")[0]) - ref_ssim(gt, pred)) < 1e-12, label


def test_ssim_scgan_matches_skimage_on_the_same_floats(photo_pairs):
    for label, gt, pred in photo_pairs[::2]:
        gt01, pred01 = gt / 255.0, pred / 255.0
        ours = float(MF.ssim_scgan(nchw(pred01), nchw(gt01))[0])
        assert abs(ours - ref_ssim_scgan(gt01, pred01)) <= 1e-5, label
        # uint8 input is the same as u / 255.
        assert abs(float(MF.ssim_scgan(nchw(pred), nchw(gt))[0]) - ours) < 1e-12


def test_ssim_scgan_float32_input_close_to_skimage_float32():
    gt = skimage.data.chelsea()[:128, :128]
    pred = distort(gt, "noise")
    gt32, pred32 = (gt / 255.0).astype(np.float32), (pred / 255.0).astype(np.float32)
    ours = float(MF.ssim_scgan(nchw(pred32), nchw(gt32))[0])
    assert abs(ours - ref_ssim_scgan(gt32, pred32)) <= 1e-5
    assert abs(ours - ref_ssim_scgan(gt32.astype(np.float64), pred32.astype(np.float64))) <= 1e-9


def test_ssim_and_ssim_scgan_differ_as_documented(photo_pairs):
    _, gt, pred = photo_pairs[2]  # astronaut, hue rotation: same structure, other colours
    assert abs(float(MF.ssim(nchw(pred), nchw(gt))[0]) - float(MF.ssim_scgan(nchw(pred), nchw(gt))[0])) > 1e-3


def test_colourfulness_matches_numpy_formula(photo_pairs):
    for label, gt, pred in photo_pairs:
        for img in (gt, pred):
            ours_cci = float(MF.cci(nchw(img))[0])
            ours_cf = float(MF.cf_abs(nchw(img))[0])
            assert ours_cci == pytest.approx(ref_colourfulness(img), rel=1e-9, abs=1e-12), label
            assert ours_cf == pytest.approx(ref_colourfulness(img, absolute=True), rel=1e-9, abs=1e-12), label


def test_gray_image_has_zero_colourfulness():
    gray = distort(skimage.data.coffee(), "gray")
    assert float(MF.cci(nchw(gray))[0]) == 0.0
    assert float(MF.cf_abs(nchw(gray))[0]) == 0.0


def test_signed_and_abs_colourfulness_differ_on_photos():
    img = nchw(skimage.data.coffee())
    assert float(MF.cf_abs(img)[0]) != pytest.approx(float(MF.cci(img)[0]), rel=1e-3)


def test_delta_e00_and_auc_match_references(photo_pairs):
    for label, gt, pred in photo_pairs[::3]:
        p, t = nchw(pred), nchw(gt)
        assert abs(float(MF.delta_e00(p, t)[0]) - ref_delta_e00(gt, pred)) <= 1e-6, label
        assert abs(float(MF.auc_ab(p, t)[0]) - ref_auc_ab(gt, pred)) <= 1e-9, label


def test_auc_converges_to_a_dense_threshold_sweep():
    gt = skimage.data.astronaut()[::4, ::4]
    pred = distort(gt, "hue")
    lab_gt, lab_pred = skimage.color.rgb2lab(gt), skimage.color.rgb2lab(pred)
    err = np.hypot(*(lab_gt[..., 1:] - lab_pred[..., 1:]).reshape(-1, 2).T)
    thresholds = np.linspace(0, 150, 3001)
    cdf = (err[None, :] < thresholds[:, None]).mean(axis=1)
    sweep = np.trapezoid(cdf, thresholds) / 150
    assert abs(float(MF.auc_ab(nchw(pred), nchw(gt))[0]) - sweep) < 1e-3


@pytest.mark.parametrize("metric", ["psnr", "ssim", "cci", "cf_abs"])
def test_float_input_from_uint8_equals_uint8_reference(photo_pairs, metric):
    """Float images that came from uint8 (u / 255 in float32 or float64) give the uint8 value (8-bit protocol)."""
    _, gt, pred = photo_pairs[4]
    fn = getattr(MF, metric)
    args_u8 = (nchw(pred),) if metric.startswith("c") else (nchw(pred), nchw(gt))
    expected = fn(*args_u8)
    for dtype in (torch.float32, torch.float64):
        args = tuple(a.to(dtype) / 255.0 for a in args_u8)
        assert torch.equal(fn(*args), expected), dtype


def test_quantize_false_uses_unrounded_values():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 1, (1, 3, 16, 16))
    pred = np.clip(gt + rng.normal(0, 0.01, gt.shape), 0, 1)
    unrounded = float(MF.psnr(torch.from_numpy(pred), torch.from_numpy(gt), quantize=False)[0])
    mse = np.mean((pred * 255 - gt * 255) ** 2)
    assert unrounded == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9)
    rounded = float(MF.psnr(torch.from_numpy(pred), torch.from_numpy(gt))[0])
    assert rounded != pytest.approx(unrounded, abs=1e-3)
    cci_unrounded = float(MF.cci(torch.from_numpy(pred), quantize=False)[0])
    assert cci_unrounded == pytest.approx(ref_colourfulness(pred[0].transpose(1, 2, 0) * 255), rel=1e-9)


# ------------------------------------------------------------------------------------------------------ boundaries
def test_identical_images():
    img = nchw(skimage.data.chelsea()[:64, :64])
    assert torch.isinf(MF.psnr(img, img)).all()
    assert float(MF.ssim(img, img)[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(MF.ssim_scgan(img, img)[0]) == pytest.approx(1.0, abs=1e-12)
    assert float(MF.delta_e00(img, img)[0]) == 0.0
    assert float(MF.auc_ab(img, img)[0]) == 1.0


def test_mean_of_psnr_with_inf_is_inf_and_values_keep_it():
    a = nchw(skimage.data.chelsea()[:32, :32])
    b = nchw(distort(skimage.data.chelsea()[:32, :32], "noise"))
    m = metrics.create_metric("psnr")
    m.update(torch.cat([a, b]), torch.cat([a, a]))
    values = m.values()
    assert np.isinf(values[0]) and np.isfinite(values[1])
    assert m.compute() == float("inf")


def test_one_pixel_wide_and_odd_sizes():
    rng = np.random.default_rng(5)
    for shape in [(9, 1, 3), (1, 7, 3), (1, 1, 3), (13, 11, 3), (11, 17, 3)]:
        gt = rng.integers(0, 256, shape, dtype=np.uint8)
        pred = rng.integers(0, 256, shape, dtype=np.uint8)
        p, t = nchw(pred), nchw(gt)
        assert abs(float(MF.psnr(p, t)[0]) - ref_psnr(gt, pred)) <= 1e-6
        assert float(MF.cci(p)[0]) == pytest.approx(ref_colourfulness(pred), rel=1e-9, abs=1e-12)
        assert abs(float(MF.delta_e00(p, t)[0]) - ref_delta_e00(gt, pred)) <= 1e-6
        assert abs(float(MF.auc_ab(p, t)[0]) - ref_auc_ab(gt, pred)) <= 1e-9
        if min(shape[:2]) >= 11:
            assert abs(float(MF.ssim(p, t)[0]) - ref_ssim(gt, pred)) <= 1e-5
            ref = ref_ssim_scgan(gt / 255.0, pred / 255.0)
            assert abs(float(MF.ssim_scgan(p, t)[0]) - ref) <= 1e-5
        else:
            with pytest.raises(ValueError, match="at least 11x11"):
                MF.ssim(p, t)


def test_ssim_scgan_minimum_size_7():
    rng = np.random.default_rng(6)
    gt, pred = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8), rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    assert abs(float(MF.ssim_scgan(nchw(pred), nchw(gt))[0]) - ref_ssim_scgan(gt / 255, pred / 255)) <= 1e-5
    with pytest.raises(ValueError, match="at least 7x7"):
        MF.ssim_scgan(nchw(pred[:6]), nchw(gt[:6]))


def band_image(rg_amplitude: int) -> np.ndarray:
    """An image whose CCI is exactly ``rg_amplitude``: rg = +-A in equal halves, yb = 0 everywhere, mean rg = 0."""
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    half = rg_amplitude // 2
    img[:4] = [128 + half, 128 - half, 128]
    img[4:] = [128 - half, 128 + half, 128]
    return img


@pytest.mark.parametrize("amplitude, in_band", [(14, False), (16, True), (18, True), (20, True), (22, False)])
def test_cci_band_bounds_are_inclusive(amplitude, in_band):
    img = nchw(band_image(amplitude))
    assert float(MF.cci(img)[0]) == float(amplitude)  # exactly on the bound
    assert MF.cci_ratio(img) == (1.0 if in_band else 0.0)


def test_cci_ratio_on_a_set_and_per_image_values():
    batch = torch.cat([nchw(band_image(a)) for a in (14, 16, 20, 22)])
    m = metrics.create_metric("cci_ratio")
    m.update(batch[:3])
    m.update(batch[3:])
    np.testing.assert_array_equal(m.values(), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(m.cci_values(), [14.0, 16.0, 20.0, 22.0])
    assert m.compute() == 0.5


def test_delta_cf_exact():
    preds = torch.cat([nchw(band_image(a)) for a in (14, 20)])
    gts = torch.cat([nchw(band_image(a)) for a in (16, 22)])
    cf_p = np.array([ref_colourfulness(band_image(a), True) for a in (14, 20)])
    cf_g = np.array([ref_colourfulness(band_image(a), True) for a in (16, 22)])
    assert MF.delta_cf(preds, gts) == abs(cf_p.mean() - cf_g.mean())
    assert MF.delta_cf(preds, gts, variant="signed") == 2.0
    m = metrics.create_metric("delta_cf")
    m.update(preds, gts)
    np.testing.assert_allclose(m.values(), cf_p - cf_g, rtol=1e-12)


def test_batch_of_one_and_batched_equal_per_image(photo_pairs):
    gts = torch.cat([nchw(g) for _, g, _ in photo_pairs[4:8]])
    preds = torch.cat([nchw(p) for _, _, p in photo_pairs[4:8]])
    for name in ("psnr", "ssim", "ssim_scgan", "delta_e00", "auc_ab"):
        fn = getattr(MF, name)
        batched = fn(preds, gts)
        assert batched.shape == (4,) and batched.dtype == torch.float64
        for i in range(4):
            assert float(batched[i]) == pytest.approx(float(fn(preds[i : i + 1], gts[i : i + 1])[0]), abs=1e-12)


# ------------------------------------------------------------------------------------------------------------ errors
def test_input_errors_say_what_and_where():
    good = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"pred and target shapes differ: pred \(2, 3, 16, 16\) vs target"):
        MF.psnr(good, torch.rand(2, 3, 16, 15))
    with pytest.raises(ValueError, match="pred: expected 3 RGB channels"):
        MF.ssim(torch.rand(2, 4, 16, 16), good)
    with pytest.raises(ValueError, match="target: expected 4 dimensions"):
        MF.psnr(good, torch.rand(3, 16, 16))
    bad = good.clone()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="pred: image 1 contains NaN"):
        MF.delta_e00(bad, good)
    with pytest.raises(ValueError, match=r"target: values must lie in \[0, 1\].*image 0 spans \[.*, 1\.5\]"):
        over = good.clone()
        over[0, 0, 0, 0] = 1.5
        MF.auc_ab(good, over)
    with pytest.raises(TypeError, match="int32"):
        MF.cci(torch.zeros(1, 3, 4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="empty"):
        MF.cci(torch.zeros(0, 3, 4, 4))
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        MF.cci([[1, 2, 3]])


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown metric 'psnr2'; known metrics: psnr, ssim"):
        metrics.create_metric("psnr2")
    with pytest.raises(TypeError, match="unknown option"):
        metrics.create_metric("psnr", window=7)
    with pytest.raises(ValueError, match="needs the ground truth"):
        metrics.create_metric("ssim").update(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="no images"):
        metrics.create_metric("psnr").compute()
    with pytest.raises(ValueError, match="variant"):
        metrics.create_metric("delta_cf", variant="nope")
    images = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="ssim: precision must be 'float32' or 'float64', got 'float16'"):
        metrics.create_metric("ssim", precision="float16").update(images, images)
    with pytest.raises(ValueError, match="auc_ab: max_threshold must be positive"):
        MF.auc_ab(images, images, max_threshold=0.0)


# ------------------------------------------------------------------------------------------- registry and streaming
def test_registry_lists_every_design_metric_with_info():
    expected = {"psnr", "ssim", "ssim_scgan", "cci", "cf_abs", "cci_ratio", "delta_cf", "delta_e00", "auc_ab",
                "top1", "top5", "top1_agree", "fid_effl0", "cni",
                "psnr_salient", "psnr_background", "cci_salient", "cci_background", "bleeding"}
    assert set(metrics.list_metrics()) == expected
    for name in expected:
        info = metrics.metric_info(name)
        assert info.name == name and info.level in ("image", "dataset") and info.reference and info.description
        assert hasattr(MF, name)
    assert metrics.metric_info("psnr").higher_is_better and not metrics.metric_info("delta_e00").higher_is_better
    assert metrics.metric_info("cci").paired is False and metrics.metric_info("top1").needs_labels
    assert metrics.metric_info("fid_effl0").needs_classifier and metrics.metric_info("fid_effl0").level == "dataset"
    with pytest.raises(dataclasses.FrozenInstanceError):
        metrics.metric_info("psnr").name = "x"


@pytest.mark.parametrize("name", ["psnr", "ssim", "ssim_scgan", "cci", "cf_abs", "delta_e00", "auc_ab"])
def test_streaming_equals_functional(photo_pairs, name):
    gts = torch.cat([nchw(g) for _, g, _ in photo_pairs[4:9]])
    preds = torch.cat([nchw(p) for _, _, p in photo_pairs[4:9]])
    info = metrics.metric_info(name)
    fn = getattr(MF, name)
    expected = (fn(preds, gts) if info.paired else fn(preds)).numpy()
    m = metrics.create_metric(name)
    for chunk in ((0, 2), (2, 3), (3, 5)):
        m.update(preds[slice(*chunk)], gts[slice(*chunk)])
    np.testing.assert_allclose(m.values(), expected, rtol=0, atol=1e-12)
    assert m.compute() == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert len(m) == 5
    m.reset()
    assert len(m) == 0 and m.values().size == 0


def test_values_in_update_order_with_numpy_and_uint8_inputs():
    rng = np.random.default_rng(9)
    a = rng.integers(0, 256, (3, 3, 12, 12), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 3, 12, 12), dtype=np.uint8)
    m = metrics.create_metric("psnr")
    m.update(a[2:], b[2:])
    m.update(a[:2], b[:2])
    expected = [ref_psnr(b[i].transpose(1, 2, 0), a[i].transpose(1, 2, 0)) for i in (2, 0, 1)]
    np.testing.assert_allclose(m.values(), expected, atol=1e-9)


def test_lab_distortion_helpers_consistent():
    """The hue-rotation distortion really rotates hue: our Lab round trip agrees with skimage's on it."""
    img = skimage.data.rocket()[:64, :64]
    lab = rgb_to_lab(nchw(img).double() / 255)
    assert torch.allclose(lab_to_rgb(lab), nchw(img).double() / 255, atol=1e-9)
    assert float(MF.delta_e00(nchw(distort(img, "hue")), nchw(img))[0]) > 5.0


# ---------------------------------------------------------------------------------------------------- shared photos
def test_calibration_on_shared_imagenet_photos(shared_data):
    from PIL import Image

    folder = shared_data / "imagenet-val-sample"
    files = sorted(folder.glob("*.JPEG"))[:3]
    if not files:
        pytest.skip(f"no JPEG files in {folder}")
    for path in files:
        gt = np.asarray(Image.open(path).convert("RGB"))
        for kind in ("noise", "desaturate"):
            pred = distort(gt, kind, seed=1)
            p, t = nchw(pred), nchw(gt)
            assert abs(float(MF.psnr(p, t)[0]) - ref_psnr(gt, pred)) <= 1e-6, path.name
            assert abs(float(MF.ssim(p, t)[0]) - ref_ssim(gt, pred)) <= 1e-5, path.name
            assert abs(float(MF.ssim_scgan(p, t)[0]) - ref_ssim_scgan(gt / 255.0, pred / 255.0)) <= 1e-5
            assert float(MF.cci(p)[0]) == pytest.approx(ref_colourfulness(pred), rel=1e-9)
            assert abs(float(MF.delta_e00(p, t)[0]) - ref_delta_e00(gt, pred)) <= 1e-6, path.name


def test_thread_count_restored_and_results_independent_of_workers():
    rng = np.random.default_rng(11)
    a = torch.from_numpy(rng.integers(0, 256, (5, 3, 24, 24), dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, (5, 3, 24, 24), dtype=np.uint8))
    before = torch.get_num_threads()
    results = [MF.ssim(a, b, workers=w) for w in (1, 2, 3)]
    assert all(torch.equal(results[0], r) for r in results[1:])
    MF.psnr(a, b), MF.cci(a), MF.delta_e00(a, b)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        MF.psnr(a, b[:, :, :5])
    assert torch.get_num_threads() == before


def test_colourfulness_float_path_for_large_images(monkeypatch):
    """Images above the exact-integer size limit use the float64 two-pass formula: same values at 1e-9."""
    import metrics.image

    img = skimage.data.coffee()[:64, :96]
    exact = (MF.cci(nchw(img)), MF.cf_abs(nchw(img)))
    monkeypatch.setattr(metrics.image, "EXACT_COLOURFULNESS_MAX_PIXELS", 100)
    for ours, ref in zip((MF.cci(nchw(img)), MF.cf_abs(nchw(img))), exact):
        assert float(ours[0]) == pytest.approx(float(ref[0]), rel=1e-12)
    assert float(MF.cci(nchw(img))[0]) == pytest.approx(ref_colourfulness(img), rel=1e-9)


def test_row_bands_give_the_same_values(monkeypatch, photo_pairs):
    """Large photos are processed in row bands (bounded memory): forcing tiny bands changes nothing beyond rounding."""
    import metrics.image

    _, gt, pred = photo_pairs[1]  # astronaut 256x256, noise
    p, t = nchw(pred), nchw(gt)
    names = ("ssim", "ssim_scgan", "delta_e00", "auc_ab")
    whole = {name: float(getattr(MF, name)(p, t)[0]) for name in names}
    monkeypatch.setattr(metrics.image, "BAND_PIXELS", 256 * 23)  # bands of 13 output rows for SSIM, 23 for Lab
    assert len(metrics.image._row_bands(256, 256, 10)) > 10
    for name in names:
        assert float(getattr(MF, name)(p, t)[0]) == pytest.approx(whole[name], abs=1e-12), name
    assert abs(whole["ssim"] - ref_ssim(gt, pred)) <= 1e-5


def test_psnr_mse_is_exact_for_large_error_sums():
    """The 8-bit MSE sums squares exactly (a float32 accumulation would be off by ~1e-7 relative here)."""
    rng = np.random.default_rng(12)
    gt = rng.integers(0, 256, (2, 3, 300, 400), dtype=np.uint8)
    pred = (255 - gt).astype(np.uint8)
    pred[1, :, ::3] = gt[1, :, ::3]
    squares = (pred.astype(np.int64) - gt.astype(np.int64)) ** 2
    exact_mse = squares.reshape(2, -1).sum(axis=1) / float(squares[0].size)  # integer sums: exact
    expected = 10 * np.log10(255.0**2 / exact_mse)
    np.testing.assert_allclose(MF.psnr(torch.from_numpy(pred), torch.from_numpy(gt)).numpy(), expected, rtol=0,
                               atol=1e-12)
    assert abs(float(MF.psnr(torch.from_numpy(pred[:1]), torch.from_numpy(gt[:1]))[0]) -
               ref_psnr(gt[0].transpose(1, 2, 0), pred[0].transpose(1, 2, 0))) <= 1e-12


def test_ssim_workspaces_are_reused_and_bounded(monkeypatch):
    import metrics.image

    monkeypatch.setattr(metrics.image, "_FREE_WORKSPACES", [])
    rng = np.random.default_rng(13)
    a, b, c, d = (torch.from_numpy(rng.integers(0, 256, (1, 3, 20, 24), dtype=np.uint8)) for _ in range(4))
    first = MF.ssim(a, b)
    (workspace,) = metrics.image._FREE_WORKSPACES
    MF.ssim(c, d)  # the same buffers, now holding another image's maps
    assert metrics.image._FREE_WORKSPACES == [workspace]
    assert torch.equal(MF.ssim(a, b), first)
    assert abs(float(first[0]) - ref_ssim(b[0].permute(1, 2, 0).numpy(), a[0].permute(1, 2, 0).numpy())) <= 1e-5
    # A new size evicts the oldest free workspace once the byte budget is exceeded.
    monkeypatch.setattr(metrics.image, "MAX_FREE_WORKSPACE_BYTES", workspace.nbytes)
    MF.ssim(a[:, :, :15], b[:, :, :15])
    (kept,) = metrics.image._FREE_WORKSPACES
    assert kept is not workspace and kept.key[2:4] == (15, 24)


def test_metric_calls_leave_the_thread_setting_alone(monkeypatch):
    """Metric calls never change torch's thread count (a process-wide setting the command chooses once): the kernels
    run with the caller's setting, and another thread keeps its own."""
    import threading

    import metrics.image

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = {}
    initialised, probe, probed = threading.Event(), threading.Event(), threading.Event()

    def other_thread():
        torch.get_num_threads()  # torch reads the process setting once per thread, here
        initialised.set()
        probe.wait(10)
        seen["other"] = torch.get_num_threads()
        probed.set()

    real_mse = metrics.image._mse_8bit

    def probing_mse(*args):
        seen["caller"] = torch.get_num_threads()
        probe.set()
        probed.wait(10)
        return real_mse(*args)

    monkeypatch.setattr(metrics.image, "_mse_8bit", probing_mse)
    thread = threading.Thread(target=other_thread)
    try:
        thread.start()
        initialised.wait(10)
        MF.psnr(torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8))
        thread.join(10)
        assert seen == {"caller": 2, "other": 2}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
