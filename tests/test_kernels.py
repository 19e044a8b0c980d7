"""Triton kernels against the float64 reference: outputs and every gradient, all dtypes, edge shapes, strided inputs.

On a machine without a GPU, conftest.py sets TRITON_INTERPRET=1 before kernels is imported, so the real kernels run
on CPU tensors through the Triton interpreter (about 1000x slower than eager: shapes stay tiny). Every run happens
inside ``poisoned_outputs()`` so an element a kernel fails to write is NaN and fails the comparison.
"""

from __future__ import annotations

import zlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from kernels import reference
from kernels.dispatch import TRITON_OPS
from kernels.tolerances import TOLERANCES, assert_close_to_reference

pytestmark = pytest.mark.skipif(
    not kernels.triton_can_run(torch.zeros(1, device="cuda" if torch.cuda.is_available() else "cpu")),
    reason="Triton cannot run here (no CUDA device and TRITON_INTERPRET is not 1, or triton missing)",
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ALL_DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# (N, C, H, W): single pixel, odd and non-power-of-two sizes, batch 1, a size spanning several 1024-pixel blocks
EDGE_SHAPES = [(1, 3, 1, 1), (1, 3, 5, 7), (2, 3, 4, 4), (3, 3, 9, 1), (2, 3, 97, 131)]
SMALL_SHAPES = [(1, 3, 1, 1), (2, 3, 5, 7)]


def _random(seed: int, shape, kind: str = "normal") -> torch.Tensor:
    """Fresh float64 inputs for one case (seeded per case, never shared between cases)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "unit":
        return torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def _seed(*parts) -> int:
    """A stable per-case seed (crc32, not hash(), which changes between interpreter runs)."""
    return zlib.crc32(repr(parts).encode()) % (2**31)


def _leaves(tensors, dtype, requires_grad):
    """The same values as kernel inputs (``dtype``) and as float64 reference inputs (rounded to dtype first)."""
    kernel_in = [t.detach().to(dtype).to(DEVICE).requires_grad_(r) for t, r in zip(tensors, requires_grad)]
    reference_in = [t.detach().to(torch.float64).requires_grad_(r) for t, r in zip(kernel_in, requires_grad)]
    return kernel_in, reference_in


def _run_and_compare(op_name, tensors, requires_grad, dtype, upstream_seed):
    """Run op on both paths, compare the output and the gradient of every input that requires grad."""
    kernel_in, reference_in = _leaves(tensors, dtype, requires_grad)
    with kernels.poisoned_outputs():
        out = getattr(TRITON_OPS, op_name)(*kernel_in)
    expected = getattr(reference, op_name)(*reference_in)
    assert out.dtype == dtype, f"{op_name} returned {out.dtype} for {dtype} inputs"
    assert out.device.type == DEVICE
    assert_close_to_reference(out, expected, dtype, f"{op_name} output")
    upstream = _random(upstream_seed, expected.shape)
    with kernels.poisoned_outputs():
        out.backward(upstream.to(dtype).to(DEVICE))
    expected.backward(upstream.to(dtype).to(torch.float64))
    for index, (k, r) in enumerate(zip(kernel_in, reference_in)):
        if r.requires_grad:
            assert k.grad is not None, f"{op_name}: no gradient for input {index}"
            assert k.grad.dtype == k.dtype
            assert_close_to_reference(k.grad, r.grad, dtype, f"{op_name} d input {index}")
        else:
            assert k.grad is None


def _attention_inputs(shape, seed):
    n, c, h, w = shape
    return [
        _random(seed, shape),
        _random(seed + 1, (n, 1, h, w), "unit"),
        _random(seed + 2, shape),
        _random(seed + 3, (n, 1, h, w), "unit"),
    ]


# ------------------------------------------------------------------------------------------------ attention_l1
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_attention_l1_edge_shapes_float64(shape):
    seed = _seed("att", shape)
    _run_and_compare("attention_l1", _attention_inputs(shape, seed), [True, True, False, False], torch.float64, seed)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES + [(2, 3, 33, 37)])
def test_attention_l1_dtypes_and_target_gradients(shape, dtype):
    """All four gradients (the targets' too, which the kernel writes only when they require grad)."""
    seed = _seed("att-all", shape, dtype)
    _run_and_compare("attention_l1", _attention_inputs(shape, seed), [True, True, True, True], dtype, seed + 7)


def test_attention_l1_subgradient_at_zero_matches_torch():
    """Where pred*sal == true*sal exactly, |x|'s derivative is sign(0) = 0, as torch.abs's backward."""
    shape = (2, 3, 3, 5)
    rgb, sal = _random(1, shape), _random(2, (2, 1, 3, 5), "unit")
    rgb_true, sal_true = rgb.clone(), sal.clone()
    rgb_true[0] += 1.0  # sample 0 differs, sample 1 is exactly equal
    _run_and_compare("attention_l1", [rgb, sal, rgb_true, sal_true], [True, True, False, False], torch.float64, 3)
    kernel_in, _ = _leaves([rgb, sal, rgb_true, sal_true], torch.float64, [True, True, False, False])
    TRITON_OPS.attention_l1(*kernel_in).backward()
    assert torch.all(kernel_in[0].grad[1] == 0) and torch.all(kernel_in[1].grad[1] == 0)
    assert torch.any(kernel_in[0].grad[0] != 0)


def test_attention_l1_generic_channel_count():
    """C is a loop bound, not a constant 3."""
    seed = _seed("att-c")
    tensors = _attention_inputs((2, 5, 3, 4), seed)
    _run_and_compare("attention_l1", tensors, [True, True, False, False], torch.float64, seed)


# ---------------------------------------------------------------------------------------------- weighted_image
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_weighted_image_edge_shapes_float64(shape):
    seed = _seed("wi", shape)
    n, _, h, w = shape
    tensors = [_random(seed, shape), _random(seed + 1, (n, 1, h, w), "unit")]
    _run_and_compare("weighted_image", tensors, [True, True], torch.float64, seed + 2)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("requires_grad", [(True, True), (True, False), (False, True)])
def test_weighted_image_dtypes_and_partial_gradients(dtype, requires_grad):
    seed = _seed("wi-dt", dtype, requires_grad)
    tensors = [_random(seed, (2, 3, 6, 5)), _random(seed + 1, (2, 1, 6, 5), "unit")]
    _run_and_compare("weighted_image", tensors, list(requires_grad), dtype, seed + 2)


# ------------------------------------------------------------------------------------------------- interpolate
@pytest.mark.parametrize("shape", EDGE_SHAPES + [(4, 1, 30, 30), (3,)])
def test_interpolate_edge_shapes_float64(shape):
    seed = _seed("interp", shape)
    tensors = [_random(seed, shape), _random(seed + 1, shape), _random(seed + 2, (shape[0],), "unit")]
    _run_and_compare("interpolate", tensors, [True, True, True], torch.float64, seed + 3)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("requires_grad", [(True, True, True), (True, False, False), (False, True, False)])
def test_interpolate_dtypes_and_partial_gradients(dtype, requires_grad):
    seed = _seed("interp-dt", dtype, requires_grad)
    shape = (3, 3, 5, 4)
    tensors = [_random(seed, shape), _random(seed + 1, shape), _random(seed + 2, (3, 1, 1, 1), "unit")]
    _run_and_compare("interpolate", tensors, list(requires_grad), dtype, seed + 3)


# -------------------------------------------------------------------------------------------- gradient_penalty
@pytest.mark.parametrize("shape", EDGE_SHAPES + [(4, 1, 30, 30), (5,), (65, 2, 3)])
def test_gradient_penalty_edge_shapes_float64(shape):
    """Any spatial size (no hard-coded 30x30), 1-D per-sample gradients, N above the finish kernel's 64-row block."""
    seed = _seed("gp", shape)
    _run_and_compare("gradient_penalty", [_random(seed, shape)], [True], torch.float64, seed + 1)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_gradient_penalty_dtypes(dtype):
    seed = _seed("gp-dt", dtype)
    _run_and_compare("gradient_penalty", [_random(seed, (3, 3, 7, 5)) * 0.2], [True], dtype, seed + 1)


def test_gradient_penalty_zero_sample_has_zero_gradient_like_torch():
    grad = _random(5, (3, 2, 4, 4))
    grad[1] = 0.0
    _run_and_compare("gradient_penalty", [grad], [True], torch.float64, 6)
    x = grad.clone().to(DEVICE).requires_grad_()
    TRITON_OPS.gradient_penalty(x).backward()
    assert torch.all(x.grad[1] == 0) and torch.isfinite(x.grad).all()


def test_gradient_penalty_large_sample_uses_many_partial_blocks():
    """D = 3*97*131 spans 19 reduction blocks per sample: the finish kernel must add them all."""
    seed = _seed("gp-large")
    _run_and_compare("gradient_penalty", [_random(seed, (2, 3, 97, 131))], [True], torch.float32, seed + 1)


# ---------------------------------------------------------------------------------------------- strided inputs
def _strided(t: torch.Tensor, kind: str) -> torch.Tensor:
    """A non-contiguous tensor with t's values."""
    if kind == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if kind == "transposed":  # values stored (N,C,W,H), viewed as (N,C,H,W)
        return t.transpose(2, 3).contiguous().transpose(2, 3)
    if kind == "sliced":  # every other element of a wider buffer
        wide = torch.zeros(*t.shape[:-1], t.shape[-1] * 2, dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["channels_last", "transposed", "sliced"])
def test_non_contiguous_inputs(kind):
    seed = _seed("strided", kind)
    shape = (2, 3, 5, 6)
    att = [_strided(t, kind) for t in _attention_inputs(shape, seed)]
    assert not att[0].is_contiguous()
    _run_and_compare("attention_l1", att, [True, True, True, True], torch.float64, seed)
    _run_and_compare("weighted_image", att[:2], [True, True], torch.float64, seed + 1)
    pair = [_strided(_random(seed + 5, shape), kind), _strided(_random(seed + 6, shape), kind)]
    eps = _random(seed + 7, (2, 4), "unit")[:, 1]  # a strided (N,) view
    _run_and_compare("interpolate", pair + [eps], [True, True, True], torch.float64, seed + 2)
    _run_and_compare("gradient_penalty", pair[:1], [True], torch.float64, seed + 3)


def test_non_contiguous_upstream_gradient():
    """The gradient arriving from autograd may itself be strided (e.g. an expanded or transposed grad)."""
    rgb, sal = _random(1, (2, 3, 4, 5)), _random(2, (2, 1, 4, 5), "unit")
    (k_rgb, k_sal), (r_rgb, r_sal) = _leaves([rgb, sal], torch.float64, [True, True])
    upstream = _random(3, (2, 3, 5, 4)).transpose(2, 3)
    with kernels.poisoned_outputs():
        TRITON_OPS.weighted_image(k_rgb, k_sal).backward(upstream)
    reference.weighted_image(r_rgb, r_sal).backward(upstream)
    assert_close_to_reference(k_rgb.grad, r_rgb.grad, torch.float64, "d rgb")
    assert_close_to_reference(k_sal.grad, r_sal.grad, torch.float64, "d sal")


# ------------------------------------------------------------------------------------------ gradcheck (float64)
def test_gradcheck_attention_l1():
    inputs = [t.requires_grad_() for t in _attention_inputs((1, 3, 2, 3), 11)]
    assert torch.autograd.gradcheck(TRITON_OPS.attention_l1, inputs, eps=1e-6, atol=1e-6)
    # create_graph=True takes the other branch of the backward (recomputed from the reference expression)
    small = [t.detach()[..., :1].contiguous().requires_grad_() for t in inputs]
    assert torch.autograd.gradgradcheck(TRITON_OPS.attention_l1, small, eps=1e-6, atol=1e-6)


def test_gradcheck_and_gradgradcheck_weighted_image():
    inputs = [_random(12, (2, 3, 1, 2)).requires_grad_(), _random(13, (2, 1, 1, 2), "unit").requires_grad_()]
    assert torch.autograd.gradcheck(TRITON_OPS.weighted_image, inputs)
    assert torch.autograd.gradgradcheck(TRITON_OPS.weighted_image, inputs)


def test_gradcheck_and_gradgradcheck_interpolate():
    inputs = [
        _random(14, (2, 2, 1, 2)).requires_grad_(),
        _random(15, (2, 2, 1, 2)).requires_grad_(),
        _random(16, (2,), "unit").requires_grad_(),
    ]
    assert torch.autograd.gradcheck(TRITON_OPS.interpolate, inputs)
    assert torch.autograd.gradgradcheck(TRITON_OPS.interpolate, inputs)


def test_gradcheck_and_gradgradcheck_gradient_penalty():
    grad = _random(17, (3, 1, 2, 2)).requires_grad_()
    assert torch.autograd.gradcheck(TRITON_OPS.gradient_penalty, [grad])
    assert torch.autograd.gradgradcheck(TRITON_OPS.gradient_penalty, [grad])


# --------------------------------------------------------------------- penalty double backward through a conv D
class _TinyCritic(torch.nn.Module):
    """A small conv discriminator: the penalty's gradient flows into its parameters through a double backward."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1),
            torch.nn.Softplus(),  # smooth, so the first bias gets a non-zero gradient through d scores / d input
            torch.nn.Conv2d(4, 1, 3, stride=2, padding=1),
        )

    def forward(self, x):
        return self.body(x)


def _penalty_parameter_grads(ops, critic, real, fake, eps):
    critic.zero_grad()
    mixed = ops.interpolate(real, fake, eps).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    penalty = ops.gradient_penalty(grad)
    penalty.backward()
    # the last conv's bias does not change d scores / d input, so its penalty gradient is None on both paths
    return penalty.detach(), [None if p.grad is None else p.grad.detach().clone() for p in critic.parameters()]


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 3, 7, 5)])
def test_penalty_double_backward_through_conv_discriminator(shape):
    torch.manual_seed(_seed("critic", shape))
    critic = _TinyCritic().double().to(DEVICE)
    seed = _seed("critic-in", shape)
    real, fake, eps = _random(seed, shape), _random(seed + 1, shape), _random(seed + 2, (shape[0],), "unit")
    with kernels.poisoned_outputs():
        k_pen, k_grads = _penalty_parameter_grads(TRITON_OPS, critic, real, fake, eps)
    r_pen, r_grads = _penalty_parameter_grads(kernels.get_ops("reference"), critic, real, fake, eps)
    assert_close_to_reference(k_pen, r_pen, torch.float64, "penalty")
    assert sum(r is not None for r in r_grads) == 3
    for index, (k, r) in enumerate(zip(k_grads, r_grads)):
        if r is None:
            assert k is None
            continue
        assert r.abs().max() > 0
        assert_close_to_reference(k, r, torch.float64, f"critic parameter {index} gradient")


def test_tolerance_table_covers_every_dtype_with_a_relaxation_order():
    atols = [TOLERANCES[d][0] for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16)]
    assert atols == sorted(atols)


# -------------------------------------------------------------------------------- the poisoning catches gaps
def test_poisoned_buffers_start_as_nan():
    from kernels.runtime import new_buffer

    like = torch.zeros(2, device=DEVICE)
    with kernels.poisoned_outputs():
        assert torch.isnan(new_buffer((3, 4), like)).all()
    assert new_buffer((3, 4), like).shape == (3, 4)


def test_a_launch_that_skips_a_block_fails_the_comparison(monkeypatch):
    """Shrink every image-op grid by one block: the unwritten (poisoned) elements must make the check fail."""
    from kernels import attention

    real_grid = attention._grid
    monkeypatch.setattr(attention, "_grid", lambda n, pixels, block: (n, max(1, real_grid(n, pixels, block)[1] - 1)))
    shape = (1, 3, 40, 40)  # 1600 pixels: two 1024-pixel blocks, so one block is skipped
    tensors = [_random(1, shape), _random(2, (1, 1, 40, 40), "unit")]
    with pytest.raises(AssertionError):
        _run_and_compare("weighted_image", tensors, [True, True], torch.float64, 3)


# ------------------------------------------------------------------------------------- random shapes (property)
@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**20),
)
def test_random_shapes_all_ops_float64(n, c, h, w, seed):
    """Random small shapes (block boundaries anywhere): every op, output and every gradient, float64."""
    shape = (n, c, h, w)
    _run_and_compare("attention_l1", _attention_inputs(shape, seed), [True, True, True, True], torch.float64, seed)
    _run_and_compare("weighted_image", _attention_inputs(shape, seed)[:2], [True, True], torch.float64, seed + 1)
    pair = [_random(seed + 2, shape), _random(seed + 3, shape), _random(seed + 4, (n,), "unit")]
    _run_and_compare("interpolate", pair, [True, True, True], torch.float64, seed + 5)
    _run_and_compare("gradient_penalty", pair[:1], [True], torch.float64, seed + 6)
