"""Fused kernels vs the pure-PyTorch reference, forward+backward, same inputs, same run (pytest-benchmark).

On a CUDA machine: shape (8,3,256,256) fp32; ``triton`` (role ``candidate``) against ``eager`` and ``compiled``
(``torch.compile`` of the reference, inductor; both role ``peer``); the device is synchronised inside the timed call.

On CPU the kernels run only through the Triton interpreter, whose time says nothing about the kernels: that row is
reported with role ``interpreter`` (not ratioed), at a tiny shape (2,3,32,32). The meaningful CPU pair is then
``compiled`` (candidate: inductor fuses the same element-wise chain on CPU) against ``eager`` (peer); inductor's
first compile takes about a minute on a 2-core machine, so on CPU that row is marked slow.

Every benchmark also checks its result (output or every gradient) against the float64 reference at the tolerances
of ``kernels.tolerances``, so under ``--benchmark-disable`` this suite is a correctness test of what it times.
Peer convention: docs/leaderboard.md (``group`` + ``extra_info["role"]``, ``extra_info["items"]``).
"""

from __future__ import annotations

import pytest
import torch

import kernels
from bench.gpu_kernels import CASES, make_call
from kernels import reference
from kernels.tolerances import assert_close_to_reference

ON_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if ON_CUDA else "cpu"
SHAPE = (8, 3, 256, 256) if ON_CUDA else (2, 3, 32, 32)
DTYPE = torch.float32
MODE = "forward+backward"

_COMPILED: dict[str, object] = {}


def _implementation(impl: str, op: str):
    if impl == "triton":
        return getattr(kernels.get_ops("triton"), op)
    if impl == "eager":
        return getattr(reference, op)
    if op not in _COMPILED:
        _COMPILED[op] = torch.compile(getattr(reference, op))
    return _COMPILED[op]


def _role(impl: str) -> str:
    if impl == "triton":
        return "candidate" if ON_CUDA else "interpreter"
    if impl == "compiled":
        return "peer" if ON_CUDA else "candidate"
    return "peer"


def _synchronised(call):
    if not ON_CUDA:
        return call

    def timed():
        result = call()
        torch.cuda.synchronize()
        return result

    return timed


def _params():
    for case in CASES:
        for impl in ("triton", "eager", "compiled"):
            marks = []
            if impl == "triton" and not kernels.triton_can_run(torch.zeros(1, device=DEVICE)):
                marks.append(pytest.mark.skip(reason="Triton cannot run here"))
            if impl == "compiled" and not ON_CUDA:
                marks.append(pytest.mark.slow)  # inductor's CPU compile: ~1 minute per op on 2 cores
            yield pytest.param(case, impl, id=f"{case.op}-{impl}", marks=marks)


@pytest.mark.parametrize(("case", "impl"), list(_params()))
def test_kernel_forward_backward_speed(benchmark, case, impl):
    inputs = case.make_inputs(SHAPE, DTYPE, torch.device(DEVICE), torch.Generator().manual_seed(0))
    call = _synchronised(make_call(_implementation(impl, case.op), inputs, case.grads, MODE))
    shape_text = "x".join(str(s) for s in SHAPE)
    benchmark.group = f"kernels-{case.op}-{MODE}-{shape_text}-{str(DTYPE).removeprefix('torch.')}-{DEVICE}"
    benchmark.extra_info.update(
        role=_role(impl), items=SHAPE[0], label=f"{case.op}-{impl}", shape=list(SHAPE), dtype=str(DTYPE), mode=MODE
    )
    call()  # warm-up outside the timed region: Triton's JIT, torch.compile's first (forward and backward) compile
    with kernels.poisoned_outputs():  # an unwritten gradient element would be NaN and fail below
        grads = benchmark(call)
    expected = make_call(getattr(reference, case.op), [t.double() for t in inputs], case.grads, MODE)()
    assert len(grads) == len(case.grads)
    for index, (actual, wanted) in zip(case.grads, zip(grads, expected)):
        assert_close_to_reference(actual, wanted, DTYPE, f"{case.op}-{impl} d input {index}")
