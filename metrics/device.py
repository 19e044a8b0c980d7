"""Device names, the project's one resolver: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` to a device string.

In ``metrics`` because it is the lowest layer that picks a device and may import no other project package; ``scgan``
turns its ``ValueError`` into a one-line ``InputError`` naming the option (``scgan.devices``).
"""

from __future__ import annotations

import torch

__all__ = ["cuda_usable", "resolve_device"]


def cuda_usable() -> bool:
    """True only when torch sees a GPU and this onnxruntime build has the CUDA provider.

    onnxruntime-gpu lists ``CUDAExecutionProvider`` as available even on machines without a GPU; asking for it
    there prints CUDA errors and falls back to CPU, so torch's view of the hardware decides.
    """
    import onnxruntime as ort

    return torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_device(device: str | torch.device, backend: str = "torch") -> str:
    """Normalise ``device`` to ``"cpu"`` or ``"cuda[:N]"``; ``"auto"`` picks CUDA only when it is really usable by
    ``backend`` (``torch``: a GPU; ``onnxruntime``: a GPU and :func:`cuda_usable`).

    Raises ValueError for an unknown device or a CUDA device on a machine without one.
    """
    text = str(device)
    if text == "auto":
        usable = cuda_usable() if backend == "onnxruntime" else torch.cuda.is_available()
        return "cuda" if usable else "cpu"
    if text == "cpu":
        return "cpu"
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {text!r}: no CUDA GPU is available here (use device='cpu' or 'auto')")
        return text
    raise ValueError(f"device {text!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'")
