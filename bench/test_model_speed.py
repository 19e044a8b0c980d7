"""Generator forward throughput: ONNX Runtime (the exported colorizer, candidate) vs PyTorch eager (peer).

Same run, same inputs, same thread count: preset ``scgan-64`` (``SCGAN_BENCH_PRESET`` overrides), batch 8 of
64x64 gray images in [0, 1], eval mode, normalisation included on both sides. The ONNX graph comes from
``scgan.export.export_generator`` (spectral norm folded, checked against PyTorch); the outputs of both sides are
compared here too, so under ``--benchmark-disable`` this is a correctness test of the export.

Peer convention (docs/leaderboard.md): ``group`` + ``extra_info["role"]`` + ``extra_info["items"]`` (images).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

PRESET = os.environ.get("SCGAN_BENCH_PRESET", "scgan-64")
BATCH = 8


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import onnxruntime as ort

    from scgan.colorize import ScganColorizer
    from scgan.export import export_generator
    from scgan.model import build_generator

    torch.manual_seed(0)
    generator = build_generator(PRESET)
    size = generator.config.image_size
    generator.train()
    generator(torch.rand(4, 1, size, size) * 2 - 1)  # BN statistics away from their initial values
    generator.eval()
    path = tmp_path_factory.mktemp("model_speed") / f"{PRESET}.onnx"
    export_generator(generator, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same thread budget as PyTorch
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    gray = torch.rand(BATCH, 1, size, size, generator=torch.Generator().manual_seed(1))
    return ScganColorizer(generator), session, gray


def _info(benchmark, role: str, gray: torch.Tensor, backend: str) -> None:
    benchmark.group = f"generator-forward-{PRESET}-batch{BATCH}"
    benchmark.extra_info.update(
        role=role,
        items=int(gray.shape[0]),
        label=backend,
        preset=PRESET,
        shape=list(gray.shape),
        dtype="float32",
        threads=torch.get_num_threads(),
    )


def test_generator_forward_pytorch_eager(benchmark, models):
    colorizer, session, gray = models
    _info(benchmark, "peer", gray, "pytorch-eager")
    rgb = benchmark(colorizer.colorize_at_size, gray)
    assert rgb.shape == (BATCH, 3, *gray.shape[2:])


def test_generator_forward_onnxruntime(benchmark, models):
    colorizer, session, gray = models
    _info(benchmark, "candidate", gray, "onnxruntime-cpu")
    feed = {"gray": gray.numpy()}
    (rgb,) = benchmark(session.run, ["rgb"], feed)
    np.testing.assert_allclose(rgb, colorizer.colorize_at_size(gray).numpy(), rtol=0, atol=1e-4)
