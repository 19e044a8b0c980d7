"""Where the Triton path can run, output allocation, and small launch helpers shared by the kernel files.

Rules (docs/kernels.md):

- Triton runs on CUDA tensors. On CPU tensors it runs only through the Triton interpreter, which is on when the
  environment variable ``TRITON_INTERPRET`` is ``"1"`` *when this module is first imported* (``@triton.jit`` reads the
  same variable when a kernel is defined, so setting it later would not change the kernels already defined;
  ``conftest.py`` sets it before any test imports ``kernels`` when no GPU is present).
- Without an importable ``triton`` every op falls back to ``kernels.reference``.

This module imports neither ``scgan`` nor ``metrics`` (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

try:
    import triton  # noqa: F401  (imported to learn whether it is there)

    HAS_TRITON = True
    TRITON_IMPORT_ERROR: str | None = None
except ImportError as error:  # Triton ships Linux x86_64 wheels only
    HAS_TRITON = False
    TRITON_IMPORT_ERROR = f"{type(error).__name__}: {error}"

#: True when the Triton interpreter was on at import time: CPU tensors may then take the Triton path.
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

#: dtypes the Triton kernels accept; anything else (integers, complex) takes the reference path.
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_POISON_OUTPUTS = False


def triton_unavailable_reason(*tensors: torch.Tensor) -> str | None:
    """Why the Triton path cannot run on these tensors, or None when it can."""
    if not HAS_TRITON:
        return f"triton is not importable ({TRITON_IMPORT_ERROR})"
    devices = {t.device for t in tensors}
    if len(devices) != 1:
        return f"tensors are on different devices: {sorted(str(d) for d in devices)}"
    device = devices.pop()
    if device.type == "cpu" and not INTERPRET:
        return "tensors are on the CPU and TRITON_INTERPRET=1 was not set before kernels was imported"
    if device.type not in ("cuda", "cpu"):
        return f"Triton does not run on {device.type} tensors"
    bad = [t.dtype for t in tensors if t.dtype not in TRITON_DTYPES]
    if bad:
        return f"unsupported dtype {bad[0]} (the kernels take float16, bfloat16, float32, float64)"
    return None


def triton_can_run(*tensors: torch.Tensor) -> bool:
    """True when the Triton kernels can take these tensors (CUDA, or CPU under the interpreter)."""
    return triton_unavailable_reason(*tensors) is None


@contextlib.contextmanager
def poisoned_outputs(enabled: bool = True) -> Iterator[None]:
    """Inside this block every buffer a launcher allocates (outputs and partial sums) starts as NaN, not uninitialised.

    Tests use it so that an element a kernel forgets to write shows up as NaN instead of passing by luck.
    """
    global _POISON_OUTPUTS
    previous = _POISON_OUTPUTS
    _POISON_OUTPUTS = enabled
    try:
        yield
    finally:
        _POISON_OUTPUTS = previous


def new_buffer(shape, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Allocate a kernel output on ``like.device`` (NaN-filled inside :func:`poisoned_outputs`)."""
    dtype = like.dtype if dtype is None else dtype
    if _POISON_OUTPUTS:
        return torch.full(shape, float("nan"), dtype=dtype, device=like.device)
    return torch.empty(shape, dtype=dtype, device=like.device)


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 inputs accumulate in fp64 (so fp64 gradcheck is exact enough); every other float type in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def next_power_of_2(n: int) -> int:
    """Smallest power of two >= n (>= 1)."""
    return 1 << max(0, int(n) - 1).bit_length()


def block_size(n: int, max_block: int) -> int:
    """Power-of-two block for ``n`` elements: the next power of two, capped at ``max_block`` (at least 16)."""
    return max(16, min(max_block, next_power_of_2(n)))


def common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype PyTorch's type promotion gives these tensors (what the reference computes in)."""
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


class KernelOp:
    """A host launcher registered as the ``torch.library`` custom op ``scgan_kernels::<name>``.

    While ``torch.compile`` traces, calls go through the custom op, which the compiler treats as opaque (its output
    shapes come from the ``register_fake`` function). In eager mode calls go straight to the launcher, skipping the
    dispatcher's per-call overhead (tens of microseconds, comparable to a small kernel's run time).
    """

    def __init__(self, name: str, launcher) -> None:
        self.name = name
        self.launcher = launcher
        self.custom_op = torch.library.custom_op(f"scgan_kernels::{name}", launcher, mutates_args=())
        self.__doc__ = launcher.__doc__

    def register_fake(self, fake):
        """Register the shape-only implementation used under ``torch.compile`` / fake tensors."""
        self.custom_op.register_fake(fake)
        return fake

    @property
    def op(self):
        """The registered operator, ``torch.ops.scgan_kernels.<name>``."""
        return getattr(torch.ops.scgan_kernels, self.name)

    def __call__(self, *args):
        if torch.compiler.is_compiling():
            return self.op(*args)
        return self.launcher(*args)


def kernel_op(name: str):
    """Decorator: ``@kernel_op("weighted_image_fwd")`` on a launcher makes it a :class:`KernelOp`."""

    def wrap(launcher) -> KernelOp:
        return KernelOp(name, launcher)

    return wrap


def device_guard(tensor: torch.Tensor):
    """Make ``tensor``'s GPU the current CUDA device while a kernel launches (Triton launches on the current
    device's stream, so a tensor on ``cuda:1`` while ``cuda:0`` is current would otherwise be read by the wrong
    device). A no-op for CPU tensors (index -1: CUDA is not even initialised)."""
    return torch.cuda.device(tensor.device if tensor.is_cuda else -1)
