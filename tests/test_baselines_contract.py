"""The ONNX colorizer contract: the validator accepts a good model and names every violation; the runner's provider
choice (CPU here, with nothing printed); batching; metadata writing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from baselines.contract import ContractError, read_metadata, validate_colorizer, write_metadata
from baselines.runner import CPU_PROVIDER, OnnxColorizer, choose_providers
from metrics.device import cuda_usable

GOOD_METADATA = {"name": "toy", "input_size": "8", "source": "hand-written graph", "paper": "none"}


def make_toy_model(
    path,
    input_name="gray",
    output_name="rgb",
    input_shape=("batch", 1, 8, 8),
    metadata=None,
    saliency=False,
    elem_type=TensorProto.FLOAT,
):
    """A colorizer-shaped ONNX graph: rgb = gray repeated 3 times, scaled by 0.5 (and saliency = gray)."""
    rank4 = len(input_shape) == 4
    nodes = [helper.make_node("Concat", [input_name] * 3, ["cat"], axis=1 if rank4 else 0)]
    nodes.append(helper.make_node("Mul", ["cat", "half"], [output_name]))
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    out_shape = (input_shape[0], 3, *input_shape[2:]) if rank4 else None
    outputs = [helper.make_tensor_value_info(output_name, elem_type, out_shape)]
    if saliency:
        nodes.append(helper.make_node("Identity", [input_name], ["saliency"]))
        outputs.append(helper.make_tensor_value_info("saliency", elem_type, input_shape))
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info(input_name, elem_type, input_shape)], outputs, [half]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in (GOOD_METADATA if metadata is None else metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_valid_model_is_accepted(tmp_path):
    info = validate_colorizer(make_toy_model(tmp_path / "good.onnx"))
    assert (info.name, info.input_size, info.has_saliency) == ("toy", 8, False)
    info = validate_colorizer(make_toy_model(tmp_path / "sal.onnx", saliency=True))
    assert info.has_saliency


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_name": "input"}, "input must be named 'gray', found ['input']"),
        ({"output_name": "out"}, "output must be named 'rgb'"),
        ({"input_shape": ("batch", 64)}, "input 'gray' has rank 2"),
        ({"input_shape": (1, 1, 8, 8)}, "static batch dimension 1"),
        ({"metadata": {"name": "toy", "input_size": "8"}}, "missing metadata ['source', 'paper']"),
        ({"metadata": {**GOOD_METADATA, "input_size": "16"}}, "input_size=16 but the input 'gray' is fixed at 8"),
        ({"elem_type": TensorProto.DOUBLE}, "element type DOUBLE, expected FLOAT"),
    ],
)
def test_broken_models_are_rejected_with_readable_messages(tmp_path, kwargs, message):
    path = make_toy_model(tmp_path / "broken.onnx", **kwargs)
    with pytest.raises(ContractError) as error:
        validate_colorizer(path, full_check=False)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_every_violation_is_listed_at_once(tmp_path):
    path = make_toy_model(tmp_path / "bad.onnx", input_name="x", input_shape=(4, 1, 8, 8), metadata={})
    with pytest.raises(ContractError) as error:
        validate_colorizer(path, full_check=False)
    assert len(error.value.problems) >= 2
    assert "input must be named 'gray'" in str(error.value) and "missing metadata" in str(error.value)


def test_missing_and_non_onnx_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        validate_colorizer(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf at all\xff" * 10)
    with pytest.raises(ContractError, match="junk.onnx"):
        validate_colorizer(junk)


def test_write_metadata_round_trip(tmp_path):
    path = make_toy_model(tmp_path / "m.onnx", metadata={"name": "toy"})
    with pytest.raises(ContractError, match="missing metadata"):
        validate_colorizer(path)
    write_metadata(path, input_size=8, source="test", paper="none", name="renamed")
    assert validate_colorizer(path).name == "renamed"
    assert read_metadata(onnx.load(str(path)))["input_size"] == "8"


def test_provider_choice_on_this_machine_is_cpu_and_silent(tmp_path, capfd):
    path = make_toy_model(tmp_path / "toy.onnx")
    capfd.readouterr()
    if cuda_usable():
        pytest.skip("a usable GPU is present: the CPU-only expectation does not apply")
    assert choose_providers("auto") == [CPU_PROVIDER]
    colorizer = OnnxColorizer(path, device="auto")
    assert colorizer.providers == [CPU_PROVIDER]
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    with pytest.raises(ValueError, match="no usable GPU"):
        choose_providers("cuda")
    with pytest.raises(ValueError, match="device must be"):
        choose_providers("tpu")


def test_runner_batches_and_checks_size(tmp_path):
    colorizer = OnnxColorizer(make_toy_model(tmp_path / "toy.onnx", saliency=True), device="cpu", batch_size=2)
    gray = torch.rand(5, 1, 8, 8)
    rgb, saliency = colorizer.predict(gray)
    assert rgb.shape == (5, 3, 8, 8) and saliency.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(rgb.numpy(), 0.5 * gray.repeat(1, 3, 1, 1).numpy(), atol=1e-7)
    assert torch.equal(colorizer.colorize_at_size(gray), rgb)
    with pytest.raises(ValueError, match="takes 8x8"):
        colorizer.colorize_at_size(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"expected gray \(N, 1, H, W\)"):
        colorizer.colorize_at_size(torch.rand(1, 3, 8, 8))
