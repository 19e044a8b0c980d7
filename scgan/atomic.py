"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash or an error half-way never leaves a truncated file where a good one (or none) was before. ``atomic_path`` is
``metrics.atomic.atomic_path`` (its one home, importable by every layer); this module adds the text and bytes writers
and the clean-up of temporaries a killed writer left.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from metrics.atomic import atomic_path

__all__ = ["atomic_path", "write_text", "write_bytes", "leftover_temporaries", "remove_leftover_temporaries"]


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def leftover_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporaries ``atomic_path(path)`` left beside ``path`` when its writer was killed (``.NAME.*.tmpSUFFIX``)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix, suffix = f".{path.name}.", ".tmp" + path.suffix
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix))


def remove_leftover_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete :func:`leftover_temporaries` of ``path``; returns what was removed.

    Only for files with one writer (a run's checkpoint), called when that writer (re)starts or has just written the
    file: another process's write in progress would otherwise lose its temporary file.
    """
    removed = []
    for leftover in leftover_temporaries(path):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed.append(leftover)
    return removed
