"""Atomic file output, the project's one implementation: write to a temporary file in the target's folder, then rename
it over the target, so a crash or an error half-way never leaves a truncated file where a good one (or none) was.

It lives in ``metrics`` because ``metrics`` is the lowest layer that writes files and may import no other project
package; ``scgan.atomic`` builds its text/bytes writers on it.
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
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates mode 0600 (and some writers recreate the file): give the output the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
