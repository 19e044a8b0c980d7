"""``load_method`` for every kind of spec, the anchors through the whole metric path, the registry, and the
``scgan baselines`` / ``scgan export`` commands."""

from __future__ import annotations

import json
import math

import pytest
import torch

import baselines
from baselines.contract import validate_colorizer
from baselines.export import export_baseline
from baselines.registry import get_architecture, list_methods
from scgan.cli import main as scgan_main


def photos(n=2, size=40, seed=0):
    """Smooth colourful RGB images (n, 3, size, size) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 5, 5, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_anchors_through_the_metrics():
    from metrics import functional

    images = photos(3, 48)
    gt = baselines.load_method("gt")
    pred = gt.colorize(images, raw=False)
    assert (gt.name, gt.input_size, gt.sha256) == ("gt", None, None)
    assert all(math.isinf(v) for v in functional.psnr(pred, images).tolist())
    torch.testing.assert_close(functional.ssim(pred, images), torch.ones(3, dtype=torch.float64))
    gray = baselines.load_method("gray")
    pred = gray.colorize(images, raw=True)
    assert pred.shape == images.shape
    torch.testing.assert_close(functional.cci(pred), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    expected_y = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    torch.testing.assert_close(pred[:, 1], expected_y)
    with pytest.raises(ValueError, match=r"gray: expected RGB images \(N, 3, H, W\)"):
        gray.colorize(torch.rand(1, 1, 8, 8), raw=False)


def test_tint_anchor_is_the_gray_with_one_constant_chroma():
    from baselines.anchors import TRAINING_MEAN_CHROMA
    from metrics.color import rgb_to_lab

    images = photos(2, 24) * 0.6 + 0.2  # mid tones: no channel clipped by the tint
    tint = baselines.load_method("tint")
    assert (tint.name, tint.input_size, tint.sha256, tint.chroma) == ("tint", None, None, TRAINING_MEAN_CHROMA)
    out = tint.colorize(images)
    gray = baselines.load_method("gray").colorize(images)
    lab, gray_lab = rgb_to_lab(out.double()), rgb_to_lab(gray.double())
    torch.testing.assert_close(lab[:, 0], gray_lab[:, 0], atol=1e-3, rtol=0)
    for channel, value in zip((1, 2), TRAINING_MEAN_CHROMA):
        torch.testing.assert_close(lab[:, channel], torch.full_like(lab[:, channel], value), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="tint: chroma must be two finite"):
        baselines.anchors.TintAnchor((float("nan"), 0.0))


def test_mean_training_chroma_of_a_folder(tmp_path):
    from PIL import Image

    from baselines.anchors import mean_training_chroma
    from metrics.color import rgb_to_lab
    from scgan.data import load_image, resize_image, to_tensor
    from scgan.errors import InputError

    colours = [(200, 40, 40), (30, 160, 60), (20, 60, 220)]
    for i, colour in enumerate(colours):
        Image.new("RGB", (48, 32), colour).save(tmp_path / f"c{i}.png")
    Image.new("RGB", (48, 32), (90, 90, 90)).save(tmp_path / "gray.png")  # left out, as the trainer leaves it out
    a, b, count = mean_training_chroma([tmp_path])
    expected = torch.stack([rgb_to_lab(to_tensor(resize_image(load_image(tmp_path / f"c{i}.png"), "squash256"))
                                       [None].double())[0, 1:].mean(dim=(1, 2)) for i in range(3)]).mean(0)
    assert count == 3 and (a, b) == pytest.approx(expected.tolist(), abs=1e-9)
    assert (a, b) != pytest.approx((0.0, 0.0), abs=1.0)
    (tmp_path / "only-gray").mkdir()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(tmp_path / "only-gray" / "g.png")
    with pytest.raises(InputError, match="no colour photo to average"):
        mean_training_chroma([tmp_path / "only-gray"])


def test_onnx_spec_runs_the_shared_colorize_pipeline(tmp_path):
    path = tmp_path / "p2p.onnx"
    export_baseline("pix2pix-sal", out_path=path, input_size=32, num_downs=5, ngf=8)
    method = baselines.load_method(f"onnx:{path}")
    assert method.name == "pix2pix-sal" and method.input_size == 32 and len(method.sha256) == 64
    images = photos(2, 40)
    raw = method.colorize(images, raw=True)
    recombined = method.colorize(images, raw=False)
    assert raw.shape == recombined.shape == (2, 3, 40, 40)
    # The shared pipeline does the resizing and the recombination (docs/baselines.md).
    from scgan.colorize import colorize

    torch.testing.assert_close(recombined, colorize(method, images, raw=False))
    assert not torch.allclose(raw, recombined)
    from scgan.colorize import colorize_with_saliency

    _, saliency = colorize_with_saliency(method, images)
    assert saliency is not None and saliency[0].shape == (1, 40, 40)


@pytest.fixture
def small_pix2pix(monkeypatch):
    """The registry's pix2pix entry at 32 px with 5 levels and ngf 8 (same structure, fast to export)."""
    import dataclasses

    import baselines.registry as registry

    real = registry._architectures

    def small():
        archs = real()
        arch = archs["pix2pix"]
        archs["pix2pix"] = dataclasses.replace(arch, build=lambda: arch.build(num_downs=5, ngf=8), input_size=32)
        return archs

    monkeypatch.setattr(registry, "_architectures", small)


def test_named_architecture_without_weights_is_labelled_random(cache, small_pix2pix):
    method = baselines.load_method("pix2pix")
    assert method.name == "pix2pix[random-init]" and method.sha256 is None and method.input_size == 32
    files = list((cache / "onnx").glob("pix2pix-*.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = baselines.load_method("pix2pix")
    assert again.name == method.name and files[0].stat().st_mtime_ns == stamp  # served from the cache
    out = method.colorize(photos(1, 24), raw=False)
    assert out.shape == (1, 3, 24, 24)
    assert "random initialisation" in validate_colorizer(files[0]).source


def test_named_architecture_with_weights(cache, small_pix2pix, tmp_path):
    import hashlib

    from baselines.archs import pix2pix

    weights = tmp_path / "latest_net_G.pth"
    torch.save(pix2pix.build(num_downs=5, ngf=8).state_dict(), weights)
    method = baselines.load_method(f"pix2pix:{weights}")
    assert method.name == "pix2pix"
    assert method.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(method.model_sha256) == 64 and method.model_sha256 != method.sha256
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        baselines.load_method(f"pix2pix:{tmp_path / 'missing.pth'}")


def test_unknown_specs_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'nope'.*zhang-eccv16"):
        baselines.load_method("nope")
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        baselines.load_method(f"onnx:{tmp_path / 'absent.onnx'}")
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        baselines.load_method(f"scgan:{tmp_path / 'absent.pt'}")
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        baselines.load_method("scgan")


def test_scgan_checkpoint_spec(cache, tmp_path):
    import scgan
    from scgan.checkpoint import save_checkpoint

    preset = list(scgan.PRESETS)[-1]  # the smallest preset
    generator = scgan.build_generator(preset)
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"config": scgan.PRESETS[preset].to_dict(), "generator": generator.state_dict()})
    method = baselines.load_method(f"scgan:{checkpoint}")
    assert method.name == "scgan" and method.input_size == scgan.PRESETS[preset].image_size
    assert len(method.sha256) == 64
    out = method.colorize(photos(1, 20), raw=True)
    assert out.shape == (1, 3, 20, 20)


def test_registry_rows():
    rows = {r.name: r for r in list_methods()}
    expected = ["gt", "gray", "tint", "zhang-eccv16", "zhang-siggraph17", "iizuka", "pix2pix", "pix2pix-sal",
                "uresnet-sal"]
    assert list(rows)[: len(expected)] == expected and "scgan" in rows
    assert rows["tint"].kind == "reference"  # not among the leaderboard's default "anchor" methods
    assert rows["zhang-eccv16"].weights == "loaded" and rows["iizuka"].weights == "trained here"
    assert rows["gt"].weights == "none" and rows["zhang-eccv16"].input_size == 256 and rows["iizuka"].input_size == 224
    assert all(r.paper for r in rows.values())
    with pytest.raises(ValueError, match="unknown baseline 'x'"):
        get_architecture("x")


def test_baselines_command(capsys):
    assert scgan_main(["baselines"]) == 0
    table = capsys.readouterr().out
    for name in ["gt", "gray", "zhang-eccv16", "zhang-siggraph17", "iizuka", "pix2pix", "pix2pix-sal", "uresnet-sal"]:
        assert f"\n{name} " in table
    assert "trained here" in table and "loaded" in table
    assert scgan_main(["baselines", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"gt", "scgan", "uresnet-sal"}


def test_export_command_baseline(tmp_path, capsys):
    out = tmp_path / "u.onnx"
    args = ["export", "--baseline", "uresnet-sal", "--input-size", "32", "--option", "widths=(8, 8, 16, 16)"]
    assert scgan_main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "randomly initialised" in printed and "max abs difference" in printed
    info = validate_colorizer(out)
    assert info.name == "uresnet-sal" and info.input_size == 32 and "random initialisation" in info.source


def test_option_parsing_and_the_eccv16_temperature_option():
    import argparse

    from baselines.commands._options import parse_option
    from baselines.export import build_baseline

    assert parse_option("temperature=0.38") == ("temperature", 0.38)
    assert parse_option("widths=(8, 16)") == ("widths", (8, 16))
    assert parse_option("name=abc") == ("name", "abc")
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
        parse_option("temperature")
    module, source, sha = build_baseline("zhang-eccv16", temperature=0.5)
    assert module.net.annealing_temperature == 0.5 and sha is None and "random initialisation" in source


def test_export_command_errors(tmp_path, capsys):
    assert scgan_main(["export", "--baseline", "nope", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "unknown baseline 'nope'" in capsys.readouterr().err
    assert scgan_main(["export", "--baseline", "pix2pix", "--out", str(tmp_path / "x.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert scgan_main(["export", "--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "none.pt" in capsys.readouterr().err
    missing = tmp_path / "none.pth"
    args = ["export", "--baseline", "pix2pix", "--weights", str(missing), "--out", str(tmp_path / "x.onnx")]
    assert scgan_main(args) == 2
    assert "none.pth" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_unknown_build_option_is_a_clear_error(tmp_path, capsys):
    # regression: `--option KEY=VALUE` with a KEY the architecture does not take raised a TypeError traceback
    args = ["export", "--baseline", "pix2pix", "--option", "bogus=3", "--out", str(tmp_path / "x.onnx")]
    assert scgan_main(args) == 2
    assert "--option bogus: not a build option of pix2pix; it takes num_downs, ngf" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.onnx*"))
    args = ["train-baseline", "pix2pix", "--data", "samples", "--option", "bogus=3", "--out", str(tmp_path / "b.pt"),
            "--quiet"]
    assert scgan_main(args) == 2
    assert "--option bogus: not a build option of pix2pix" in capsys.readouterr().err
    assert not list(tmp_path.glob("b.pt*"))


def test_train_baseline_out_that_is_a_file_is_refused(tmp_path, capsys):
    # --out is the run folder of the shared trainer (it was a checkpoint file for the retired in-memory loop)
    (tmp_path / "afile").write_text("x")
    args = ["train-baseline", "pix2pix", "--data", "samples", "--out", str(tmp_path / "afile"), "--quiet"]
    assert scgan_main(args) == 2
    assert "afile: exists and is not a folder (the run folder)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("flag", ["--batch-size", "--stage2-epochs"])
def test_train_baseline_rejects_non_positive_sizes(flag, tmp_path, capsys):
    args = ["train-baseline", "pix2pix", "--data", "samples", flag, "0", "--out", str(tmp_path / "run"), "--quiet"]
    assert scgan_main(args) == 2
    assert "must be" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_export_command_non_weights_file_is_one_line_error(tmp_path, capsys):
    # regression: a file that is not a PyTorch file given as --weights raised an UnpicklingError traceback
    # (build_baseline read the build options before the weights loader could report the file)
    junk = tmp_path / "rows.csv"
    junk.write_text("file,label\na.png,1\n")
    args = ["export", "--baseline", "pix2pix", "--weights", str(junk), "--out", str(tmp_path / "x.onnx")]
    assert scgan_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rows.csv" in err and "cannot be read as a PyTorch weights file" in err
    assert not list(tmp_path.glob("x.onnx*"))


@pytest.mark.slow
def test_export_command_scgan_preset(tmp_path, capsys):
    import scgan

    preset = list(scgan.PRESETS)[-1]
    out = tmp_path / "s.onnx"
    assert scgan_main(["export", "--preset", preset, "--out", str(out)]) == 0
    assert "max abs difference" in capsys.readouterr().out
    assert validate_colorizer(out).input_size == scgan.PRESETS[preset].image_size


def _write_photos(folder, n=4, size=40):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(photos(n, size, seed=3)):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        Image.fromarray(array).save(folder / f"img{i}.png")
    return folder


def test_train_baseline_command_then_export_and_load(tmp_path, capsys, cache):
    data = _write_photos(tmp_path / "photos")
    run = tmp_path / "p2p"
    args = ["train-baseline", "pix2pix", "--data", str(data), "--out", str(run), "--preset", "scgan-tiny"]
    args += ["--option", "num_downs=5", "--option", "ngf=8", "--batch-size", "2", "--stage2-epochs", "2", "--quiet"]
    assert scgan_main(args) == 0
    checkpoint = run / "checkpoint.pt"
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["generator_spec"] == {"kind": "baseline", "name": "pix2pix", "options": {"num_downs": 5, "ngf": 8}}
    assert saved["step"] == 4 and saved["networks"] == ["generator", "discriminator"]
    out = tmp_path / "p2p.onnx"
    assert scgan_main(["export", "--baseline", "pix2pix", "--weights", str(checkpoint), "--out", str(out)]) == 0
    info = validate_colorizer(out)
    assert info.input_size == 64 and "trained with scgan-bench" in info.source
    method = baselines.load_method(f"pix2pix:{checkpoint}")
    assert method.name == "pix2pix" and method.input_size == 64
    assert method.colorize(photos(1, 50), raw=False).shape == (1, 3, 50, 50)


def test_train_baseline_iizuka_with_labels(tmp_path):
    from baselines.train import recipe_config, train_baseline
    from scgan.errors import InputError

    data = _write_photos(tmp_path / "photos")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nimg0.png,1\nimg1.png,2\nimg2.png,1\nimg3.png,0\n")
    config = recipe_config("iizuka", data=str(data), out=str(tmp_path / "iz"), batch_size=2, stage2_epochs=1,
                           preset="scgan-tiny", labels=str(labels), sample_count=0)  # fmt: skip
    result = train_baseline("iizuka", config, {"global_size": 32, "num_classes": 3}, progress=False)
    assert result.step == 2 and all(math.isfinite(v) for v in result.last_losses.values())
    with pytest.raises(InputError, match="at least 2"):
        train_baseline("iizuka", recipe_config("iizuka", data=str(data), out=str(tmp_path / "x"), batch_size=1,
                                               preset="scgan-tiny"), {"global_size": 32, "num_classes": 3})
