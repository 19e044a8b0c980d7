"""metrics.color against scikit-image on real photos and random values; dtype, gradients, ONNX export."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch

from metrics.color import gray_to_rgb, lab_to_rgb, rgb_to_gray, rgb_to_lab

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")


def to_nchw(hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))[None]


def to_hwc(nchw: torch.Tensor) -> np.ndarray:
    return nchw[0].permute(1, 2, 0).detach().numpy()


@pytest.mark.parametrize("name", SAMPLES)
def test_rgb_to_lab_matches_skimage_on_photos(name):
    img = getattr(skimage.data, name)()
    ours = to_hwc(rgb_to_lab(to_nchw(img).double() / 255.0))
    ref = skimage.color.rgb2lab(img)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", SAMPLES)
def test_lab_to_rgb_matches_skimage_on_photos(name):
    lab = skimage.color.rgb2lab(getattr(skimage.data, name)())
    ours = to_hwc(lab_to_rgb(to_nchw(lab)))
    np.testing.assert_allclose(ours, skimage.color.lab2rgb(lab), rtol=0, atol=1e-12)


def test_rgb_lab_random_values_and_edges():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (40, 50, 3))
    # The linear segments and their thresholds, black, white and the primaries.
    rgb[0, :6] = [[0, 0, 0], [1, 1, 1], [0.04045, 0.04, 0.0405], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    ours = to_hwc(rgb_to_lab(to_nchw(rgb)))
    np.testing.assert_allclose(ours, skimage.color.rgb2lab(rgb), rtol=0, atol=1e-10)


def test_lab_to_rgb_out_of_gamut_clips_like_skimage():
    rng = np.random.default_rng(1)
    lab = np.stack(
        [rng.uniform(-10, 110, (30, 30)), rng.uniform(-140, 140, (30, 30)), rng.uniform(-140, 140, (30, 30))], axis=-1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about negative Z values it clips
        ref = skimage.color.lab2rgb(lab)
    ours = to_hwc(lab_to_rgb(to_nchw(lab)))
    assert ours.min() >= 0.0 and ours.max() <= 1.0
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_float32_keeps_dtype_and_stays_close():
    img = skimage.data.coffee()
    x = to_nchw(img).float() / 255.0
    lab = rgb_to_lab(x)
    assert lab.dtype == torch.float32 and lab.shape == x.shape
    np.testing.assert_allclose(to_hwc(lab), skimage.color.rgb2lab(img), atol=2e-3)
    back = lab_to_rgb(lab)
    assert back.dtype == torch.float32
    assert (back - x).abs().max() < 1e-4


def test_batched_equals_per_image():
    imgs = torch.stack([to_nchw(getattr(skimage.data, n)()[:64, :80])[0] for n in SAMPLES]).double() / 255
    batched = rgb_to_lab(imgs)
    for i in range(len(SAMPLES)):
        assert torch.equal(batched[i : i + 1], rgb_to_lab(imgs[i : i + 1]))


def test_gray_bt601_and_back():
    img = skimage.data.astronaut()
    x = to_nchw(img).double() / 255
    gray = rgb_to_gray(x)
    assert gray.shape == (1, 1, *img.shape[:2])
    expected = (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]) / 255
    np.testing.assert_allclose(gray[0, 0].numpy(), expected, atol=1e-12)
    # skimage.color.rgb2gray is BT.709; OpenCV's RGB2GRAY is BT.601: check we are not the former.
    assert np.abs(gray[0, 0].numpy() - skimage.color.rgb2gray(img)).max() > 1e-2
    rgb = gray_to_rgb(gray)
    assert rgb.shape == x.shape and torch.equal(rgb[:, 0], rgb[:, 2])


def test_lab_roundtrip_and_gray_have_zero_chroma():
    gray = torch.linspace(0, 1, 50, dtype=torch.float64).view(1, 1, 5, 10)
    lab = rgb_to_lab(gray_to_rgb(gray))
    # Neutral grays have a, b ~ 0 (not exactly: the rounded sRGB matrix rows do not sum to the D65 white exactly,
    # in scikit-image either).
    assert lab[:, 1:].abs().max() < 1e-2
    ref = skimage.color.rgb2lab(gray_to_rgb(gray)[0].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(to_hwc(lab), ref, atol=1e-10)
    assert torch.allclose(lab_to_rgb(lab), gray_to_rgb(gray), atol=1e-9)


def test_gradients_are_finite_everywhere_including_thresholds():
    values = torch.tensor([0.0, 0.003, 0.04045, 0.5, 1.0], dtype=torch.float64)
    x = values.view(1, 1, 1, 5).expand(1, 3, 1, 5).clone().requires_grad_(True)
    rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    lab = torch.tensor([[0.0, 0.0, 0.0], [50.0, 20.0, -30.0], [100.0, 0.0, 0.0]], dtype=torch.float64)
    lab = lab.t().reshape(1, 3, 1, 3).clone().requires_grad_(True)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_gradcheck_rgb_to_lab_and_back():
    torch.manual_seed(0)
    x = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))
    lab = rgb_to_lab(x.detach()).requires_grad_(True)
    assert torch.autograd.gradcheck(lab_to_rgb, (lab,))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        rgb_to_lab(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="got \\(1, 4, 8, 8\\)"):
        rgb_to_lab(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        rgb_to_lab(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        gray_to_rgb(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_export_of_lab_round_trip(tmp_path, dynamo):
    """Both exporters; the dynamo one with dynamic batch and spatial sizes, run at another size than traced."""
    onnxruntime = pytest.importorskip("onnxruntime")

    class LabRoundTrip(torch.nn.Module):
        def forward(self, rgb):
            lab = rgb_to_lab(rgb)
            return lab_to_rgb(lab * torch.tensor([1.0, 0.5, 0.5]).view(1, 3, 1, 1)), rgb_to_gray(rgb)

    x = torch.rand(2, 3, 16, 16)
    path = tmp_path / "lab.onnx"
    extra = {"dynamic_shapes": {"rgb": {0: "n", 2: "h", 3: "w"}}} if dynamo else {"opset_version": 17}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LabRoundTrip(), (x,), str(path), input_names=["rgb"], output_names=["out", "gray"],
                          dynamo=dynamo, **extra)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = torch.rand(3, 3, 20, 24) if dynamo else x
    out, gray = session.run(None, {"rgb": y.numpy()})
    expected, expected_gray = LabRoundTrip()(y)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(gray, expected_gray.numpy(), atol=1e-6)
