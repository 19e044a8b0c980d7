"""Every Triton launch runs with its tensors' GPU as the current CUDA device (issue 12).

Triton launches on the current device's stream: tensors on ``cuda:1`` while ``cuda:0`` is current would be read by the
wrong device. On CPU (interpreter) a unit test checks that each launcher enters ``device_guard`` around each kernel
launch; with two GPUs the ops run on ``cuda:1`` while ``cuda:0`` is current and must match the reference.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import kernels
from kernels import reference
from kernels.dispatch import TRITON_OPS

pytestmark = pytest.mark.skipif(
    not kernels.triton_can_run(torch.zeros(1, device="cuda" if torch.cuda.is_available() else "cpu")),
    reason="Triton cannot run here (no CUDA device and TRITON_INTERPRET is not 1, or triton missing)",
)


def _inputs(device):
    gen = torch.Generator().manual_seed(0)
    rgb = torch.randn(2, 3, 5, 7, generator=gen, dtype=torch.float64)
    sal = torch.rand(2, 1, 5, 7, generator=gen, dtype=torch.float64)
    rgb_true = torch.randn(2, 3, 5, 7, generator=gen, dtype=torch.float64)
    sal_true = torch.rand(2, 1, 5, 7, generator=gen, dtype=torch.float64)
    eps = torch.rand(2, generator=gen, dtype=torch.float64)
    return [t.to(device).requires_grad_(True) for t in (rgb, sal, rgb_true, sal_true, eps)]


def _every_op(device):
    """Forward and backward of each fused op (every launcher runs once at least)."""
    rgb, sal, rgb_true, sal_true, eps = _inputs(device)
    results = {
        "attention_l1": TRITON_OPS.attention_l1(rgb, sal, rgb_true, sal_true),
        "weighted_image": TRITON_OPS.weighted_image(rgb, sal).square().sum(),
        "interpolate": TRITON_OPS.interpolate(rgb, rgb_true, eps).square().sum(),
        "gradient_penalty": TRITON_OPS.gradient_penalty(rgb),
    }
    for value in results.values():
        value.backward()
    from kernels.penalty import per_sample_scale  # the double backward's op; launched directly here

    results["per_sample_scale"] = per_sample_scale(eps.detach(), rgb.detach()).sum()
    return results, rgb.grad


def test_every_kernel_launch_is_inside_the_device_guard(monkeypatch):
    import kernels.attention as attention
    import kernels.penalty as penalty

    state = {"depth": 0, "guarded": [], "unguarded": []}

    @contextlib.contextmanager
    def recording_guard(tensor):
        state["depth"] += 1
        try:
            yield
        finally:
            state["depth"] -= 1

    class CheckedKernel:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid):
            launch = self.kernel[grid]

            def run(*args, **kwargs):
                state["guarded" if state["depth"] > 0 else "unguarded"].append(self.name)
                return launch(*args, **kwargs)

            return run

    launched_kernels = set()
    for module in (attention, penalty):
        monkeypatch.setattr(module, "device_guard", recording_guard)
        for name in dir(module):
            if name.endswith("_kernel"):
                monkeypatch.setattr(module, name, CheckedKernel(name, getattr(module, name)))
                launched_kernels.add(name)
    _every_op("cuda" if torch.cuda.is_available() else "cpu")
    assert state["unguarded"] == []
    assert set(state["guarded"]) == launched_kernels  # every kernel of both files was launched, each inside the guard


def test_device_guard_is_a_no_op_for_cpu_tensors():
    from kernels.runtime import device_guard

    with device_guard(torch.zeros(1)):
        assert torch.zeros(1).device.type == "cpu"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices (tensors on cuda:1, cuda:0 current)")
def test_ops_on_the_second_gpu_while_the_first_is_current():
    with torch.cuda.device(0):
        results, grad = _every_op("cuda:1")
        torch.cuda.synchronize(1)
    expected = {}
    rgb, sal, rgb_true, sal_true, eps = _inputs("cpu")
    expected["attention_l1"] = reference.attention_l1(rgb, sal, rgb_true, sal_true)
    expected["weighted_image"] = reference.weighted_image(rgb, sal).square().sum()
    expected["interpolate"] = reference.interpolate(rgb, rgb_true, eps).square().sum()
    expected["gradient_penalty"] = reference.gradient_penalty(rgb)
    for value in expected.values():
        value.backward()
    expected_grad = rgb.grad
    expected["per_sample_scale"] = (eps.detach()[:, None, None, None] * rgb.detach()).sum()
    for name, value in results.items():
        assert value.device == torch.device("cuda:1")
        torch.testing.assert_close(value.cpu(), expected[name].detach(), rtol=1e-10, atol=1e-10, msg=name)
    torch.testing.assert_close(grad.cpu(), expected_grad, rtol=1e-10, atol=1e-10)
