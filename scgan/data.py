"""The image data layer: reading, listing, labels, the gray rule, resize policies, datasets and pairing.

Everything that touches image files goes through here, so that every command reads a photo the same way
(DESIGN section 3). Conventions:

- ``load_image`` returns ``np.ndarray`` uint8 ``(H, W, 3)``, RGB, sRGB values as stored (ICC profiles are not applied,
  like OpenCV and scikit-image); EXIF orientation applied; palette, CMYK, alpha, 16-bit, gray and 1-bit files converted.
- In memory for models and metrics: ``torch.float32`` ``(3, H, W)`` (one image) or ``(N, 3, H, W)``, RGB, ``[0, 1]``.
- An ``ImageEntry.name`` is the relative POSIX path of the file inside its source (folder or list file); it is the key
  that pairs ground truth with predictions, labels and saliency maps.

See docs/data.md for the rules and the reasons behind them.
"""

from __future__ import annotations

import csv
import os
import posixpath
import struct
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from scgan.atomic import atomic_path
from scgan.errors import ImageReadError, InputError
from scgan.paths import OUTPUT_MARKER

__all__ = [
    "IMAGE_EXTENSIONS",
    "GRAY_CHROMA_THRESHOLD",
    "SAMPLE_NAMES",
    "RESIZE_POLICIES",
    "ImageEntry",
    "ResizePolicy",
    "ScanResult",
    "ImageDataset",
    "DatasetImageReadError",
    "load_image",
    "load_for_protocol",
    "MAX_NATIVE_PIXELS",
    "chroma_p99",
    "is_gray",
    "list_images",
    "sample_entries",
    "load_labels",
    "attach_labels",
    "scan_images",
    "get_resize_policy",
    "resize_image",
    "resize_policy_info",
    "resize_bilinear_opencv",
    "to_tensor",
    "to_uint8",
    "save_image",
    "pair_by_name",
    "name_stem",
    "output_name",
    "load_batch",
]

# File name endings recognised as images when listing a folder (compared lower-case).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})
LIST_FILE_EXTENSIONS = frozenset({".txt", ".lst"})

# DESIGN section 3: an image whose 99th percentile of |R-G| + |G-B| (0..255 values) is at most this is gray.
GRAY_CHROMA_THRESHOLD = 2.0

# How many names an error message lists before saying "and N more".
_MAX_NAMES_IN_ERROR = 20


@dataclass(frozen=True)
class ImageEntry:
    """One image of a data set.

    ``name``: relative POSIX path inside its source (``"sub/a.jpg"``), the pairing key.
    ``path``: where the file is.
    ``label``: class index (0..999 for ImageNet), ``-1`` when the set has no labels.
    """

    name: str
    path: Path
    label: int = -1

    @property
    def has_label(self) -> bool:
        return self.label >= 0


# ----------------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------------

# What Pillow (and the decoders under it) raise on a file it cannot read. TypeError and the like are left out on
# purpose: they would be bugs here, not bad files.
_DECODE_ERRORS = (
    OSError,  # includes PIL.UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # Pillow raises it for malformed PNG/GIF structures
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def load_image(path: str | os.PathLike | ImageEntry) -> np.ndarray:
    """Read an image file as ``np.ndarray`` uint8 ``(H, W, 3)``, RGB (sRGB values as stored, ICC profiles ignored).

    Rules (docs/data.md): EXIF orientation is applied; the image is fully decoded here, so a truncated or corrupt file
    fails now and not later; the first frame of a multi-frame file is used; gray and 1-bit files become three equal
    channels; palette files are expanded; CMYK uses Pillow's conversion; alpha (RGBA, LA, palette transparency) is
    composited over white; 16-bit gray is scaled with ``round(v * 255 / 65535)``; 16-bit RGB(A) PNGs keep Pillow's
    high byte (``v // 256``, within one level of the rounded scale).

    ``path`` may also be an ``ImageEntry``. Raises ``ImageReadError(path, reason)`` for a missing, empty, truncated or
    undecodable file and for pixel formats without a defined 0..255 meaning (32-bit float).
    """
    path = Path(path.path if isinstance(path, ImageEntry) else path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(path, f"cannot stat file: {exc}") from exc
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as opened:
            # Full decode now: Pillow is lazy, and a truncated file would otherwise fail (or, with
            # ImageFile.LOAD_TRUNCATED_IMAGES, silently turn gray) somewhere far from here.
            opened.load()
            # In place: a copy of a huge decoded photo would double the memory this read needs.
            ImageOps.exif_transpose(opened, in_place=True)
            return _pil_to_rgb_array(opened, path)
    except ImageReadError:
        raise
    except _DECODE_ERRORS as exc:
        raise ImageReadError(path, _decode_error_reason(exc)) from exc


def _decode_error_reason(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if "cannot identify image file" in message:
        return "not a recognised image format (cannot identify image file)"
    if "truncated" in message.lower():
        return f"truncated image data ({message})"
    return f"cannot decode image ({type(exc).__name__}: {message})"


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb * a + 255 * (1 - a)`` with ``a = alpha / 255``, rounded half up; uint8 (H, W, 3)."""
    rgb = rgb.astype(np.int32)
    a = alpha.astype(np.int32)[..., None]
    out = (rgb * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _pil_to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("RGB", "L", "1") and "transparency" in image.info:
        # PNG colour-key transparency (tRNS): the keyed pixels are transparent, like alpha 0.
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if mode in ("L", "1"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit gray (PNG, TIFF). Mode "I" is 32-bit signed: treated as 16-bit data, clipped to 0..65535.
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        gray = ((values + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535), since 65535 = 255 * 257
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise ImageReadError(path, "32-bit float image: no defined 0..255 value range, convert it to 8 or 16 bit")
    if mode == "P":
        if "transparency" in image.info:
            image = image.convert("RGBA")
            mode = "RGBA"
        else:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if mode in ("PA", "RGBa", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"), dtype=np.uint8)
        rgb = np.repeat(la[..., :1], 3, axis=2)
        return _composite_on_white(rgb, la[..., 1])
    try:
        converted = image.convert("RGB")  # CMYK, YCbCr, RGBX, HSV, ...
    except ValueError as exc:
        raise ImageReadError(path, f"unsupported pixel mode {mode!r}: {exc}") from exc
    return np.asarray(converted, dtype=np.uint8).copy()


# ----------------------------------------------------------------------------------------------------------------------
# Gray rule
# ----------------------------------------------------------------------------------------------------------------------


def _as_uint8_hwc(img: Any, what: str = "image") -> np.ndarray:
    """Accept uint8 (H, W, 3) arrays, or float (3, H, W) tensors/arrays in [0, 1] (converted with ``to_uint8``)."""
    if isinstance(img, torch.Tensor):
        return to_uint8(img)
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"{what}: expected uint8 (H, W, 3) RGB, got shape {tuple(arr.shape)}")
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return to_uint8(torch.from_numpy(np.ascontiguousarray(arr)))
    raise InputError(f"{what}: expected uint8 (H, W, 3) or float (3, H, W) in [0, 1], got dtype {arr.dtype}")


def chroma_p99(img: Any) -> float:
    """99th percentile of ``|R - G| + |G - B|`` over the pixels, on 0..255 values.

    ``img``: uint8 ``(H, W, 3)`` RGB, or float ``(3, H, W)`` RGB in [0, 1] (rounded to 0..255 first).
    The percentile is numpy's default (linear interpolation between the two nearest ranks).
    """
    arr = _as_uint8_hwc(img, "chroma_p99")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"chroma_p99: empty image of shape {tuple(arr.shape)}")
    # A histogram of the integer chroma values 0..510, built a band of rows at a time: memory stays small for a huge
    # photo (no full-size int16 copies), and the percentile below is exactly numpy's.
    histogram = np.zeros(511, dtype=np.int64)
    rows = max(1, _CHROMA_CHUNK_PIXELS // arr.shape[1])
    for top in range(0, arr.shape[0], rows):
        rgb = arr[top : top + rows].astype(np.int16)
        chroma = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
        histogram += np.bincount(chroma.ravel(), minlength=511)
    return _percentile_99_of_histogram(histogram)


# Pixels per band of rows in chroma_p99.
_CHROMA_CHUNK_PIXELS = 1 << 20


def _percentile_99_of_histogram(histogram: np.ndarray) -> float:
    """``np.percentile(values, 99)`` (method "linear") of the integer values a histogram counts, computed as numpy
    does: virtual index ``(n - 1) * 0.99``, its two neighbours in sorted order, numpy's ``_lerp`` (checked equal on
    3,000 random integer arrays)."""
    count = int(histogram.sum())
    cumulative = np.cumsum(histogram)
    virtual = (count - 1) * np.true_divide(99, 100)
    below = int(np.floor(virtual))
    above = min(below + 1, count - 1)
    gamma = virtual - below
    low = np.int16(np.searchsorted(cumulative, below, side="right"))
    high = np.int16(np.searchsorted(cumulative, above, side="right"))
    step = high - low
    value = high - step * (1 - gamma) if gamma >= 0.5 else low + step * gamma
    return float(value)


def is_gray(img: Any) -> bool:
    """True when the image has negligible chroma: ``chroma_p99(img) <= 2`` (DESIGN section 3)."""
    return chroma_p99(img) <= GRAY_CHROMA_THRESHOLD


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


# Embedded sample set (DESIGN section 10): name -> (package, file inside the package). Every one of these files ships
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
    """Read every entry once: sort out unreadable files and gray images (DESIGN section 3).

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
# Resizing
# ----------------------------------------------------------------------------------------------------------------------

# OpenCV's fixed-point interpolation weights: 11 fractional bits (INTER_RESIZE_COEF_BITS).
_COEF_BITS = 11
_COEF_ONE = 1 << _COEF_BITS


def _opencv_linear_taps(
    src: int, dst: int, clamp_weights: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and fixed-point weights (w0, w1) of OpenCV's INTER_LINEAR along one axis.

    Half-pixel centres: ``f = (d + 0.5) * src / dst - 0.5`` computed in double then rounded to float32 as OpenCV does;
    ``i0 = floor(f)``; weights ``round(2048 * (1 - frac))`` and ``round(2048 * frac)`` (each rounded half to even).
    Along x OpenCV moves a tap that falls outside the image onto the edge pixel with weights (2048, 0)
    (``clamp_weights``); along y it keeps the weights and clamps only the row index.
    """
    scale = 1.0 / (dst / src)  # OpenCV: scale_x = 1. / inv_scale_x with inv_scale_x = dst / src, in double
    d = np.arange(dst, dtype=np.float64)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = (f - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low = i0 < 0
        frac[low] = 0.0
        i0[low] = 0
        high = i0 >= src - 1
        frac[high] = 0.0
        i0[high] = src - 1
    w0 = np.rint((np.float32(1.0) - frac) * np.float32(_COEF_ONE)).astype(np.int32)
    w1 = np.rint(frac * np.float32(_COEF_ONE)).astype(np.int32)
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    return i0, i1, w0, w1


def resize_bilinear_opencv(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize uint8 ``(H, W, C)`` (or ``(H, W)``) to ``(height, width)`` as ``cv2.resize(..., INTER_LINEAR)`` does.

    Bilinear with half-pixel centres, no antialiasing, OpenCV's fixed-point arithmetic: the horizontal pass is exact
    in integers (weights with 11 fractional bits); the vertical pass reproduces OpenCV's SIMD path
    (``((h0 >> 4) * w0 >> 16) + ((h1 >> 4) * w1 >> 16)``, then ``+2 >> 2``). When both sides shrink by exactly 2,
    OpenCV switches to its area mode, the rounded mean of each 2x2 block; so does this function.
    Checked bit for bit against ``cv2.resize`` of opencv-python-headless 4.14 on x86_64 (1,500 random shapes from
    1x1 to 120x120 inputs and 1 to 300 outputs, 1/3/4 channels, plus the sample photos to 256x256: no difference).
    OpenCV's scalar fallback rounds ``(h0*w0 + h1*w1 + 2**21) >> 22`` instead and may differ by one level where a
    build has no SIMD; see docs/data.md.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise InputError(f"resize: expected uint8 (H, W) or (H, W, C), got {arr.dtype} {tuple(arr.shape)}")
    if height < 1 or width < 1:
        raise InputError(f"resize: output size must be positive, got {height}x{width}")
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[..., None]
    src_h, src_w = arr.shape[:2]
    if src_h == 0 or src_w == 0:
        raise InputError(f"resize: empty input of shape {tuple(arr.shape)}")
    if (src_h, src_w) == (height, width):
        out = arr.copy()
    elif src_h == 2 * height and src_w == 2 * width:
        # OpenCV: "INTER_AREA (fast) is equal to INTER_LINEAR" for an exact 2x shrink, and uses it.
        block = arr.astype(np.int32)
        total = block[0::2, 0::2] + block[0::2, 1::2] + block[1::2, 0::2] + block[1::2, 1::2]
        out = ((total + 2) >> 2).astype(np.uint8)
    else:
        x0, x1, wx0, wx1 = _opencv_linear_taps(src_w, width, clamp_weights=True)
        y0, y1, wy0, wy1 = _opencv_linear_taps(src_h, height, clamp_weights=False)
        rows = np.union1d(y0, y1)  # only the source rows the vertical pass reads
        src_rows = arr[rows]
        # int32 is enough: 255 * 2048 per horizontal value, (value >> 4) * 2048 in the vertical products.
        horizontal = src_rows[:, x0].astype(np.int32) * wx0[None, :, None]
        horizontal += src_rows[:, x1].astype(np.int32) * wx1[None, :, None]
        # OpenCV's SIMD path packs value >> 4 to int16 and keeps the high 16 bits of each product (_mm_mulhi_epi16):
        # arithmetic shifts, i.e. floors.
        horizontal >>= 4
        top = (horizontal[np.searchsorted(rows, y0)] * wy0[:, None, None]) >> 16
        bottom = (horizontal[np.searchsorted(rows, y1)] * wy1[:, None, None]) >> 16
        out = np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


@dataclass(frozen=True)
class ResizePolicy:
    """A named way of bringing an image to the size a model or a metric protocol uses (recorded in outputs)."""

    name: str
    mode: str  # "squash" (both sides to size), "crop" (short side to size, centre crop), "none"
    size: int | None
    interpolation: str | None
    description: str

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) this policy gives for an input of ``height`` x ``width``."""
        if self.mode == "none":
            return height, width
        return self.size, self.size

    def info(self) -> dict[str, Any]:
        """JSON-ready description for recording in outputs."""
        return {
            "name": self.name,
            "mode": self.mode,
            "size": self.size,
            "interpolation": self.interpolation,
            "description": self.description,
        }


_OPENCV_LINEAR = "bilinear, half-pixel centres, no antialias, OpenCV INTER_LINEAR fixed-point on uint8"

RESIZE_POLICIES: dict[str, ResizePolicy] = {
    "squash256": ResizePolicy(
        name="squash256",
        mode="squash",
        size=256,
        interpolation=_OPENCV_LINEAR,
        description="both sides to 256 (aspect ratio not kept), as the SCGAN paper's cv2.resize((256, 256))",
    ),
    "crop256": ResizePolicy(
        name="crop256",
        mode="crop",
        size=256,
        interpolation=_OPENCV_LINEAR,
        description=(
            "short side to 256 (long side int(256 * long / short)), then the centre 256x256 crop "
            "(offset round((side - 256) / 2)), as torchvision Resize(256) + CenterCrop(256) place it"
        ),
    ),
    "native": ResizePolicy(
        name="native",
        mode="none",
        size=None,
        interpolation=None,
        description="unchanged: the file's own size",
    ),
}


def get_resize_policy(policy: str | ResizePolicy) -> ResizePolicy:
    """The ``ResizePolicy`` for a name (or the policy itself); ``InputError`` listing the names otherwise."""
    if isinstance(policy, ResizePolicy):
        return policy
    try:
        return RESIZE_POLICIES[policy]
    except (KeyError, TypeError):
        raise InputError(f"unknown resize policy {policy!r}; choose from {', '.join(RESIZE_POLICIES)}") from None


def resize_policy_info(policy: str | ResizePolicy) -> dict[str, Any]:
    """The description/parameters dict of a policy, for recording in outputs (JSON-ready)."""
    return get_resize_policy(policy).info()


#: Largest image (in pixels) measured at its own size (policy ``native``): 4096 x 4096. The metrics hold several
#: float copies of an image, so a 9000 x 9000 photo would need gigabytes; larger files are refused, naming the file
#: and the policies that bring them to the protocol size.
MAX_NATIVE_PIXELS = 4096 * 4096


def load_for_protocol(path: str | os.PathLike | ImageEntry, policy: str | ResizePolicy) -> tuple[np.ndarray, bool]:
    """``(resize_image(load_image(path), policy), is_gray of the decoded image)``: the one decode-and-resize path of
    ``scgan eval`` and ``scgan leaderboard``.

    Only the decoded uint8 file and the resized result are held (no float copy of the full-resolution image). Under
    ``native`` an image of more than ``MAX_NATIVE_PIXELS`` is an ``ImageReadError`` naming the file (the header is
    read first, so nothing is decoded).
    """
    policy = get_resize_policy(policy)
    path = Path(path.path if isinstance(path, ImageEntry) else path)
    if policy.mode == "none":
        try:
            with Image.open(path) as header:
                width, height = header.size
        except _DECODE_ERRORS:
            width = height = 0  # load_image below names the problem
        if width * height > MAX_NATIVE_PIXELS:
            raise ImageReadError(
                path,
                f"{width}x{height} is too large to measure at its own size (more than {MAX_NATIVE_PIXELS:,} pixels); "
                "use a resize policy that brings it to the protocol size (--resize squash256 or crop256)",
            )
    image = load_image(path)
    gray = is_gray(image)
    return resize_image(image, policy), gray


def resize_image(img: np.ndarray, policy: str | ResizePolicy) -> np.ndarray:
    """Apply a resize policy to uint8 ``(H, W, 3)`` RGB (or ``(H, W)``); returns uint8 of the policy's size.

    ``native`` returns the input array itself (no copy).
    """
    policy = get_resize_policy(policy)
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise InputError(f"resize_image: expected uint8 (H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    if policy.mode == "none":
        return arr
    size = policy.size
    if policy.mode == "squash":
        return resize_bilinear_opencv(arr, size, size)
    if policy.mode == "crop":
        height, width = arr.shape[:2]
        if height <= width:
            new_h, new_w = size, max(size, int(size * width / height))
        else:
            new_h, new_w = max(size, int(size * height / width)), size
        resized = resize_bilinear_opencv(arr, new_h, new_w)
        top = int(round((new_h - size) / 2.0))
        left = int(round((new_w - size) / 2.0))
        return np.ascontiguousarray(resized[top : top + size, left : left + size])
    raise InputError(f"resize policy {policy.name!r} has unknown mode {policy.mode!r}")


# ----------------------------------------------------------------------------------------------------------------------
# Tensors and saving
# ----------------------------------------------------------------------------------------------------------------------


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, C)`` (or ``(H, W)``) -> ``torch.float32`` ``(C, H, W)`` in [0, 1] (``value / 255``)."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise InputError(f"to_tensor: expected uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise InputError(f"to_tensor: expected (H, W, C), got shape {tuple(arr.shape)}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).to(torch.float32).div_(255.0)


def to_uint8(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] -> uint8 ``(H, W, C)`` / ``(N, H, W, C)``.

    Values are clipped to [0, 1] and rounded half up (``floor(x * 255 + 0.5)``). NaN or infinity is an error.
    """
    t = torch.as_tensor(tensor).detach().cpu()
    if t.dtype == torch.uint8:
        raise InputError("to_uint8: already uint8 (expected float in [0, 1])")
    if not t.is_floating_point():
        raise InputError(f"to_uint8: expected a float tensor in [0, 1], got {t.dtype}")
    if t.ndim not in (3, 4):
        raise InputError(f"to_uint8: expected (C, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InputError("to_uint8: image contains NaN or infinite values")
    t = t.to(torch.float64).clamp(0.0, 1.0)
    scaled = torch.floor(t * 255.0 + 0.5).to(torch.uint8)
    return scaled.movedim(-3, -1).contiguous().numpy()


def save_image(img: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write an image as PNG atomically (temp file beside it, then rename) and return the path.

    ``img``: uint8 ``(H, W, 3)`` / ``(H, W)`` / ``(H, W, 1)``, or float ``(3, H, W)`` / ``(1, H, W)`` in [0, 1]
    (tensor or array; rounded with ``to_uint8``). One channel is written as an 8-bit gray PNG.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"save_image writes PNG: {path} must end in .png")
    if isinstance(img, torch.Tensor) or np.issubdtype(np.asarray(img).dtype, np.floating):
        t = torch.as_tensor(img)
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise InputError(f"save_image {path}: expected float (3, H, W) or (1, H, W), got {tuple(t.shape)}")
        arr = to_uint8(t)
    else:
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            raise InputError(f"save_image {path}: expected uint8 or float in [0, 1], got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise InputError(f"save_image {path}: expected (H, W, 3) or (H, W), got {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"save_image {path}: empty image {tuple(arr.shape)}")
    pil = Image.fromarray(np.ascontiguousarray(arr), mode="L" if arr.ndim == 2 else "RGB")
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
    return path


# ----------------------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------------------


class DatasetImageReadError(ImageReadError):
    """The ``ImageReadError`` that ``ImageDataset`` raises: it survives DataLoader worker processes and pickling.

    PyTorch rebuilds a worker's exception in the main process as ``type(exc)(formatted_traceback)``; the base class
    needs ``(path, reason)`` and would turn into a bare ``RuntimeError``. Given one argument, this class takes the path
    and the reason back from the traceback's last line, so the CLI still prints one line naming the file.
    """

    def __init__(self, path, reason: str | None = None):
        if reason is None:
            last_line = str(path).strip().splitlines()[-1] if str(path).strip() else ""
            _, sep, message = last_line.partition(": ")  # drop the "module.ClassName: " prefix
            path, _, reason = (message if sep else last_line).partition(": ")
        super().__init__(path, reason)

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class ImageDataset(torch.utils.data.Dataset):
    """Torch dataset over entries: item ``{"image": float32 (3, H, W) RGB [0, 1], "name": str, "label": int}``.

    Images are read with ``load_image`` and resized by ``policy`` when the item is fetched (so it works with
    DataLoader workers; nothing but the entries is pickled). An unreadable file raises ``DatasetImageReadError`` (an
    ``ImageReadError`` naming the file, also from a worker process). ``label`` is -1 for unlabelled entries. With the
    ``native`` policy sizes differ, so batch with ``batch_size=1`` or a custom collate.
    """

    def __init__(self, entries: Sequence[ImageEntry], policy: str | ResizePolicy = "squash256"):
        self.entries = list(entries)
        self.policy = get_resize_policy(policy)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        try:
            raw = load_image(entry.path)
        except ImageReadError as exc:
            raise DatasetImageReadError(exc.path, exc.reason) from exc
        img = resize_image(raw, self.policy)
        return {"image": to_tensor(img), "name": entry.name, "label": int(entry.label)}


def load_batch(entries: Sequence[ImageEntry], policy: str | ResizePolicy = "squash256") -> torch.Tensor:
    """Read and resize entries into one ``torch.float32`` ``(N, 3, H, W)`` RGB batch in [0, 1].

    All images must come out the same size (any policy but ``native``, or ``native`` on equal sizes).
    """
    entries = list(entries)
    if not entries:
        raise InputError("load_batch: no entries")
    policy = get_resize_policy(policy)
    images = [resize_image(load_image(e.path), policy) for e in entries]
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        sizes = ", ".join(f"{e.name} {img.shape[1]}x{img.shape[0]}" for e, img in list(zip(entries, images))[:5])
        raise InputError(f"load_batch: images differ in size under policy {policy.name!r} ({sizes}, ...)")
    return torch.stack([to_tensor(img) for img in images])


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
