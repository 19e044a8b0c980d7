"""Throughput (images/s) of every baseline's exported ONNX colorizer in ONNX Runtime on CPU, at the model's input size.

For each baseline: the ONNX Runtime session (``role="candidate"``) and the same network in PyTorch eager
(``role="peer"``), same inputs, same thread count, one ``group`` per baseline, so that the speed is read as a ratio
against the peer of the same run (docs/leaderboard.md convention: ``group`` + ``extra_info["role"]`` +
``extra_info["items"]``). Randomly initialised weights (speed does not depend on the values). Under
``--benchmark-disable`` (CI) the networks are built at their small test settings and the test checks that ONNX
Runtime reproduces PyTorch (a correctness test); ``SCGAN_BENCH_BASELINE_BATCH`` sets the batch (default 2).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from baselines.registry import architecture_names, get_architecture

BATCH = int(os.environ.get("SCGAN_BENCH_BASELINE_BATCH", "2"))
# Full-width networks with no smaller setting: under --benchmark-disable their export + ONNX Runtime parity is
# already tested by tests/test_baselines_archs.py::test_export_parity_and_contract, so CI does not pay for it twice.
HEAVY_IN_CI = ("zhang-eccv16", "zhang-siggraph17")


@pytest.fixture(scope="module")
def prepared(request, tmp_path_factory):
    """``prepared(name)`` -> (module, session, gray), built and exported once per baseline for both tests."""
    disabled = bool(request.config.getoption("benchmark_disable", default=False))
    cache = {}

    def get(name: str):
        if disabled and name in HEAVY_IN_CI:
            pytest.skip(f"{name}: parity covered by tests/test_baselines_archs.py; timed only with benchmarks on")
        if name not in cache:
            cache[name] = _setup(name, disabled, tmp_path_factory.mktemp("baselines_speed"))
        return cache[name]

    return get


def _setup(name: str, disabled: bool, tmp_path):
    import onnxruntime as ort

    from baselines.export import build_baseline, export_module

    arch = get_architecture(name)
    options = arch.test_options if disabled else {}
    size = arch.test_size if disabled else arch.input_size
    module, source, _ = build_baseline(name, **options)
    path = tmp_path / f"{name}.onnx"
    export_module(module, path, size, {"name": name, "source": source, "paper": arch.paper}, arch.has_saliency)
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = torch.get_num_threads()
    session_options.log_severity_level = 3
    session = ort.InferenceSession(str(path), session_options, providers=["CPUExecutionProvider"])
    gray = torch.rand(BATCH, 1, size, size, generator=torch.Generator().manual_seed(1))
    return module, session, gray


def _info(benchmark, name: str, role: str, backend: str, gray: torch.Tensor) -> None:
    benchmark.group = f"baseline-{name}-{gray.shape[-1]}px-batch{gray.shape[0]}"
    benchmark.extra_info.update(
        role=role,
        items=int(gray.shape[0]),
        label=backend,
        baseline=name,
        shape=list(gray.shape),
        dtype="float32",
        threads=torch.get_num_threads(),
    )


@pytest.mark.parametrize("name", architecture_names())
def test_baseline_onnxruntime_cpu(benchmark, name, prepared):
    module, session, gray = prepared(name)
    feed = {"gray": gray.numpy()}
    _info(benchmark, name, "candidate", "onnxruntime-cpu", gray)
    outputs = benchmark(session.run, None, feed)
    with torch.no_grad():
        expected = module(gray)
    expected = expected if isinstance(expected, tuple) else (expected,)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=0)
    if benchmark.stats is not None and not benchmark.disabled:
        benchmark.extra_info["images_per_s"] = gray.shape[0] / benchmark.stats.stats.median


@pytest.mark.parametrize("name", architecture_names())
def test_baseline_pytorch_eager_cpu(benchmark, name, prepared):
    module, _, gray = prepared(name)
    _info(benchmark, name, "peer", "pytorch-eager", gray)

    def forward():
        with torch.no_grad():
            return module(gray)

    out = benchmark(forward)
    rgb = out[0] if isinstance(out, tuple) else out
    assert rgb.shape == (gray.shape[0], 3, *gray.shape[-2:])
    if benchmark.stats is not None and not benchmark.disabled:
        benchmark.extra_info["images_per_s"] = gray.shape[0] / benchmark.stats.stats.median
