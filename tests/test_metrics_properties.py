"""Property tests (hypothesis) of the image metrics on small random uint8 images."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics import functional as MF

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def image_pairs(draw, min_side=1, max_side=14):
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    n = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8)
    # A prediction near the target (sometimes identical pixels), as a colorizer would give.
    noise = rng.integers(-draw(st.integers(0, 60)), draw(st.integers(1, 61)), a.shape)
    b = np.clip(a.astype(np.int64) + noise, 0, 255).astype(np.uint8)
    return torch.from_numpy(b), torch.from_numpy(a)


@SETTINGS
@given(image_pairs())
def test_psnr_symmetric_and_matches_skimage(pair):
    pred, target = pair
    forward, backward = MF.psnr(pred, target), MF.psnr(target, pred)
    assert torch.equal(forward, backward)
    for i in range(pred.shape[0]):
        p, t = pred[i].permute(1, 2, 0).numpy(), target[i].permute(1, 2, 0).numpy()
        if np.array_equal(p, t):
            assert torch.isinf(forward[i])
        else:
            assert abs(float(forward[i]) - peak_signal_noise_ratio(t, p, data_range=255)) <= 1e-6


@SETTINGS
@given(image_pairs(min_side=11, max_side=16))
def test_ssim_symmetric_bounded_and_matches_skimage(pair):
    pred, target = pair
    ours = MF.ssim(pred, target)
    assert torch.allclose(ours, MF.ssim(target, pred), atol=1e-6)
    assert (ours <= 1.0 + 1e-6).all() and (ours >= -1.0 - 1e-6).all()
    p, t = pred[0].permute(1, 2, 0).numpy(), target[0].permute(1, 2, 0).numpy()
    ref = structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
                                channel_axis=-1)
    assert abs(float(ours[0]) - ref) <= 1e-5
    scgan = MF.ssim_scgan(pred, target)
    assert (scgan <= 1.0 + 1e-12).all()


@SETTINGS
@given(image_pairs())
def test_colourfulness_properties(pair):
    pred, _ = pair
    cci, cf = MF.cci(pred), MF.cf_abs(pred)
    assert (cci >= 0).all() and (cf >= 0).all()
    # Pixel order does not matter: flipping and transposing the image leaves both unchanged.
    assert torch.allclose(MF.cci(pred.flip(-1).transpose(-1, -2).contiguous()), cci, rtol=1e-12, atol=1e-12)
    # The float image that came from uint8 gives exactly the uint8 value (8-bit protocol).
    assert torch.equal(MF.cci(pred.float() / 255), cci)
    assert torch.equal(MF.cf_abs(pred.double() / 255), cf)


@SETTINGS
@given(image_pairs())
def test_lab_metrics_bounds(pair):
    pred, target = pair
    de = MF.delta_e00(pred, target)
    auc = MF.auc_ab(pred, target)
    assert (de >= 0).all() and (auc >= 0).all() and (auc <= 1).all()
    assert torch.equal(MF.delta_e00(target, target), torch.zeros_like(de))
    assert torch.equal(MF.auc_ab(pred, pred), torch.ones_like(auc))


@SETTINGS
@given(image_pairs(min_side=11, max_side=13), st.integers(1, 3), st.sampled_from(["psnr", "ssim", "cf_abs", "auc_ab"]))
def test_streaming_over_any_split_equals_functional(pair, split, name):
    import metrics

    pred, target = pair
    fn = getattr(MF, name)
    expected = (fn(pred) if name == "cf_abs" else fn(pred, target)).numpy()
    m = metrics.create_metric(name)
    for start in range(0, pred.shape[0], split):
        m.update(pred[start : start + split], target[start : start + split])
    np.testing.assert_array_equal(m.values(), expected)
