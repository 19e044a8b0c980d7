"""Fused WGAN-GP pieces: the per-sample interpolation and the gradient penalty (docs/kernels.md, op 2).

Layers, top to bottom: ``@triton.jit`` kernels -> host launchers wrapped as ``torch.library.custom_op`` ->
``torch.autograd.Function`` -> functional wrappers.

Layout every kernel sees: a batch flattened to (N, D) contiguous, D = elements per sample (any spatial size);
per-sample scalars are (N,). Grid: (N, cdiv(D, BLOCK)). Reductions write (N, blocks) partial sums that a second,
single-program kernel (or a tiny torch sum) finishes: deterministic, no atomics.

Differentiability: the penalty's first backward is one fused kernel. When a graph of that backward is requested
(``create_graph=True``, e.g. ``gradgradcheck``), the backward is instead composed from two primitives that are
differentiable through each other to any order:

- ``per_sample_dot(a, b)[n] = sum_i a[n,i] b[n,i]``   backward: d a = scale(w, b), d b = scale(w, a)
- ``per_sample_scale(s, x)[n,i] = s[n] x[n,i]``       backward: d x = scale(s, v), d s = dot(v, x)

Import this module only when Triton is importable (``kernels.runtime.HAS_TRITON``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.runtime import accumulator_dtype, block_size, common_dtype, device_guard, kernel_op, new_buffer
from kernels.shapes import check_gradient, per_sample_eps

_MAX_BLOCK = 2048
_TL_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}


# --------------------------------------------------------------------------------------------------- Triton kernels
@triton.jit
def _interpolate_fwd_kernel(
    real_ptr,  # (N, D)
    fake_ptr,  # (N, D)
    eps_ptr,  # (N,)
    out_ptr,  # (N, D) out: eps*real + (1-eps)*fake
    D,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < D
    eps = tl.load(eps_ptr + n).to(ACC)
    real = tl.load(real_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    fake = tl.load(fake_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    tl.store(out_ptr + n * D + offs, (eps * real + (1 - eps) * fake).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _interpolate_bwd_kernel(
    grad_ptr,  # (N, D) upstream gradient
    real_ptr,  # (N, D)          (read when WRITE_EPS)
    fake_ptr,  # (N, D)          (read when WRITE_EPS)
    eps_ptr,  # (N,)
    d_real_ptr,  # (N, D) out: eps * grad           (when WRITE_REAL)
    d_fake_ptr,  # (N, D) out: (1 - eps) * grad     (when WRITE_FAKE)
    d_eps_partial_ptr,  # (N, num_blocks) out: partial sums of grad * (real - fake)  (when WRITE_EPS)
    D,
    WRITE_REAL: tl.constexpr,
    WRITE_FAKE: tl.constexpr,
    WRITE_EPS: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    mask = offs < D
    eps = tl.load(eps_ptr + n).to(ACC)
    g = tl.load(grad_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    if WRITE_REAL:
        tl.store(d_real_ptr + n * D + offs, (eps * g).to(d_real_ptr.dtype.element_ty), mask=mask)
    if WRITE_FAKE:
        tl.store(d_fake_ptr + n * D + offs, ((1 - eps) * g).to(d_fake_ptr.dtype.element_ty), mask=mask)
    if WRITE_EPS:
        real = tl.load(real_ptr + n * D + offs, mask=mask, other=0).to(ACC)
        fake = tl.load(fake_ptr + n * D + offs, mask=mask, other=0).to(ACC)
        tl.store(d_eps_partial_ptr + n * tl.num_programs(1) + block, tl.sum(g * (real - fake), axis=0))


@triton.jit
def _per_sample_dot_kernel(
    a_ptr,  # (N, D)
    b_ptr,  # (N, D)   (not read when SQUARE: b is a)
    partial_ptr,  # (N, num_blocks) out: partial sums of a*b
    D,
    SQUARE: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    mask = offs < D
    a = tl.load(a_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    if SQUARE:
        b = a
    else:
        b = tl.load(b_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    tl.store(partial_ptr + n * tl.num_programs(1) + block, tl.sum(a * b, axis=0))


@triton.jit
def _per_sample_scale_kernel(
    scale_ptr,  # (N,)
    x_ptr,  # (N, D)
    out_ptr,  # (N, D) out: scale[n] * x[n, :]
    D,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < D
    s = tl.load(scale_ptr + n).to(ACC)
    x = tl.load(x_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    tl.store(out_ptr + n * D + offs, (s * x).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _penalty_finish_kernel(
    partial_ptr,  # (N, B) partial sums of squares
    norm_ptr,  # (N,) out: ||grad_n||_2
    out_ptr,  # () out: mean_n (||grad_n|| - 1)^2, in the output dtype
    N,
    B,
    ACC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_B: tl.constexpr,
):
    # one program: N and B are small (batch size, and a handful of blocks per sample)
    penalties = tl.zeros((BLOCK_N,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        rows = n0 + tl.arange(0, BLOCK_N)
        row_mask = rows < N
        sumsq = tl.zeros((BLOCK_N,), dtype=ACC)
        for b0 in range(0, B, BLOCK_B):
            cols = b0 + tl.arange(0, BLOCK_B)
            tile_mask = row_mask[:, None] & (cols < B)[None, :]
            tile = tl.load(partial_ptr + rows[:, None] * B + cols[None, :], mask=tile_mask, other=0).to(ACC)
            sumsq += tl.sum(tile, axis=1)
        norm = tl.sqrt(sumsq)
        tl.store(norm_ptr + rows, norm, mask=row_mask)
        penalties += tl.where(row_mask, (norm - 1) * (norm - 1), 0.0)
    tl.store(out_ptr, (tl.sum(penalties, axis=0) / N).to(out_ptr.dtype.element_ty))


@triton.jit
def _penalty_bwd_kernel(
    grad_out_ptr,  # () upstream gradient of the penalty
    x_ptr,  # (N, D) the gradient the penalty was taken of
    norm_ptr,  # (N,) its per-sample norms
    out_ptr,  # (N, D) out: 2/N * grad_out * (norm_n - 1) / norm_n * x[n, :]   (0 where norm_n = 0)
    N,
    D,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < D
    upstream = tl.load(grad_out_ptr).to(ACC)
    norm = tl.load(norm_ptr + n).to(ACC)
    safe_norm = tl.where(norm > 0, norm, 1.0)
    # the norm's subgradient at 0 is 0, as in torch.linalg.vector_norm's backward
    coef = tl.where(norm > 0, 2 * upstream * (norm - 1) / (safe_norm * N), 0.0)
    x = tl.load(x_ptr + n * D + offs, mask=mask, other=0).to(ACC)
    tl.store(out_ptr + n * D + offs, (coef * x).to(out_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------------------------ host launchers (custom ops)
def _rows(tensor: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> contiguous (N, D)."""
    return tensor.contiguous().reshape(tensor.shape[0], -1)


def _grid(n: int, d: int, block: int) -> tuple[int, int]:
    return (n, triton.cdiv(d, block))


def _acc(dtype: torch.dtype):
    return _TL_ACC[accumulator_dtype(dtype)]


@kernel_op("interpolate_fwd")
def interpolate_fwd(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """eps[n] * real + (1 - eps[n]) * fake; real, fake (N, ...) one dtype, eps (N,)."""
    n, d = real.shape[0], real[0].numel()
    out = new_buffer(real.shape, real)
    block = block_size(d, _MAX_BLOCK)
    with device_guard(real):
        _interpolate_fwd_kernel[_grid(n, d, block)](
            _rows(real), _rows(fake), eps.contiguous(), out, d, ACC=_acc(real.dtype), BLOCK=block
        )
    return out


@interpolate_fwd.register_fake
def _(real, fake, eps):
    return real.new_empty(real.shape)


@kernel_op("interpolate_bwd")
def interpolate_bwd(
    grad: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor,
    write_real: bool,
    write_fake: bool,
    write_eps: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d real, d fake, d eps (N,)); an output not asked for comes back as an empty (0,) tensor."""
    n, d = real.shape[0], real[0].numel()
    block = block_size(d, _MAX_BLOCK)
    grid = _grid(n, d, block)
    d_real = new_buffer(real.shape, real) if write_real else real.new_empty(0)
    d_fake = new_buffer(fake.shape, fake) if write_fake else fake.new_empty(0)
    partial = new_buffer(grid, real, dtype=accumulator_dtype(real.dtype)) if write_eps else real.new_empty(0)
    with device_guard(grad):
        _interpolate_bwd_kernel[grid](
            _rows(grad), _rows(real), _rows(fake), eps.contiguous(), d_real, d_fake, partial, d,
            WRITE_REAL=write_real, WRITE_FAKE=write_fake, WRITE_EPS=write_eps, ACC=_acc(real.dtype), BLOCK=block,
        )  # fmt: skip
    d_eps = partial.sum(dim=1).to(eps.dtype) if write_eps else eps.new_empty(0)
    return d_real, d_fake, d_eps


@interpolate_bwd.register_fake
def _(grad, real, fake, eps, write_real, write_fake, write_eps):
    return (
        real.new_empty(real.shape) if write_real else real.new_empty(0),
        fake.new_empty(fake.shape) if write_fake else fake.new_empty(0),
        eps.new_empty(eps.shape) if write_eps else eps.new_empty(0),
    )


@kernel_op("per_sample_dot")
def per_sample_dot(a: torch.Tensor, b: torch.Tensor, square: bool) -> torch.Tensor:
    """(N,) sums over each sample of a*b (of a*a when ``square``; b is then ignored), in the accumulator dtype."""
    n, d = a.shape[0], a[0].numel()
    block = block_size(d, _MAX_BLOCK)
    grid = _grid(n, d, block)
    acc = accumulator_dtype(a.dtype)
    partial = new_buffer(grid, a, dtype=acc)
    a2 = _rows(a)
    b2 = a2 if square else _rows(b)
    with device_guard(a):
        _per_sample_dot_kernel[grid](a2, b2, partial, d, SQUARE=square, ACC=_TL_ACC[acc], BLOCK=block)
    return partial.sum(dim=1)


@per_sample_dot.register_fake
def _(a, b, square):
    return a.new_empty((a.shape[0],), dtype=accumulator_dtype(a.dtype))


@kernel_op("per_sample_scale")
def per_sample_scale(scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """scale[n] * x[n, ...]: scale (N,), x (N, ...) -> x's shape and dtype."""
    n, d = x.shape[0], x[0].numel()
    out = new_buffer(x.shape, x)
    block = block_size(d, _MAX_BLOCK)
    with device_guard(x):
        _per_sample_scale_kernel[_grid(n, d, block)](
            scale.contiguous(), _rows(x), out, d, ACC=_acc(x.dtype), BLOCK=block
        )
    return out


@per_sample_scale.register_fake
def _(scale, x):
    return x.new_empty(x.shape)


@kernel_op("gradient_penalty_fwd")
def gradient_penalty_fwd(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalty () in grad's dtype, per-sample norms (N,) in the accumulator dtype) of grad (N, ...)."""
    n, d = grad.shape[0], grad[0].numel()
    acc = accumulator_dtype(grad.dtype)
    block = block_size(d, _MAX_BLOCK)
    grid = _grid(n, d, block)
    partial = new_buffer(grid, grad, dtype=acc)
    rows = _rows(grad)
    norms = new_buffer((n,), grad, dtype=acc)
    penalty = new_buffer((), grad)
    with device_guard(grad):
        _per_sample_dot_kernel[grid](rows, rows, partial, d, SQUARE=True, ACC=_TL_ACC[acc], BLOCK=block)
        _penalty_finish_kernel[(1,)](
            partial, norms, penalty, n, grid[1], ACC=_TL_ACC[acc],
            BLOCK_N=block_size(n, 64), BLOCK_B=block_size(grid[1], 64),  # 16..64: no degenerate 1-wide tiles
        )  # fmt: skip
    return penalty, norms


@gradient_penalty_fwd.register_fake
def _(grad):
    return grad.new_empty(()), grad.new_empty((grad.shape[0],), dtype=accumulator_dtype(grad.dtype))


@kernel_op("gradient_penalty_bwd")
def gradient_penalty_bwd(grad_out: torch.Tensor, grad: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """d penalty / d grad times ``grad_out``: (N, ...) like ``grad``."""
    n, d = grad.shape[0], grad[0].numel()
    out = new_buffer(grad.shape, grad)
    block = block_size(d, _MAX_BLOCK)
    with device_guard(grad):
        _penalty_bwd_kernel[_grid(n, d, block)](
            grad_out.contiguous(), _rows(grad), norms.contiguous(), out, n, d, ACC=_acc(grad.dtype), BLOCK=block
        )
    return out


@gradient_penalty_bwd.register_fake
def _(grad_out, grad, norms):
    return grad.new_empty(grad.shape)


# ------------------------------------------------------------------------------------------- autograd.Functions
class PerSampleDotFunction(torch.autograd.Function):
    """(N,) per-sample dot products of a and b (N, ...), in the accumulator dtype; differentiable to any order."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return per_sample_dot(a, b, False)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        d_a = PerSampleScaleFunction.apply(grad.to(a.dtype), b) if ctx.needs_input_grad[0] else None
        d_b = PerSampleScaleFunction.apply(grad.to(a.dtype), a) if ctx.needs_input_grad[1] else None
        return d_a, d_b


class PerSampleSumSquaresFunction(torch.autograd.Function):
    """(N,) per-sample sums of squares of x (N, ...) (reads x once); differentiable to any order."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return per_sample_dot(x, x, True)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return PerSampleScaleFunction.apply((2 * grad).to(x.dtype), x)


class PerSampleScaleFunction(torch.autograd.Function):
    """scale[n] * x[n, ...]: scale (N,), x (N, ...) of one dtype; differentiable to any order."""

    @staticmethod
    def forward(ctx, scale, x):
        ctx.save_for_backward(scale, x)
        return per_sample_scale(scale, x)

    @staticmethod
    def backward(ctx, grad):
        scale, x = ctx.saved_tensors
        d_scale = PerSampleDotFunction.apply(grad, x).to(scale.dtype) if ctx.needs_input_grad[0] else None
        d_x = PerSampleScaleFunction.apply(scale, grad) if ctx.needs_input_grad[1] else None
        return d_scale, d_x


def _safe_norm(sumsq: torch.Tensor) -> torch.Tensor:
    """sqrt(sumsq) whose derivative at 0 is 0 (torch.linalg.vector_norm's subgradient), not inf."""
    positive = sumsq > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, sumsq, torch.ones_like(sumsq))), 0.0)


class GradientPenaltyFunction(torch.autograd.Function):
    """mean_n (||grad_n||_2 - 1)^2: forward = one reduction pass + a one-program finish; backward = one pass.

    With ``create_graph=True`` the backward is composed from the per-sample primitives so it is differentiable again.
    """

    @staticmethod
    def forward(ctx, grad):
        penalty, norms = gradient_penalty_fwd(grad)
        ctx.save_for_backward(grad, norms)
        return penalty

    @staticmethod
    def backward(ctx, grad_out):
        grad, norms = ctx.saved_tensors
        if not torch.is_grad_enabled():
            return gradient_penalty_bwd(grad_out, grad, norms)
        n = grad.shape[0]
        norms = _safe_norm(PerSampleSumSquaresFunction.apply(grad))  # recomputed so it carries a graph to grad
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        coef = torch.where(norms > 0, 2 * grad_out.to(norms.dtype) * (norms - 1) / (safe * n), 0.0)
        return PerSampleScaleFunction.apply(coef.to(grad.dtype), grad)


class InterpolateFunction(torch.autograd.Function):
    """eps[n] * real + (1 - eps[n]) * fake with a fused one-pass backward (d real, d fake, and d eps when asked);
    differentiable again through the per-sample primitives."""

    @staticmethod
    def forward(ctx, real, fake, eps):
        ctx.save_for_backward(real, fake, eps)
        return interpolate_fwd(real, fake, eps)

    @staticmethod
    def backward(ctx, grad):
        real, fake, eps = ctx.saved_tensors
        need_real, need_fake, need_eps = ctx.needs_input_grad
        if torch.is_grad_enabled():
            d_real = PerSampleScaleFunction.apply(eps, grad) if need_real else None
            d_fake = PerSampleScaleFunction.apply(1 - eps, grad) if need_fake else None
            d_eps = PerSampleDotFunction.apply(grad, real - fake).to(eps.dtype) if need_eps else None
            return d_real, d_fake, d_eps
        d_real, d_fake, d_eps = interpolate_bwd(grad, real, fake, eps, need_real, need_fake, need_eps)
        return (d_real if need_real else None), (d_fake if need_fake else None), (d_eps if need_eps else None)


# ------------------------------------------------------------------------------------------ functional wrappers
def interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Triton ``eps * real + (1 - eps) * fake``: real, fake (N, ...), eps (N,) or (N,1,...,1) -> (N, ...) in the
    promoted dtype."""
    eps_flat = per_sample_eps(eps, real, fake)
    dtype = common_dtype(real, fake, eps)
    return InterpolateFunction.apply(real.to(dtype), fake.to(dtype), eps_flat.to(dtype))


def gradient_penalty(grad: torch.Tensor) -> torch.Tensor:
    """Triton ``mean_n (||grad_n||_2 - 1)^2`` for grad (N, ...) of any shape: 0-d tensor in grad's dtype."""
    check_gradient(grad)
    return GradientPenaltyFunction.apply(grad)
