"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash or an error half-way never leaves a truncated file where a good one (or none) was before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``, on error delete it.

    Use for writers that want a file name (``torch.save``, ``Image.save``, ``df.to_csv``, ONNX export).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    # mkstemp creates the file with mode 0600 and os.replace keeps it: give the output the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


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
