"""The shared colorize pipeline and `scgan colorize`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from metrics.color import gray_to_rgb, rgb_to_gray, rgb_to_lab
from scgan.checkpoint import save_checkpoint
from scgan.cli import main
from scgan.colorize import (
    Colorizer,
    ScganColorizer,
    colorize,
    colorize_images,
    colorize_with_saliency,
    resize_images,
)
from scgan.errors import InputError
from scgan.model import build_generator


class RecordingColorizer:
    """Stand-in model: returns a fixed mild tint of its gray input and records what it was given."""

    name = "tint"

    def __init__(self, input_size=64):
        self.input_size = input_size
        self.seen = []

    def colorize_at_size(self, gray01):
        self.seen.append(gray01.clone())
        tint = torch.tensor([0.06, 0.0, -0.06]).view(1, 3, 1, 1)
        return (gray01 * 0.8 + 0.1 + tint).clamp(0, 1)


class OracleColorizer:
    """Stand-in model that answers with a given RGB image at its size (the perfect colorizer)."""

    name = "oracle"

    def __init__(self, answer):
        self.answer = answer
        self.input_size = answer.shape[-1]

    def colorize_at_size(self, gray01):
        return self.answer.expand(gray01.shape[0], -1, -1, -1).clone()


def smooth_photo(height, width, seed=0):
    """A smooth colour image with moderate chroma (mostly inside the sRGB gamut after recombination)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 5, generator=g) * 0.6 + 0.2
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def test_stand_ins_follow_the_protocol():
    assert isinstance(RecordingColorizer(), Colorizer)


def test_model_sees_bt601_gray_at_its_size():
    images = smooth_photo(80, 120)
    model = RecordingColorizer(64)
    out = colorize(model, images)
    assert out.shape == (1, 3, 80, 120) and out.dtype == torch.float32
    expected = resize_images(rgb_to_gray(images), 64, 64)
    torch.testing.assert_close(model.seen[0], expected)


def test_raw_returns_the_network_rgb_resized_back():
    images = smooth_photo(64, 64)
    model = RecordingColorizer(64)
    raw = colorize(model, images, raw=True)
    torch.testing.assert_close(raw, model.colorize_at_size(rgb_to_gray(images)))  # same size: no resampling
    bigger = colorize(model, smooth_photo(96, 128), raw=True)
    assert bigger.shape == (1, 3, 96, 128)


def test_recombined_output_keeps_the_input_luminance():
    images = torch.cat([smooth_photo(120, 90, seed=s) for s in range(2)])
    answer = resize_images(images[:1], 64, 64)
    out = colorize(OracleColorizer(answer), images[:1])
    inside = ((out > 0.002) & (out < 0.998)).all(dim=1)  # pixels not clipped to the gamut
    assert inside.float().mean() > 0.9
    l_out = rgb_to_lab(out.double())[:, 0]
    l_in = rgb_to_lab(images[:1].double())[:, 0]
    assert (l_out - l_in)[inside].abs().max() < 0.05
    # the perfect colorizer's recombination gives back (nearly) the smooth input itself
    assert (out - images[:1]).abs().max() < 0.03
    # a different colorization changes the colour, not the luminance
    tinted = colorize(RecordingColorizer(64), images)
    inside = ((tinted > 0.002) & (tinted < 0.998)).all(dim=1)
    diff = (rgb_to_lab(tinted.double())[:, 0] - rgb_to_lab(images.double())[:, 0])[inside]
    assert diff.abs().max() < 0.05
    assert (tinted - images).abs().max() > 0.02


def test_recombination_matches_skimage_lab():
    # Independent oracle: skimage's rgb2lab / lab2rgb on the same pixels (same size, so no chroma resize involved).
    from skimage.color import lab2rgb, rgb2lab

    from scgan.colorize import recombine_lab

    images = smooth_photo(24, 20, seed=3)
    # random colours: about 15% of the recombined pixels fall out of gamut, so the clipping is compared too
    colours = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(4))
    out = recombine_lab(images, colours)
    lab_in = rgb2lab(images[0].permute(1, 2, 0).double().numpy())
    lab_colours = rgb2lab(colours[0].permute(1, 2, 0).double().numpy())
    expected = lab2rgb(np.concatenate([lab_in[..., :1], lab_colours[..., 1:]], axis=-1))
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-5)  # float32 vs float64


def test_gray_input_is_accepted():
    gray = rgb_to_gray(smooth_photo(70, 70))
    out = colorize(RecordingColorizer(64), gray)
    assert out.shape == (1, 3, 70, 70)
    inside = ((out > 0.002) & (out < 0.998)).all(dim=1)
    l_in = rgb_to_lab(gray_to_rgb(gray).double())[:, 0]
    assert (rgb_to_lab(out.double())[:, 0] - l_in)[inside].abs().max() < 0.05


def test_images_of_different_sizes():
    model = RecordingColorizer(64)
    outs = colorize_images(model, [smooth_photo(50, 70)[0], rgb_to_gray(smooth_photo(90, 64))[0]])
    assert [tuple(o.shape) for o in outs] == [(3, 50, 70), (3, 90, 64)]
    assert model.seen[0].shape == (2, 1, 64, 64)  # one batch for the model


def test_input_validation():
    model = RecordingColorizer(64)
    with pytest.raises(InputError, match=r"\(N, 1 or 3, H, W\).*\(1, 4, 8, 8\)"):
        colorize(model, torch.zeros(1, 4, 8, 8))
    with pytest.raises(InputError, match=r"in \[0, 1\], got \[255, 255\]"):
        colorize(model, torch.full((1, 3, 8, 8), 255.0))
    with pytest.raises(InputError, match="uint8"):
        colorize(model, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError, match="NaN|got \\[nan"):
        colorize(model, torch.full((1, 3, 8, 8), float("nan")))


def test_scgan_colorizer_wraps_a_generator():
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny")
    generator.train()
    generator(torch.rand(4, 1, 64, 64))
    colorizer = ScganColorizer(generator)
    assert colorizer.input_size == 64 and colorizer.name == "scgan-tiny" and not generator.training
    gray = torch.rand(2, 1, 64, 64)
    rgb, saliency = colorizer.predict(gray)
    assert rgb.shape == (2, 3, 64, 64) and saliency.shape == (2, 1, 64, 64)
    assert rgb.min() >= 0 and rgb.max() <= 1
    with torch.no_grad():
        expected = (generator(gray * 2 - 1)[0] + 1) / 2
    torch.testing.assert_close(rgb, expected)
    released = ScganColorizer(generator, bn_mode="train").colorize_at_size(gray)
    assert (released - rgb).abs().max() > 1e-3
    with pytest.raises(InputError, match="bn_mode"):
        ScganColorizer(generator, bn_mode="batch")
    with pytest.raises(InputError, match="runs at 64x64"):
        colorizer.predict(torch.rand(1, 1, 32, 32))
    outs, maps = colorize_with_saliency(colorizer, [torch.rand(3, 40, 50)])
    assert outs[0].shape == (3, 40, 50) and maps[0].shape == (1, 40, 50)


# ------------------------------------------------------------------------------------------------------------ CLI
@pytest.fixture()
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    generator = build_generator("scgan-tiny")
    generator.train()
    generator(torch.rand(4, 1, 64, 64))
    return save_checkpoint(tmp_path / "tiny.pt", {"config": generator.config, "generator": generator.state_dict()})


def _write_photo(path, height, width, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = (smooth_photo(height, width, seed)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(img).save(path)


def test_colorize_command_end_to_end(tmp_path, tiny_checkpoint, capsys):
    photos = tmp_path / "photos"
    _write_photo(photos / "a.jpg", 48, 80, 0)
    _write_photo(photos / "sub" / "b.png", 100, 64, 1)
    (photos / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"

    # strict by default: the unreadable file stops the run, naming it
    status = main(["colorize", str(photos), "--model", str(tiny_checkpoint), "--out", str(out), "--quiet"])
    assert status == 2
    assert "broken.jpg" in capsys.readouterr().err

    status = main([
        "colorize", str(photos), "--model", str(tiny_checkpoint), "--out", str(out), "--quiet", "--skip-bad",
        "--saliency", "--batch-size", "1",
    ])
    assert status == 0
    assert torch.is_grad_enabled()  # an in-process run leaves autograd as it found it
    assert "colorized 2 image(s)" in capsys.readouterr().out
    assert Image.open(out / "a.png").size == (80, 48)
    assert Image.open(out / "sub" / "b.png").size == (64, 100)
    saliency = Image.open(tmp_path / "out_saliency" / "sub" / "b.png")
    assert saliency.mode == "L" and saliency.size == (64, 100)
    report = json.loads((out / "colorize_report.json").read_text())
    assert report["outputs"] == ["a.png", "sub/b.png"] and report["mode"] == "lab-recombined"
    assert [b["file"] for b in report["bad"]] == [str(photos / "broken.jpg")]

    # the CLI writes what the library computes (up to PNG rounding)
    colorizer = ScganColorizer.from_checkpoint(tiny_checkpoint)
    from scgan.data import load_image, to_tensor

    expected = colorize(colorizer, to_tensor(load_image(photos / "a.jpg")).unsqueeze(0))[0]
    written = to_tensor(load_image(out / "a.png"))
    assert (written - expected).abs().max() <= 0.5 / 255 + 1e-6

    # a single file with --raw
    raw_out = tmp_path / "raw"
    status = main(["colorize", str(photos / "a.jpg"), "--model", str(tiny_checkpoint), "--out", str(raw_out),
                   "--raw", "--quiet", "--bn-mode", "train", "--batch-size", "1"])
    assert status == 0 and (raw_out / "a.png").is_file()
    report = json.loads((raw_out / "colorize_report.json").read_text())
    assert report["mode"] == "raw" and report["bn_mode"] == "train"
    released = ScganColorizer.from_checkpoint(tiny_checkpoint, bn_mode="train")
    expected = colorize(released, to_tensor(load_image(photos / "a.jpg")).unsqueeze(0), raw=True)[0]
    assert (to_tensor(load_image(raw_out / "a.png")) - expected).abs().max() <= 0.5 / 255 + 1e-6


def test_colorize_command_errors(tmp_path, tiny_checkpoint, capsys):
    photo = tmp_path / "a.png"
    _write_photo(photo, 32, 32, 0)
    out = str(tmp_path / "o")
    status = main(["colorize", str(tmp_path / "missing"), "--model", str(tiny_checkpoint), "--out", out])
    assert status == 2 and "missing" in capsys.readouterr().err
    status = main(["colorize", str(photo), "--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")])
    assert status == 2 and "none.pt" in capsys.readouterr().err
    status = main(["colorize", str(photo), "--model", str(tiny_checkpoint), "--out", str(tmp_path / "o"),
                   "--batch-size", "0"])
    assert status == 2 and "--batch-size" in capsys.readouterr().err
    other = tmp_path / "other"
    _write_photo(other / "a.jpg", 32, 32, 1)
    status = main(["colorize", str(photo), str(other), "--model", str(tiny_checkpoint), "--out", out])
    assert status == 2 and "same output a.png" in capsys.readouterr().err
    status = main(["colorize", str(photo), "--model", str(tiny_checkpoint), "--out", str(photo)])
    assert status == 2 and "exists and is not a folder" in capsys.readouterr().err
