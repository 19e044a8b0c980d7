"""Fused saliency-weighted image and SCGAN attention L1 loss (docs/kernels.md, op 1).

Layers, top to bottom: ``@triton.jit`` kernels -> host launchers wrapped as ``torch.library.custom_op`` (allocate on
the input's device, pick power-of-two blocks, launch; opaque to ``torch.compile``) -> ``torch.autograd.Function`` ->
functional wrappers and ``nn.Module``.

Layout every kernel sees: images flattened to (N, C, P) and saliency to (N, 1, P), P = H*W, contiguous (launchers
call ``.contiguous()``, a no-op for the usual contiguous tensors and one copy for strided ones). Grid: (N, cdiv(P,
BLOCK)); a program handles BLOCK pixels of one sample and loops over the C channels, so the saliency pixel is read
once for all channels. Arithmetic runs in ACC (fp32, or fp64 for fp64 inputs); results are cast to the output dtype.

Import this module only when Triton is importable (``kernels.runtime.HAS_TRITON``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.runtime import accumulator_dtype, block_size, common_dtype, device_guard, kernel_op, new_buffer
from kernels.shapes import check_attention_inputs, check_image_and_saliency

_MAX_BLOCK = 1024
_TL_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}


# --------------------------------------------------------------------------------------------------- Triton kernels
@triton.jit
def _weighted_image_fwd_kernel(
    rgb_ptr,  # (N, C, P) input image
    sal_ptr,  # (N, 1, P) saliency
    out_ptr,  # (N, C, P) rgb * sal
    C,
    P,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < P
    sal = tl.load(sal_ptr + n * P + offs, mask=mask, other=0).to(ACC)
    for c in range(C):
        base = (n * C + c) * P
        x = tl.load(rgb_ptr + base + offs, mask=mask, other=0).to(ACC)
        tl.store(out_ptr + base + offs, (x * sal).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _weighted_image_bwd_kernel(
    grad_ptr,  # (N, C, P) upstream gradient of rgb * sal
    rgb_ptr,  # (N, C, P)
    sal_ptr,  # (N, 1, P)
    d_rgb_ptr,  # (N, C, P) out: grad * sal            (written when WRITE_D_RGB)
    d_sal_ptr,  # (N, 1, P) out: sum_c grad_c * rgb_c  (written when WRITE_D_SAL)
    C,
    P,
    WRITE_D_RGB: tl.constexpr,
    WRITE_D_SAL: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < P
    if WRITE_D_RGB:
        sal = tl.load(sal_ptr + n * P + offs, mask=mask, other=0).to(ACC)
    d_sal = tl.zeros((BLOCK,), dtype=ACC)
    for c in range(C):
        base = (n * C + c) * P
        g = tl.load(grad_ptr + base + offs, mask=mask, other=0).to(ACC)
        if WRITE_D_RGB:
            tl.store(d_rgb_ptr + base + offs, (g * sal).to(d_rgb_ptr.dtype.element_ty), mask=mask)
        if WRITE_D_SAL:
            x = tl.load(rgb_ptr + base + offs, mask=mask, other=0).to(ACC)
            d_sal += g * x
    if WRITE_D_SAL:
        tl.store(d_sal_ptr + n * P + offs, d_sal.to(d_sal_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _attention_l1_fwd_kernel(
    rgb_pred_ptr,  # (N, C, P)
    sal_pred_ptr,  # (N, 1, P)
    rgb_true_ptr,  # (N, C, P)
    sal_true_ptr,  # (N, 1, P)
    partial_ptr,  # (N, num_blocks) out: per-block sums of |rgb_pred*sal_pred - rgb_true*sal_true| / count
    C,
    P,
    count,  # N*C*P, the mean's divisor (applied per block, so the final reduction is a plain sum)
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    block = tl.program_id(1)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    mask = offs < P
    sal_pred = tl.load(sal_pred_ptr + n * P + offs, mask=mask, other=0).to(ACC)
    sal_true = tl.load(sal_true_ptr + n * P + offs, mask=mask, other=0).to(ACC)
    total = tl.zeros((BLOCK,), dtype=ACC)
    for c in range(C):
        base = (n * C + c) * P
        pred = tl.load(rgb_pred_ptr + base + offs, mask=mask, other=0).to(ACC)
        true = tl.load(rgb_true_ptr + base + offs, mask=mask, other=0).to(ACC)
        total += tl.abs(pred * sal_pred - true * sal_true)  # masked lanes are 0*0 - 0*0 = 0
    tl.store(partial_ptr + n * tl.num_programs(1) + block, tl.sum(total, axis=0) / count)


@triton.jit
def _attention_l1_bwd_kernel(
    grad_ptr,  # () upstream gradient of the mean
    rgb_pred_ptr,  # (N, C, P)
    sal_pred_ptr,  # (N, 1, P)
    rgb_true_ptr,  # (N, C, P)
    sal_true_ptr,  # (N, 1, P)
    d_rgb_pred_ptr,  # (N, C, P) out:  g * sign(diff) * sal_pred
    d_sal_pred_ptr,  # (N, 1, P) out:  sum_c g * sign(diff_c) * rgb_pred_c
    d_rgb_true_ptr,  # (N, C, P) out: -g * sign(diff) * sal_true           (when WRITE_TRUE)
    d_sal_true_ptr,  # (N, 1, P) out: -sum_c g * sign(diff_c) * rgb_true_c (when WRITE_TRUE)
    C,
    P,
    count,  # N*C*P, the mean's divisor
    WRITE_TRUE: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < P
    g = tl.load(grad_ptr).to(ACC) / count
    sal_pred = tl.load(sal_pred_ptr + n * P + offs, mask=mask, other=0).to(ACC)
    sal_true = tl.load(sal_true_ptr + n * P + offs, mask=mask, other=0).to(ACC)
    d_sal_pred = tl.zeros((BLOCK,), dtype=ACC)
    d_sal_true = tl.zeros((BLOCK,), dtype=ACC)
    for c in range(C):
        base = (n * C + c) * P
        pred = tl.load(rgb_pred_ptr + base + offs, mask=mask, other=0).to(ACC)
        true = tl.load(rgb_true_ptr + base + offs, mask=mask, other=0).to(ACC)
        diff = pred * sal_pred - true * sal_true
        # d|x|/dx = sign(x) with sign(0) = 0, as torch.abs's backward
        step = tl.where(diff > 0, g, tl.where(diff < 0, -g, 0.0))
        tl.store(d_rgb_pred_ptr + base + offs, (step * sal_pred).to(d_rgb_pred_ptr.dtype.element_ty), mask=mask)
        d_sal_pred += step * pred
        if WRITE_TRUE:
            tl.store(d_rgb_true_ptr + base + offs, (-step * sal_true).to(d_rgb_true_ptr.dtype.element_ty), mask=mask)
            d_sal_true -= step * true
    tl.store(d_sal_pred_ptr + n * P + offs, d_sal_pred.to(d_sal_pred_ptr.dtype.element_ty), mask=mask)
    if WRITE_TRUE:
        tl.store(d_sal_true_ptr + n * P + offs, d_sal_true.to(d_sal_true_ptr.dtype.element_ty), mask=mask)


# ------------------------------------------------------------------------------------ host launchers (custom ops)
def _grid(n: int, pixels: int, block: int) -> tuple[int, int]:
    return (n, triton.cdiv(pixels, block))


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> contiguous (N, C, H*W)."""
    return tensor.contiguous().reshape(tensor.shape[0], tensor.shape[1], -1)


@kernel_op("weighted_image_fwd")
def weighted_image_fwd(rgb: torch.Tensor, sal: torch.Tensor) -> torch.Tensor:
    """rgb (N,C,H,W) * sal (N,1,H,W) -> (N,C,H,W), same dtype as rgb (rgb and sal share a dtype)."""
    n, c, h, w = rgb.shape
    rgb3, sal3 = _flat(rgb), _flat(sal)
    out = new_buffer((n, c, h, w), rgb)
    block = block_size(h * w, _MAX_BLOCK)
    with device_guard(rgb):
        _weighted_image_fwd_kernel[_grid(n, h * w, block)](
            rgb3, sal3, out, c, h * w, ACC=_TL_ACC[accumulator_dtype(rgb.dtype)], BLOCK=block
        )
    return out


@weighted_image_fwd.register_fake
def _(rgb, sal):
    return rgb.new_empty(rgb.shape)


@kernel_op("weighted_image_bwd")
def weighted_image_bwd(
    grad: torch.Tensor, rgb: torch.Tensor, sal: torch.Tensor, write_d_rgb: bool, write_d_sal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d rgb = grad * sal, d sal = sum_c grad * rgb); an output not asked for comes back as an empty (0,) tensor."""
    n, c, h, w = rgb.shape
    grad3, rgb3, sal3 = _flat(grad), _flat(rgb), _flat(sal)
    d_rgb = new_buffer((n, c, h, w), rgb) if write_d_rgb else rgb.new_empty(0)
    d_sal = new_buffer((n, 1, h, w), sal) if write_d_sal else sal.new_empty(0)
    block = block_size(h * w, _MAX_BLOCK)
    with device_guard(grad):
        _weighted_image_bwd_kernel[_grid(n, h * w, block)](
            grad3, rgb3, sal3, d_rgb, d_sal, c, h * w,
            WRITE_D_RGB=write_d_rgb, WRITE_D_SAL=write_d_sal,
            ACC=_TL_ACC[accumulator_dtype(rgb.dtype)], BLOCK=block,
        )  # fmt: skip
    return d_rgb, d_sal


@weighted_image_bwd.register_fake
def _(grad, rgb, sal, write_d_rgb, write_d_sal):
    d_rgb = rgb.new_empty(rgb.shape) if write_d_rgb else rgb.new_empty(0)
    d_sal = sal.new_empty(sal.shape) if write_d_sal else sal.new_empty(0)
    return d_rgb, d_sal


@kernel_op("attention_l1_fwd")
def attention_l1_fwd(
    rgb_pred: torch.Tensor, sal_pred: torch.Tensor, rgb_true: torch.Tensor, sal_true: torch.Tensor
) -> torch.Tensor:
    """0-d mean |rgb_pred*sal_pred - rgb_true*sal_true| in the inputs' dtype (all four share one dtype)."""
    n, c, h, w = rgb_pred.shape
    acc = accumulator_dtype(rgb_pred.dtype)
    block = block_size(h * w, _MAX_BLOCK)
    grid = _grid(n, h * w, block)
    partial = new_buffer(grid, rgb_pred, dtype=acc)
    with device_guard(rgb_pred):
        _attention_l1_fwd_kernel[grid](
            _flat(rgb_pred), _flat(sal_pred), _flat(rgb_true), _flat(sal_true), partial, c, h * w, n * c * h * w,
            ACC=_TL_ACC[acc], BLOCK=block,
        )  # fmt: skip
    # the tiny final reduction over the (N, blocks) partial sums, deterministic (no atomics)
    return partial.sum().to(rgb_pred.dtype)


@attention_l1_fwd.register_fake
def _(rgb_pred, sal_pred, rgb_true, sal_true):
    return rgb_pred.new_empty(())


@kernel_op("attention_l1_bwd")
def attention_l1_bwd(
    grad: torch.Tensor,
    rgb_pred: torch.Tensor,
    sal_pred: torch.Tensor,
    rgb_true: torch.Tensor,
    sal_true: torch.Tensor,
    write_true: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d rgb_pred, d sal_pred, d rgb_true, d sal_true) of ``grad * attention_l1``; the target gradients are empty
    (0,) tensors unless ``write_true``."""
    n, c, h, w = rgb_pred.shape
    d_rgb_pred = new_buffer((n, c, h, w), rgb_pred)
    d_sal_pred = new_buffer((n, 1, h, w), sal_pred)
    d_rgb_true = new_buffer((n, c, h, w), rgb_true) if write_true else rgb_true.new_empty(0)
    d_sal_true = new_buffer((n, 1, h, w), sal_true) if write_true else sal_true.new_empty(0)
    block = block_size(h * w, _MAX_BLOCK)
    with device_guard(rgb_pred):
        _attention_l1_bwd_kernel[_grid(n, h * w, block)](
            grad.contiguous(), _flat(rgb_pred), _flat(sal_pred), _flat(rgb_true), _flat(sal_true),
            d_rgb_pred, d_sal_pred, d_rgb_true, d_sal_true, c, h * w, n * c * h * w,
            WRITE_TRUE=write_true, ACC=_TL_ACC[accumulator_dtype(rgb_pred.dtype)], BLOCK=block,
        )  # fmt: skip
    return d_rgb_pred, d_sal_pred, d_rgb_true, d_sal_true


@attention_l1_bwd.register_fake
def _(grad, rgb_pred, sal_pred, rgb_true, sal_true, write_true):
    return (
        rgb_pred.new_empty(rgb_pred.shape),
        sal_pred.new_empty(sal_pred.shape),
        rgb_true.new_empty(rgb_true.shape) if write_true else rgb_true.new_empty(0),
        sal_true.new_empty(sal_true.shape) if write_true else sal_true.new_empty(0),
    )


# ------------------------------------------------------------------------------------------- autograd.Functions
class WeightedImageFunction(torch.autograd.Function):
    """rgb * sal with a fused one-pass backward; differentiable again (the backward is built from this Function and
    :class:`ChannelDotFunction` when a graph of the backward is requested)."""

    @staticmethod
    def forward(ctx, rgb, sal):
        ctx.save_for_backward(rgb, sal)
        return weighted_image_fwd(rgb, sal)

    @staticmethod
    def backward(ctx, grad):
        rgb, sal = ctx.saved_tensors
        need_rgb, need_sal = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if torch.is_grad_enabled():  # create_graph=True: express the backward with differentiable ops
            d_rgb = WeightedImageFunction.apply(grad, sal) if need_rgb else None
            d_sal = ChannelDotFunction.apply(grad, rgb) if need_sal else None
            return d_rgb, d_sal
        d_rgb, d_sal = weighted_image_bwd(grad, rgb, sal, need_rgb, need_sal)
        return (d_rgb if need_rgb else None), (d_sal if need_sal else None)


class ChannelDotFunction(torch.autograd.Function):
    """sum over channels of a * b: a, b (N,C,H,W) -> (N,1,H,W) (the saliency gradient of the weighted image)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        n, _, h, w = a.shape
        unused_sal = a.new_empty((n, 1, h, w))  # shape/dtype carrier: the kernel reads sal only for d rgb
        _, d_sal = weighted_image_bwd(a, b, unused_sal, False, True)
        return d_sal

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        d_a = WeightedImageFunction.apply(b, grad) if ctx.needs_input_grad[0] else None
        d_b = WeightedImageFunction.apply(a, grad) if ctx.needs_input_grad[1] else None
        return d_a, d_b


class AttentionL1Function(torch.autograd.Function):
    """mean |rgb_pred*sal_pred - rgb_true*sal_true| with a one-pass forward and a one-pass backward.

    Gradients flow to all four inputs: the predictions always, the targets only when they require grad (in SCGAN they
    do not, and the kernel then skips writing them). With ``create_graph=True`` the backward is recomputed from the
    reference expression so that it is itself differentiable (the second derivative of |x| is 0 almost everywhere).
    """

    @staticmethod
    def forward(ctx, rgb_pred, sal_pred, rgb_true, sal_true):
        ctx.save_for_backward(rgb_pred, sal_pred, rgb_true, sal_true)
        return attention_l1_fwd(rgb_pred, sal_pred, rgb_true, sal_true)

    @staticmethod
    def backward(ctx, grad):
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if torch.is_grad_enabled():
            rgb_pred, sal_pred, rgb_true, sal_true = inputs
            loss = (rgb_pred * sal_pred - rgb_true * sal_true).abs().mean()
            wanted = [t for t, need in zip(inputs, needs) if need]
            grads = iter(torch.autograd.grad(loss, wanted, grad, create_graph=True))
            return tuple(next(grads) if need else None for need in needs)
        write_true = needs[2] or needs[3]
        grads = attention_l1_bwd(grad, *inputs, write_true)
        return tuple(g if need else None for g, need in zip(grads, needs))


# ------------------------------------------------------------------------------------------ functional wrappers
def weighted_image(rgb: torch.Tensor, sal: torch.Tensor) -> torch.Tensor:
    """Triton ``rgb * sal``: rgb (N,C,H,W), sal (N,1,H,W) broadcast over C -> (N,C,H,W) in the promoted dtype."""
    check_image_and_saliency(rgb, sal, "rgb", "sal")
    dtype = common_dtype(rgb, sal)
    return WeightedImageFunction.apply(rgb.to(dtype), sal.to(dtype))


def attention_l1(
    rgb_pred: torch.Tensor, sal_pred: torch.Tensor, rgb_true: torch.Tensor, sal_true: torch.Tensor
) -> torch.Tensor:
    """Triton ``mean |rgb_pred * sal_pred - rgb_true * sal_true|`` (0-d, promoted dtype); rgb_* (N,C,H,W), sal_*
    (N,1,H,W)."""
    check_attention_inputs(rgb_pred, sal_pred, rgb_true, sal_true)
    dtype = common_dtype(rgb_pred, sal_pred, rgb_true, sal_true)
    return AttentionL1Function.apply(rgb_pred.to(dtype), sal_pred.to(dtype), rgb_true.to(dtype), sal_true.to(dtype))
