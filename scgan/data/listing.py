"""Which images a command works on: listing folders and list files, the embedded samples, labels, scanning for gray
and unreadable files, and pairing ground truth with predictions by name.

An ``ImageEntry.name`` is the relative POSIX path of the file inside its source (folder or list file); it is the key
that pairs ground truth with predictions, labels and saliency maps (docs/data.md).
"""

from __future__ import annotations

import csv
import os
import posixpath
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from scgan.data.imageio import GRAY_CHROMA_THRESHOLD, ImageEntry, chroma_p99, load_image
from scgan.errors import ImageReadError, InputError
from scgan.paths import OUTPUT_MARKER

# File name endings recognised as images when listing a folder (compared lower-case).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})
LIST_FILE_EXTENSIONS = frozenset({".txt", ".lst"})

# How many names an error message lists before saying "and N more".
_MAX_NAMES_IN_ERROR = 20


# ----------------------------------------------------------------------------------------------------------------------
# Entries, listing, samples
# ----------------------------------------------------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    # Hidden files include our own atomic-write temporaries (".name.XXXX.tmp.png") and macOS "._x.jpg" forks.
    return name.startswith(".")


def _is_output_folder(folder: str | os.PathLike) -> bool:
    # A folder some command wrote (it holds the marker of scgan.paths): its figures, caches and colorizations are
    # outputs, never inputs of a data set that contains it (docs/data.md).
    return os.path.isfile(os.path.join(folder, OUTPUT_MARKER))


def _checked_name(name: str, full: Path) -> str:
    """``name`` if it can be written as UTF-8 (CSV rows, JSON reports); an ``InputError`` naming the file otherwise."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(full).decode("utf-8", "backslashreplace")
        raise InputError(f"{shown}: file name is not valid UTF-8 (reports cannot name it); rename the file") from None
    return name


def _list_folder(folder: Path, recursive: bool) -> list[ImageEntry]:
    entries: list[ImageEntry] = []
    if recursive:
        seen_dirs: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen_dirs:  # a symlink loop: walk each real folder once
                dirnames[:] = []
                continue
            seen_dirs.add(real)
            # sorted: when two paths lead to one real folder, the first in name order is the one listed
            dirnames[:] = sorted(
                d for d in dirnames if not _is_hidden(d) and not _is_output_folder(os.path.join(dirpath, d))
            )
            for filename in filenames:
                if _is_hidden(filename) or Path(filename).suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                full = Path(dirpath) / filename
                rel = full.relative_to(folder).as_posix()
                entries.append(ImageEntry(_checked_name(rel, full), full))
    else:
        for child in folder.iterdir():
            if _is_hidden(child.name) or child.suffix.lower() not in IMAGE_EXTENSIONS or not child.is_file():
                continue
            entries.append(ImageEntry(_checked_name(child.name, child), child))
    entries.sort(key=lambda e: e.name)
    return entries


def _list_file_entries(list_file: Path) -> list[ImageEntry]:
    base = list_file.parent
    entries: list[ImageEntry] = []
    missing: list[str] = []
    seen: dict[str, int] = {}
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{list_file}: list file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        listed = Path(line)
        full = listed if listed.is_absolute() else base / listed
        name = _entry_name_for_listed_path(line, full, base)
        if name in seen:
            raise InputError(
                f"{list_file}: line {lineno}: {line!r} gives the image name {name!r} already given on line {seen[name]}"
            )
        seen[name] = lineno
        if not full.is_file():
            missing.append(f"line {lineno}: {line}")
            continue
        entries.append(ImageEntry(name, full))
    if missing:
        raise FileNotFoundError(f"{list_file}: {len(missing)} listed file(s) not found: {_format_names(missing)}")
    entries.sort(key=lambda e: e.name)
    return entries


def _entry_name_for_listed_path(line: str, full: Path, base: Path) -> str:
    """Name of a list-file entry: its path relative to the list file's folder when inside it, else its file name.

    Names never start with "/" or contain "..", so that ``out_dir / name`` stays inside ``out_dir``.
    """
    posix_line = line.replace("\\", "/")
    if not PurePosixPath(posix_line).is_absolute():
        normal = posixpath.normpath(posix_line)
        if normal != ".." and not normal.startswith("../"):
            return normal
    try:
        return Path(os.path.abspath(full)).relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return full.name


# Embedded sample set (docs/data.md): name -> (package, file inside the package). Every one of these files ships
# in the installed wheel, so reading them never calls pooch (scikit-image's downloader).
_SKIMAGE_SAMPLES = {
    "astronaut.png": "astronaut.png",
    "chelsea.png": "chelsea.png",
    "coffee.png": "coffee.png",
    "rocket.jpg": "rocket.jpg",
    "stereo_motorcycle.png": "motorcycle_left.png",  # skimage.data.stereo_motorcycle()[0], the left view
}
_MATPLOTLIB_SAMPLES = {"grace_hopper.jpg": "grace_hopper.jpg"}
SAMPLE_NAMES = tuple(sorted([*_SKIMAGE_SAMPLES, *_MATPLOTLIB_SAMPLES]))


def sample_entries() -> list[ImageEntry]:
    """The embedded sample photos (scikit-image and matplotlib), as entries pointing at the bundled files."""
    import importlib.resources

    entries = []
    skimage_data = importlib.resources.files("skimage") / "data"
    for name, filename in _SKIMAGE_SAMPLES.items():
        entries.append(ImageEntry(name, Path(str(skimage_data / filename))))
    from matplotlib import cbook

    for name, filename in _MATPLOTLIB_SAMPLES.items():
        entries.append(ImageEntry(name, Path(cbook.get_sample_data(filename, asfileobj=False))))
    missing = [f"{e.name} ({e.path})" for e in entries if not e.path.is_file()]
    if missing:
        raise FileNotFoundError(
            "embedded sample photos missing from the installed scikit-image/matplotlib: " + ", ".join(missing)
        )
    entries.sort(key=lambda e: e.name)
    return entries


def list_images(
    source: str | os.PathLike,
    recursive: bool = True,
    labels: str | os.PathLike | Mapping[str, int] | None = None,
) -> list[ImageEntry]:
    """List the images of ``source``, sorted by name (relative POSIX path, code-point order).

    ``source``: a folder (files whose extension, any case, is in ``IMAGE_EXTENSIONS``; hidden files and folders are
    skipped; ``recursive=False`` lists only the top level), a list file (``.txt``/``.lst``: one path per line,
    relative to the list file's folder or absolute, blank lines and ``#`` comments ignored), a single image file
    (named by its file name), or the string ``"samples"`` (the embedded sample set; use ``"./samples"`` for a folder
    of that name).
    ``labels``: optional ``labels.csv`` path (``file,label``) or dict name -> label; every image must have one.

    Raises ``FileNotFoundError`` for a missing source or listed file, ``InputError`` for an empty set, duplicate names
    or images without a label.
    """
    if isinstance(source, str) and not source.strip():
        # Path("") is the current folder: an unset option must not silently list whatever is there.
        raise InputError("image source is empty: give a folder, a list file, an image file or 'samples'")
    if isinstance(source, str) and source == "samples":
        if Path("samples").exists():
            warnings.warn(
                "'samples' names the embedded sample set; use './samples' for the folder of that name",
                stacklevel=2,
            )
        entries = sample_entries()
        source_desc = "embedded sample set"
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"image source not found: {path}")
        if path.is_dir():
            entries = _list_folder(path, recursive)
            if not entries:
                scope = "recursively" if recursive else "at the top level (not recursive)"
                exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
                raise InputError(f"{path}: no image files found {scope} (extensions: {exts})")
        elif path.suffix.lower() in LIST_FILE_EXTENSIONS:
            entries = _list_file_entries(path)
            if not entries:
                raise InputError(f"{path}: list file names no images")
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            entries = [ImageEntry(path.name, path)]  # one image file: a set of one, named by its file name
        else:
            exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
            raise InputError(f"{path}: not a folder, a list file (.txt/.lst) or an image file ({exts})")
        source_desc = str(path)
    if labels is not None:
        label_map = labels if isinstance(labels, Mapping) else load_labels(labels)
        entries = attach_labels(entries, label_map, source=source_desc)
    return entries


# ----------------------------------------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------------------------------------


def load_labels(csv_path: str | os.PathLike) -> dict[str, int]:
    """Read a labels CSV with a header holding ``file`` and ``label`` (other columns, e.g. ``wnid``, are ignored).

    Returns name -> label (int >= 0); names are normalised to POSIX form. Raises ``FileNotFoundError`` or
    ``InputError`` (missing columns, a non-integer or negative label, a duplicate file) naming the file and line.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels file not found: {csv_path}")
    try:
        return _read_labels(csv_path)
    except UnicodeDecodeError as exc:
        raise InputError(f"{csv_path}: labels file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read_labels(csv_path: Path) -> dict[str, int]:
    labels: dict[str, int] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "file" not in columns or "label" not in columns:
            raise InputError(f"{csv_path}: needs a header with columns 'file' and 'label', found {columns}")
        reader.fieldnames = columns
        for row in reader:
            lineno = reader.line_num
            name = (row.get("file") or "").strip().replace("\\", "/")
            value = (row.get("label") or "").strip()
            if not name:
                raise InputError(f"{csv_path}: line {lineno}: empty 'file'")
            try:
                label = int(value)
            except ValueError:
                raise InputError(f"{csv_path}: line {lineno}: label {value!r} of {name!r} is not an integer") from None
            if label < 0:
                raise InputError(f"{csv_path}: line {lineno}: label {label} of {name!r} is negative")
            name = posixpath.normpath(name)
            if name in labels:
                raise InputError(f"{csv_path}: line {lineno}: {name!r} listed twice")
            labels[name] = label
    if not labels:
        raise InputError(f"{csv_path}: no labels")
    return labels


def attach_labels(
    entries: Sequence[ImageEntry], labels: Mapping[str, int], source: str = "images"
) -> list[ImageEntry]:
    """Return the entries with their labels; every entry's name must be in ``labels`` (extra labels are fine)."""
    missing = [e.name for e in entries if e.name not in labels]
    if missing:
        raise InputError(f"{source}: {len(missing)} image(s) have no label: {_format_names(missing)}")
    return [ImageEntry(e.name, e.path, int(labels[e.name])) for e in entries]


# ----------------------------------------------------------------------------------------------------------------------
# Scanning
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    """Outcome of ``scan_images``: the usable entries, the gray ones excluded, and the unreadable ones.

    ``bad``: ``(name, reason)`` pairs (only with ``skip_bad=True``). ``chroma``: name -> ``chroma_p99`` of every
    readable image (kept and gray).
    """

    kept: list[ImageEntry] = field(default_factory=list)
    gray_excluded: list[ImageEntry] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    chroma: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts and names, ready for a JSON report."""
        return {
            "kept": len(self.kept),
            "gray_excluded": [e.name for e in self.gray_excluded],
            "bad": [{"file": name, "reason": reason} for name, reason in self.bad],
        }


def _chroma_of_file(entry: ImageEntry) -> float | ImageReadError:
    try:
        return chroma_p99(load_image(entry.path))
    except ImageReadError as exc:
        return exc


def scan_images(
    entries: Iterable[ImageEntry],
    skip_bad: bool = False,
    exclude_gray: bool = True,
    progress: bool = False,
    workers: int = 0,
) -> ScanResult:
    """Read every entry once: sort out unreadable files and gray images (docs/data.md).

    Strict by default: the first unreadable file (in entry order) raises ``ImageReadError`` naming it. With
    ``skip_bad`` the file is recorded in ``bad`` as ``(name, reason)`` and the scan goes on. With ``exclude_gray`` gray
    images go to ``gray_excluded`` instead of ``kept``. ``progress`` shows a tqdm bar. ``workers > 0`` decodes in that
    many threads (Pillow releases the GIL while decoding); the result is the same, in entry order.
    """
    entries = list(entries)
    result = ScanResult()
    if workers > 0:
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=workers)
        outcomes: Iterable[float | ImageReadError] = executor.map(_chroma_of_file, entries)
    else:
        executor = None
        outcomes = map(_chroma_of_file, entries)
    try:
        if progress:
            from tqdm import tqdm

            outcomes = tqdm(outcomes, total=len(entries), desc="scanning images", unit="img")
        for entry, outcome in zip(entries, outcomes):
            if isinstance(outcome, ImageReadError):
                if not skip_bad:
                    raise outcome
                result.bad.append((entry.name, outcome.reason))
                continue
            result.chroma[entry.name] = outcome
            if exclude_gray and outcome <= GRAY_CHROMA_THRESHOLD:
                result.gray_excluded.append(entry)
            else:
                result.kept.append(entry)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return result


# ----------------------------------------------------------------------------------------------------------------------
# Pairing
# ----------------------------------------------------------------------------------------------------------------------


def name_stem(name: str) -> str:
    """The name without its last extension, folders kept: ``"sub/a.jpg"`` -> ``"sub/a"``."""
    head, tail = posixpath.split(name)
    stem = tail.rsplit(".", 1)[0] if "." in tail.lstrip(".") else tail
    return posixpath.join(head, stem) if head else stem


def output_name(name: str, suffix: str = ".png") -> str:
    """The name under which an output for image ``name`` is written: ``"sub/a.JPEG"`` -> ``"sub/a.png"``.

    Writers of predictions and saliency maps use it so that ``pair_by_name`` pairs their files with the inputs.
    """
    return name_stem(name) + suffix


def _format_names(names: Sequence[str], limit: int = _MAX_NAMES_IN_ERROR) -> str:
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... and {len(names) - limit} more"
    return shown


def _by_key(entries: Sequence[ImageEntry], key, side: str) -> dict[str, ImageEntry]:
    table: dict[str, ImageEntry] = {}
    clashes: dict[str, list[str]] = {}
    for entry in entries:
        k = key(entry.name)
        if k in table:
            clashes.setdefault(k, [table[k].name]).append(entry.name)
        else:
            table[k] = entry
    if clashes:
        described = [f"{k!r}: {' / '.join(v)}" for k, v in sorted(clashes.items())]
        raise InputError(
            f"cannot pair by name without extension: {side} has several files with the same stem "
            f"({_format_names(described)}); rename them or pair by full name"
        )
    return table


def pair_by_name(
    gt_entries: Sequence[ImageEntry], pred_entries: Sequence[ImageEntry], by: str = "auto"
) -> list[tuple[ImageEntry, ImageEntry]]:
    """Pair ground truth with predictions; returns ``(gt, pred)`` pairs in ground-truth order.

    ``by="name"``: identical relative paths. ``by="stem"``: relative path without the last extension
    (``sub/a.jpg`` pairs with ``sub/a.png``); two files of one side with the same stem are an error.
    ``by="auto"`` (default): by name when both sides have exactly the same names, otherwise by stem.
    A ground-truth file without prediction (missing) or a prediction without ground truth (extra) is an
    ``InputError`` naming them (up to 20 of each).
    """
    if by not in ("auto", "name", "stem"):
        raise InputError(f"pair_by_name: by must be 'auto', 'name' or 'stem', got {by!r}")
    gt_entries = list(gt_entries)
    pred_entries = list(pred_entries)
    if by == "auto":
        same = {e.name for e in gt_entries} == {e.name for e in pred_entries}
        by = "name" if same else "stem"
    key = (lambda n: n) if by == "name" else name_stem
    gt_table = _by_key(gt_entries, key, "ground truth")
    pred_table = _by_key(pred_entries, key, "predictions")
    missing = [gt_table[k].name for k in gt_table if k not in pred_table]
    extra = [pred_table[k].name for k in pred_table if k not in gt_table]
    if missing or extra:
        how = "same relative path" if by == "name" else "same relative path without extension"
        parts = []
        if missing:
            parts.append(f"{len(missing)} ground-truth file(s) without prediction: {_format_names(missing)}")
        if extra:
            parts.append(f"{len(extra)} prediction file(s) without ground truth: {_format_names(extra)}")
        raise InputError(f"ground truth and predictions do not pair ({how}): " + "; ".join(parts))
    return [(gt, pred_table[key(gt.name)]) for gt in gt_entries]
