"""Saliency ground truth: the spectral-residual detector, ONNX SOD models, the `scgan saliency` command."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from scgan.cli import main
from scgan.data import list_images
from scgan.errors import InputError
from scgan.saliency import CONTACT_SHEET_NAME, load_map, map_name
from scgan.saliency_detectors import OnnxSaliencyDetector, spectral_residual_saliency


def _square_on_texture(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A mid-gray image with faint noise and one bright 16 px square; returns (uint8 RGB, bool mask of the square)."""
    rng = np.random.default_rng(seed)
    img = np.clip(120 + rng.normal(0, 3, (size, size)), 0, 255)
    mask = np.zeros((size, size), bool)
    mask[40:56, 20:36] = True
    img[mask] = 230
    return np.repeat(img[..., None], 3, axis=2).astype(np.uint8), mask


def test_spectral_residual_range_shape_and_focus():
    img, mask = _square_on_texture()
    sal = spectral_residual_saliency(img)
    assert sal.shape == img.shape[:2] and sal.dtype == np.float32
    assert sal.min() >= 0.0 and sal.max() <= 1.0 and sal.max() == pytest.approx(1.0, abs=0.02)
    # The odd-one-out square is what the spectral residual highlights.
    assert sal[mask].mean() > 3 * sal[~mask].mean()


def test_spectral_residual_constant_image_is_zero_and_non_square_ok():
    assert spectral_residual_saliency(np.full((30, 47, 3), 90, np.uint8)).max() == 0.0
    sal = spectral_residual_saliency(np.random.default_rng(1).integers(0, 255, (50, 130, 3), dtype=np.uint8))
    assert sal.shape == (50, 130) and np.isfinite(sal).all()


def test_spectral_residual_rejects_bad_input():
    with pytest.raises(InputError, match="uint8 RGB"):
        spectral_residual_saliency(np.zeros((10, 10), np.float32))


def test_map_name_keeps_relative_path():
    assert map_name("sub/dir/a.jpg") == "sub/dir/a.png"
    assert map_name("b.png") == "b.png"


def _tiny_onnx(path, out_channels: int, squash: bool):
    """An ONNX model 1x3xHxW -> 1xCxHxW: mean over channels (+ sigmoid when ``squash``), tiled to C channels."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=1, axes=[1])]
    last = "mean"
    if squash:
        nodes.append(helper.make_node("Sigmoid", ["mean"], ["sig"]))
        last = "sig"
    repeats = helper.make_tensor("repeats", TensorProto.INT64, [4], [1, out_channels, 1, 1])
    nodes.append(helper.make_node("Tile", [last, "repeats"], ["out"]))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, out_channels, "h", "w"])],
        initializer=[repeats],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_onnx_detector_any_one_channel_model(tmp_path):
    detector = OnnxSaliencyDetector(_tiny_onnx(tmp_path / "ok.onnx", 1, squash=True))
    assert detector.input_size == (320, 320)  # dynamic spatial size: U^2-Net's 320
    img, _ = _square_on_texture(64)
    sal = detector(img)
    assert sal.shape == (64, 64) and 0 <= sal.min() <= sal.max() <= 1
    # sigmoid(mean of the normalised input) is larger on the bright square
    assert sal[45, 25] > sal[5, 5]


@pytest.mark.parametrize(
    ("channels", "squash", "message"), [(3, True, "one channel"), (1, False, r"in \[0, 1\]")]
)
def test_onnx_detector_rejects_wrong_outputs(tmp_path, channels, squash, message):
    detector = OnnxSaliencyDetector(_tiny_onnx(tmp_path / "bad.onnx", channels, squash))
    img, _ = _square_on_texture(64)
    with pytest.raises(InputError, match=message):
        detector(img)


def test_onnx_detector_missing_and_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OnnxSaliencyDetector(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(InputError, match="bad.onnx"):
        OnnxSaliencyDetector(bad)


def test_saliency_command_spectral_resumable_with_contact_sheet(tmp_path, capsys):
    out = tmp_path / "sal"
    assert main(["saliency", "--data", "samples", "--out", str(out), "--method", "spectral", "--quiet"]) == 0
    names = [e.name for e in list_images("samples")]
    for name in names:
        with Image.open(out / map_name(name)) as im:
            assert im.mode == "L" and im.size == (256, 256)
            values = np.asarray(im)
        assert values.dtype == np.uint8 and values.max() > values.min()
    with Image.open(out / CONTACT_SHEET_NAME) as sheet:
        sheet.verify()
    assert "6 written, 0 kept" in capsys.readouterr().out

    # Resumable: an existing map is kept (its content untouched) unless --overwrite.
    sentinel = out / map_name(names[0])
    Image.fromarray(np.full((256, 256), 7, np.uint8), mode="L").save(sentinel)
    assert main(["saliency", "--data", "samples", "--out", str(out), "--quiet"]) == 0
    assert "0 written, 6 kept" in capsys.readouterr().out
    assert load_map(sentinel).max() == pytest.approx(7 / 255)
    assert main(["saliency", "--data", "samples", "--out", str(out), "--overwrite", "--quiet", "--size", "64"]) == 0
    assert "6 written" in capsys.readouterr().out
    with Image.open(sentinel) as im:
        assert im.size == (64, 64) and np.asarray(im).max() > 7


def test_saliency_command_u2netp_two_images(tmp_path, u2netp_path, capsys):
    data = tmp_path / "photos"
    (data / "sub").mkdir(parents=True)
    samples = {e.name: e.path for e in list_images("samples")}
    shutil.copy(samples["astronaut.png"], data / "astronaut.png")
    shutil.copy(samples["coffee.png"], data / "sub" / "coffee.png")
    out = tmp_path / "sal"
    sheet = tmp_path / "sheet.png"
    args = ["saliency", "--data", str(data), "--out", str(out), "--model", str(u2netp_path), "--quiet",
            "--contact-sheet", str(sheet)]  # fmt: skip
    assert main(args) == 0
    astronaut = load_map(out / "astronaut.png")
    coffee = load_map(out / "sub" / "coffee.png")
    assert astronaut.shape == coffee.shape == (256, 256)
    # U^2-Net-p segments the astronaut (left-centre) far more than the top-right corner (the flag/shuttle side).
    assert astronaut[96:224, 64:160].mean() > 0.5 and coffee.max() > 0.9
    with Image.open(sheet) as im:
        im.verify()
    assert "2 written" in capsys.readouterr().out


def test_saliency_command_model_and_method_exclusive(tmp_path):
    with pytest.raises(SystemExit):
        main(["saliency", "--data", "samples", "--out", str(tmp_path), "--model", "x.onnx", "--method", "spectral"])


def test_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    # regression: --out naming an existing file ended in a FileExistsError traceback
    (tmp_path / "afile").write_text("x")
    args = ["saliency", "--data", "samples", "--method", "spectral", "--out", str(tmp_path / "afile"), "--quiet"]
    assert main(args) == 2
    assert "afile: exists and is not a folder" in capsys.readouterr().err
