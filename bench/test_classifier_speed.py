"""Classifier throughput: EfficientNet-Lite0 through ONNX Runtime (candidate, the default backend of ``top1`` & co.)
vs PyTorch eager (peer).

Same run, same batch, same thread count: 8 RGB images 256x256 in [0, 1] (seeded), the whole ``Classifier.logits``
call on both sides (resize/crop/normalise in torch + the network). The logits of both sides are compared too, so under
``--benchmark-disable`` this is a correctness test of the export. The ONNX graph is exported into a temporary cache.

Peer convention (docs/leaderboard.md): ``group`` + ``extra_info["role"]`` + ``extra_info["items"]`` (images).
"""

from __future__ import annotations

import pytest
import torch

from metrics.classifier import load_classifier

BATCH = 8
SIZE = 256


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()  # ONNX Runtime gets the same thread budget as PyTorch
    cache = tmp_path_factory.mktemp("classifier_speed")
    ort_clf = load_classifier("efficientnet-lite0", backend="onnxruntime", num_threads=threads, cache_dir=cache)
    torch_clf = load_classifier("efficientnet-lite0", backend="torch")
    images = torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    return ort_clf, torch_clf, images


def _info(benchmark, role: str, label: str, images: torch.Tensor) -> None:
    benchmark.group = f"classifier-efficientnet-lite0-{SIZE}x{SIZE}-batch{BATCH}"
    benchmark.extra_info.update(
        role=role,
        items=int(images.shape[0]),
        label=label,
        shape=list(images.shape),
        dtype="float32",
        threads=torch.get_num_threads(),
    )


def test_classifier_pytorch_eager(benchmark, setup):
    _, torch_clf, images = setup
    _info(benchmark, "peer", "pytorch-eager", images)
    logits = benchmark(torch_clf.logits, images)
    assert logits.shape == (BATCH, 1000) and torch.isfinite(logits).all()


def test_classifier_onnxruntime(benchmark, setup):
    ort_clf, torch_clf, images = setup
    _info(benchmark, "candidate", "onnxruntime-cpu", images)
    logits = benchmark(ort_clf.logits, images)
    assert logits.shape == (BATCH, 1000)
    assert (logits - torch_clf.logits(images)).abs().max().item() < 1e-4
