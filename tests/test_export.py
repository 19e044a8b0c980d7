"""ONNX export: the colorizer contract (docs/baselines.md), checked against ONNX Runtime, written atomically."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from scgan.checkpoint import save_checkpoint
from scgan.colorize import ScganColorizer
from scgan.config import PRESETS
from scgan.errors import InputError
from scgan.export import ExportCheckError, export_generator
from scgan.model import build_generator


def _trained_like_generator(preset="scgan-tiny", seed=0):
    """A generator whose BN statistics and spectral-norm vectors moved away from their initial values."""
    torch.manual_seed(seed)
    generator = build_generator(preset)
    generator.train()
    for _ in range(2):
        generator(torch.rand(4, 1, generator.config.image_size, generator.config.image_size) * 2 - 1)
    return generator.eval()


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    generator = _trained_like_generator()
    checkpoint = save_checkpoint(folder / "tiny.pt", {"config": generator.config, "generator": generator.state_dict()})
    out = folder / "onnx" / "tiny.onnx"
    diff = export_generator(checkpoint, out, with_saliency=True)
    return generator, checkpoint, out, diff


def test_export_contract(tiny_export):
    generator, checkpoint, out, diff = tiny_export
    assert 0 <= diff <= 1e-4
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.onnx"]  # one file, no temporary or external data
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["name"] == "tiny" and meta["input_size"] == "64" and "SCGAN" in meta["paper"]
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert digest in meta["source"]
    assert json.loads(meta["config"]) == PRESETS["scgan-tiny"].to_dict()

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "gray" and inp.shape[1:] == [1, 64, 64] and isinstance(inp.shape[0], str)  # dynamic batch
    assert [o.name for o in session.get_outputs()] == ["rgb", "saliency"]
    gray = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(5))
    rgb, saliency = session.run(None, {"gray": gray.numpy()})
    assert rgb.shape == (3, 3, 64, 64) and saliency.shape == (3, 1, 64, 64) and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    # the graph is a drop-in for the PyTorch colorizer (same normalisation, eval-mode BN, folded spectral norm)
    expected_rgb, expected_saliency = ScganColorizer(generator).predict(gray)
    np.testing.assert_allclose(rgb, expected_rgb.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(saliency, expected_saliency.numpy(), rtol=0, atol=1e-4)
    assert not generator.training  # export leaves the source generator as it was


def test_export_from_preset_without_saliency(tmp_path):
    out = tmp_path / "s64.onnx"
    rng = torch.get_rng_state()
    diff = export_generator("scgan-64", out)
    assert diff <= 1e-4
    assert torch.equal(torch.get_rng_state(), rng)  # the seeded untrained weights do not reset the caller's RNG
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["rgb"]
    meta = onnx.load(str(out)).metadata_props
    assert {p.key: p.value for p in meta}["source"].startswith("preset scgan-64, untrained")


def test_failed_check_writes_nothing(tmp_path, tiny_export):
    generator = tiny_export[0]
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportCheckError, match=r"bad\.onnx: ONNX Runtime differs from PyTorch"):
        export_generator(generator, out, atol=-1.0)  # impossible tolerance: forces the failure path
    assert list(tmp_path.iterdir()) == []


def test_export_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt: neither a checkpoint file nor a preset name.*scgan-256"):
        export_generator(tmp_path / "nope.pt", tmp_path / "x.onnx")
    no_saliency = build_generator(PRESETS["scgan-tiny"].replace(saliency=False)).eval()
    with pytest.raises(InputError, match="no saliency branch"):
        export_generator(no_saliency, tmp_path / "x.onnx", with_saliency=True)
    with pytest.raises(InputError, match="expected a Generator"):
        export_generator(42, tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # the default run exports scgan-tiny and scgan-64; these two take tens of seconds each
@pytest.mark.parametrize("preset", ["scgan-128", "scgan-256"])
def test_export_larger_presets(tmp_path, preset):
    generator = _trained_like_generator(preset)
    diff = export_generator(generator, tmp_path / f"{preset}.onnx", with_saliency=True)
    assert diff <= 1e-4
