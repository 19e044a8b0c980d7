"""How close a kernel result must be to the float64 reference, per input dtype: data, not scattered literals.

Comparisons are made on tensors divided by the reference's largest magnitude (``scale``), so ``atol`` is relative to
the tensor's scale: attention-loss gradients are ~1/(N*C*H*W) in size and an absolute 1e-2 would pass anything.
The reference is always evaluated in float64 on the *same* (already rounded) inputs, so the table measures only the
kernel's own arithmetic and output rounding.
"""

from __future__ import annotations

import torch

#: dtype -> (atol, rtol), applied to tensors normalised by the reference's max |value|.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    # fp64 kernels accumulate in fp64; only the summation order differs from PyTorch's (blocked vs pairwise).
    torch.float64: (1e-12, 1e-10),
    # fp32: one rounding per output element plus a blocked fp32 sum over up to ~1e5 terms (error ~ sqrt(n) * 6e-8).
    torch.float32: (2e-6, 2e-5),
    # fp16 (10-bit mantissa, unit roundoff 4.9e-4): outputs are rounded once to fp16 after fp32 arithmetic.
    torch.float16: (2e-3, 2e-3),
    # bf16 (7-bit mantissa, unit roundoff 3.9e-3): outputs are rounded once to bf16 after fp32 arithmetic; the
    # per-sample eps of interpolate and the penalty's coefficient are bf16 inputs too, so allow ~2.5 ulp.
    torch.bfloat16: (1e-2, 1e-2),
}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """(atol, rtol) for results computed from inputs of ``dtype`` (see :data:`TOLERANCES`)."""
    try:
        return TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"no kernel tolerance for dtype {dtype}; known: {list(TOLERANCES)}") from None


def assert_close_to_reference(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """Assert ``actual`` matches the float64 ``expected`` within :data:`TOLERANCES` for ``dtype`` (scaled; see above).

    NaN anywhere in ``actual`` fails (an unwritten, poisoned element).
    """
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {tuple(actual.shape)} != reference shape {tuple(expected.shape)}")
    atol, rtol = tolerance(dtype)
    actual = actual.detach().to(torch.float64)
    expected = expected.detach().to(torch.float64)
    scale = expected.abs().max().item() if expected.numel() else 1.0
    scale = scale if scale > 0 else 1.0
    torch.testing.assert_close(
        actual / scale,
        expected / scale,
        atol=atol,
        rtol=rtol,
        msg=lambda message: f"{what} ({dtype}, scale {scale:.3g}): {message}",
    )
