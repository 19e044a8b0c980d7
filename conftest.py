"""Test configuration shared by tests/ and bench/.

Triton kernels run on CPU only through the interpreter, and TRITON_INTERPRET must be set before any module that
defines a kernel is imported; this file is loaded by pytest before any test module, so it is the place.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parent
# ../shared beside the project root (docs/architecture.md, data for development); SCGAN_SHARED_DIR overrides it.
SHARED_DIR = Path(os.environ.get("SCGAN_SHARED_DIR", ROOT.parent / "shared"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (models and data for development); skips the test with a reason when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared folder not found at {SHARED_DIR} (set SCGAN_SHARED_DIR)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def shared_data(shared_dir) -> Path:
    """../shared/data: ImageNet samples with labels, BSDS500 (see its README)."""
    path = shared_dir / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def u2netp_path(shared_dir) -> Path:
    """../shared/models/u2netp.onnx, the development salient-object-detection model."""
    path = shared_dir / "models" / "u2netp.onnx"
    if not path.is_file():
        pytest.skip(f"U2-Net-p model not found at {path}")
    return path


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test: tiny shapes gain nothing from two, and on a busy shared 2-core CPU the
    threads spin (a tiny double backward then takes seconds). Use with ``pytest.mark.usefixtures("one_torch_thread")``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
