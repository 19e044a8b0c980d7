"""The output-safety rule of every command that writes: nothing a command reads is overwritten or read back.

One rule, checked here before any work starts (docs/data.md, "Outputs never touch inputs"):

- an output path (file or folder) may not be, contain or lie inside any input path (folders, list files, image
  files, labels, models); the error names both paths;
- an output file's name ends in what is written (``.csv`` for CSV, ``.onnx`` for ONNX, ...);
- an output must be writable: its folder is created and a probe file written and removed now, so that a read-only
  folder or a parent that is a file is a one-line error before the computation, not a traceback after it;
- an output folder gets a marker file (``OUTPUT_MARKER``), and ``scgan.data.list_images`` never lists the images of a
  sub-folder that holds one, so a command's own outputs (figures, cached colorizations) are never read as inputs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from scgan.errors import InputError

#: File written into every output folder; folders holding it are skipped when images are listed.
OUTPUT_MARKER = ".scgan-output"
_MARKER_TEXT = "written by scgan-bench: `scgan` commands never list the images of this folder as inputs\n"

#: Input arguments that name the embedded sample set rather than a path.
_EMBEDDED = ("samples",)

PathLike = str | os.PathLike


def _absolute(path: PathLike) -> Path:
    """The absolute, symlink-resolved path (the file need not exist)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _relation(output: Path, source: Path) -> str | None:
    if output == source:
        return "is"
    if output in source.parents:
        return "contains"
    if source in output.parents:
        return "lies inside"
    return None


def check_outputs_apart(outputs: Mapping[str, PathLike | None], inputs: Mapping[str, PathLike | Iterable | None]
                        ) -> None:
    """Refuse any output that is, contains or lies inside an input: ``InputError`` naming both paths.

    ``outputs``: label (``"--out"``) -> path. ``inputs``: label (``"--data"``) -> a path or an iterable of paths
    (e.g. every listed image file, for list files whose images live elsewhere); ``None`` and ``"samples"`` (the
    embedded photos) are skipped.
    """
    resolved_outputs = [(label, path, _absolute(path)) for label, path in outputs.items() if path is not None]
    for in_label, value in inputs.items():
        if value is None:
            continue
        paths = [value] if isinstance(value, str | os.PathLike) else list(value)
        for source in paths:
            if isinstance(source, str) and source in _EMBEDDED and not Path(source).exists():
                continue
            source_abs = _absolute(source)
            for out_label, out_path, out_abs in resolved_outputs:
                relation = _relation(out_abs, source_abs)
                if relation is not None:
                    raise InputError(
                        f"{out_label} {out_path} {relation} the input {in_label} {source}: a command never writes "
                        "where it reads; choose an output outside the inputs"
                    )


def check_suffix(label: str, path: PathLike, allowed: Iterable[str], what: str) -> None:
    """An output file whose name does not end in one of ``allowed`` (lower-case, with the dot) is an error."""
    allowed = tuple(allowed)
    if Path(path).suffix.lower() not in allowed:
        raise InputError(f"{label} {path}: {what} is written there, so the name must end in {' or '.join(allowed)}")


def _file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder (a file in the way), or None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _probe_writable(label: str, folder: Path, given: Path) -> None:
    """Create (and remove) a temporary file in ``folder``: the write the command will do later, tried now."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".scgan-probe.", dir=folder)
    except OSError as exc:
        where = "" if folder == given else f" (folder {folder})"
        raise InputError(f"{label} {given}: not writable{where}: {exc.strerror or exc}") from None
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)


def _make_folder(label: str, folder: Path, given: Path) -> None:
    """Create ``folder`` (the output ``given`` or its parent); errors name ``given``, the path the user wrote."""
    blocker = folder if folder.exists() and not folder.is_dir() else _file_ancestor(folder)
    if blocker is not None:
        raise InputError(f"{label} {given}: {blocker} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{label} {given}: cannot create the folder {folder} ({exc.strerror or exc})") from None


def prepare_output_file(label: str, path: PathLike) -> Path:
    """Check that the file ``path`` can be written (its folder made, a probe written there) before any work."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{label} {path}: is a folder; give the path of the file to write")
    _make_folder(label, path.parent, path)
    _probe_writable(label, path.parent, path)
    return path


def prepare_output_dir(label: str, folder: PathLike) -> Path:
    """Create the output folder, check it is writable and mark it as output (``OUTPUT_MARKER``) before any work."""
    folder = Path(folder)
    _make_folder(label, folder, folder)
    _probe_writable(label, folder, folder)
    marker = folder / OUTPUT_MARKER
    if not marker.exists():
        try:
            marker.write_text(_MARKER_TEXT, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{label} {folder}: not writable: {exc.strerror or exc}") from None
    return folder


def is_output_dir(folder: PathLike) -> bool:
    """True for a folder a command wrote (it holds ``OUTPUT_MARKER``)."""
    return (Path(folder) / OUTPUT_MARKER).is_file()


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError`` that names the path(s) involved (the CLI prints it)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
    if not names:
        return str(exc) or reason
    return f"{' -> '.join(_printable(n) for n in names)}: {reason}"


def _printable(name: str) -> str:
    """A path that may hold undecodable bytes (surrogate escapes), as printable text."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def printable_path(path: PathLike) -> str:
    """``path`` as text that can be printed or written as UTF-8 (undecodable bytes shown as ``\\xNN``)."""
    return _printable(os.fspath(path))
