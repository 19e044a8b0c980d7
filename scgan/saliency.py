"""Saliency ground truth for SCGAN training: one 8-bit gray PNG per training image.

SCGAN's attention loss compares ``G_c(x) * G_s(x)`` with ``c * s`` where ``s`` is a saliency map produced once per data
set by a salient-object-detection (SOD) model (the paper used PFAN). The detectors (an ONNX SOD model such as U^2-Net-p,
or the weight-free spectral residual) are in ``scgan.saliency_detectors``; this module runs one over a data set and
writes, checks and reads the maps and their manifest.

Geometry (what the trainer relies on): a saliency map is computed on exactly the crop the trainer sees, i.e. the image
after the data layer's resize policy (``squash256`` by default: both sides to 256, as the paper), then stored at
``size x size`` (default 256, the paper's training size). The trainer resizes maps bilinearly to its preset's image size
when they differ (e.g. 64 for the small presets), just as it resizes the images, so one set of maps serves every preset.
Maps are written as ``OUT/<relative name with .png suffix>``, single channel, 8-bit, values 0..255 (``round(255 * s)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from scgan.errors import InputError
from scgan.saliency_detectors import resize_float_map

#: Default size of stored saliency maps (the paper's training crop).
DEFAULT_MAP_SIZE = 256

#: Name of the contact sheet the ``scgan saliency`` command writes into the output folder.
CONTACT_SHEET_NAME = "_contact_sheet.png"

#: Name of the manifest the ``scgan saliency`` command writes into the output folder: how the maps were made.
MANIFEST_NAME = "_saliency.json"
MANIFEST_FORMAT = "scgan-bench/saliency-maps/1"

#: Pillow modes of a single-channel map (8-bit, or 16-bit from other tools).
_SINGLE_CHANNEL_MODES = ("L", "I;16", "I;16L", "I;16B", "I")

#: How many newly written maps between two manifest writes (so an interrupted run keeps most of its work).
_MANIFEST_EVERY = 64


# ----------------------------------------------------------------------------------------------- file helpers
def map_name(image_name: str) -> str:
    """Relative name of the saliency PNG for an image's relative name: the same path with a ``.png`` suffix."""
    from scgan.data import output_name

    return output_name(image_name, ".png")


def map_names(image_names: Iterable[str]) -> list[str]:
    """``map_name`` of each image name; two images that would share one map (``a.jpg`` and ``a.png``) are an error.

    Without this check the second image would silently get the first one's map (kept as "already computed").
    """
    names = list(image_names)
    owners: dict[str, str] = {}
    clashes = []
    for image in names:
        target = map_name(image)
        if target in owners:
            clashes.append(f"{owners[target]} and {image} -> {target}")
        owners.setdefault(target, image)
    if clashes:
        raise InputError(
            f"images whose names differ only in extension would share a saliency map: {'; '.join(clashes[:10])}"
            + (f" ... ({len(clashes)} in all)" if len(clashes) > 10 else "")
            + "; rename them"
        )
    return [map_name(image) for image in names]


def to_uint8_map(saliency: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] -> uint8 (H, W) 0..255 (rounded)."""
    return np.round(np.clip(saliency, 0.0, 1.0) * 255.0).astype(np.uint8)


def resize_map(saliency: np.ndarray, size: int) -> np.ndarray:
    """float (H, W) -> float32 (size, size), bilinear."""
    return resize_float_map(saliency.astype(np.float32, copy=False), size, size)


def save_map(saliency_uint8: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W) map as an 8-bit single-channel PNG, atomically."""
    from scgan.atomic import atomic_path

    if saliency_uint8.dtype != np.uint8 or saliency_uint8.ndim != 2:
        raise InputError(
            f"{path}: saliency map must be uint8 (H, W), got {saliency_uint8.dtype} {saliency_uint8.shape}"
        )
    with atomic_path(path) as tmp:
        Image.fromarray(saliency_uint8, mode="L").save(tmp, format="PNG")


def load_map(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel saliency PNG -> float32 (H, W) in [0, 1]; any other file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"saliency map not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in _SINGLE_CHANNEL_MODES:
                raise InputError(f"{path}: a saliency map must be a single-channel (gray) image, got mode {img.mode}")
            if img.mode != "L":
                array = np.asarray(img, dtype=np.float32) / 65535.0
            else:
                array = np.asarray(img, dtype=np.float32) / 255.0
    except OSError as exc:
        from scgan.errors import ImageReadError

        raise ImageReadError(path, f"cannot read saliency map: {exc}") from exc
    return np.clip(array, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------- manifest
def _source_size(entry) -> int | None:
    try:
        return Path(entry.path).stat().st_size
    except OSError:
        return None


def read_manifest(saliency_dir: str | os.PathLike) -> dict | None:
    """The manifest of a saliency folder (``MANIFEST_NAME``), or None when there is none; unreadable: an error."""
    import json

    path = Path(saliency_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable saliency manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(
        manifest.get("maps"), dict
    ):
        raise InputError(f"{path}: not a saliency manifest of format {MANIFEST_FORMAT}")
    return manifest


def _write_manifest(saliency_dir: Path, manifest: dict) -> None:
    import json

    from scgan.atomic import write_text

    write_text(saliency_dir / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _map_mode(path: Path) -> str:
    try:
        with Image.open(path) as img:
            return img.mode
    except OSError as exc:
        from scgan.errors import ImageReadError

        raise ImageReadError(path, f"cannot read saliency map: {exc}") from exc


def check_saliency_maps(
    saliency_dir: str | os.PathLike, entries: Iterable, policy: str, detector: str | None = None
) -> list[Path]:
    """Check that ``saliency_dir`` holds maps made by ``scgan saliency`` for exactly these images under ``policy``.

    The trainer and the leaderboard call it before they read a map. ``InputError`` naming the file when: the folder
    has no manifest (``MANIFEST_NAME``: not made by ``scgan saliency``); the maps were made under another resize
    policy (or by another ``detector``, when given); an image has no map, or no manifest record, or its file size
    differs from the one the map was made from (the photo changed since); a map is not a single-channel image.
    Returns the map paths, in the order of ``entries``.
    """
    folder = Path(saliency_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"saliency folder not found: {folder}")
    entries = list(entries)
    names = map_names(e.name for e in entries)
    manifest = read_manifest(folder)
    manifest_path = folder / MANIFEST_NAME
    if manifest is None:
        raise InputError(
            f"{manifest_path}: missing, so {folder} is not a folder of `scgan saliency` maps (or was made before "
            "manifests existed); make the maps with `scgan saliency --out` a new folder"
        )
    if manifest.get("policy") != policy:
        raise InputError(
            f"{manifest_path}: maps made on the {manifest.get('policy')!r} crop, this run uses --policy {policy!r}; "
            "make maps for this policy with `scgan saliency --policy`"
        )
    if detector is not None and manifest.get("detector") != detector:
        raise InputError(f"{manifest_path}: maps made by {manifest.get('detector')!r}, expected {detector!r}")
    paths = []
    for entry, name in zip(entries, names):
        target = folder / name
        record = manifest["maps"].get(name)
        if not target.is_file():
            raise InputError(f"{target}: saliency map missing for {entry.path} (run `scgan saliency`)")
        if record is None or record.get("source") != entry.name:
            raise InputError(f"{target}: not recorded in {manifest_path} as the map of {entry.name}")
        if record.get("source_bytes") != _source_size(entry):
            raise InputError(
                f"{target}: made from a {record.get('source_bytes')}-byte file, but {entry.path} now has "
                f"{_source_size(entry)} bytes; recompute the maps (`scgan saliency --overwrite`)"
            )
        mode = _map_mode(target)
        if mode not in _SINGLE_CHANNEL_MODES:
            raise InputError(f"{target}: a saliency map must be a single-channel (gray) image, got mode {mode}")
        paths.append(target)
    return paths


# -------------------------------------------------------------------------------------------- whole data sets
@dataclass
class SaliencyRunResult:
    """Outcome of :func:`generate_saliency_maps`: relative map names written, kept (already there) and failed."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    contact_sheet: Path | None = None


def training_crop(image: np.ndarray, policy: str) -> np.ndarray:
    """The crop the trainer sees: the data layer's resize policy applied to a uint8 RGB image."""
    from scgan.data import resize_image

    return resize_image(image, policy)


def generate_saliency_maps(
    entries: Iterable,
    out_dir: str | os.PathLike,
    detector: Callable[[np.ndarray], np.ndarray],
    size: int = DEFAULT_MAP_SIZE,
    policy: str = "squash256",
    overwrite: bool = False,
    skip_bad: bool = False,
    progress: bool = True,
    contact_sheet: str | os.PathLike | None = None,
    contact_sheet_count: int = 6,
) -> SaliencyRunResult:
    """Write one saliency PNG per image entry (``scgan.data.ImageEntry``) under ``out_dir``.

    Resumable: a map that already exists is kept unless ``overwrite``. Maps are computed on the policy crop and stored
    at ``size x size``. A file that cannot be read stops the run (naming it) unless ``skip_bad``, which records it in
    ``result.bad``. A contact sheet of the first ``contact_sheet_count`` images (image | saliency) is written to
    ``contact_sheet`` when given.
    """
    from tqdm import tqdm

    from scgan.data import get_resize_policy, load_image
    from scgan.errors import ImageReadError

    if size < 1:
        raise InputError(f"--size must be positive, got {size}")
    policy = get_resize_policy(policy).name
    out_dir = Path(out_dir)
    entries = list(entries)
    if not entries:
        raise InputError("no images to process")
    names = map_names(e.name for e in entries)
    detector_name = str(getattr(detector, "name", type(detector).__name__))
    manifest = _start_manifest(out_dir, names, detector_name, policy, size, overwrite)
    records = manifest["maps"]
    result = SaliencyRunResult()
    sheet_pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for entry, name in zip(tqdm(entries, desc="saliency", unit="img", disable=not progress), names):
        target = out_dir / name
        want_sheet = contact_sheet is not None and len(sheet_pairs) < contact_sheet_count
        record = records.get(name)
        # Kept only when this folder's manifest says it was made from this very file (same name and size); a map
        # written by an interrupted run before its record was saved is simply recomputed.
        up_to_date = (
            record is not None and record.get("source") == entry.name
            and record.get("source_bytes") == _source_size(entry)
        )
        if target.exists() and not overwrite and up_to_date:
            mode = _map_mode(target)
            if mode not in _SINGLE_CHANNEL_MODES:
                raise InputError(f"{target}: a saliency map must be a single-channel (gray) image, got mode {mode}")
            result.kept.append(name)
            if want_sheet:
                try:
                    crop = training_crop(load_image(entry.path), policy)
                    sheet_pairs.append((crop, load_map(target)))
                except ImageReadError:
                    pass  # the sheet is illustration only; a kept map for an unreadable image is not an error here
            continue
        try:
            crop = training_crop(load_image(entry.path), policy)
        except ImageReadError as exc:
            if not skip_bad:
                raise
            result.bad.append((entry.name, str(exc)))
            continue
        saliency = detector(crop)
        stored = to_uint8_map(resize_map(saliency, size))
        save_map(stored, target)
        records[name] = {"source": entry.name, "source_bytes": _source_size(entry)}
        result.written.append(name)
        if len(result.written) % _MANIFEST_EVERY == 0:
            _write_manifest(out_dir, manifest)
        if want_sheet:
            sheet_pairs.append((crop, stored.astype(np.float32) / 255.0))
    _write_manifest(out_dir, manifest)
    if contact_sheet is not None and sheet_pairs:
        write_contact_sheet(sheet_pairs, contact_sheet)
        result.contact_sheet = Path(contact_sheet)
    return result


def check_maps_folder(out_dir: str | os.PathLike, names: list[str], detector: str, policy: str, size: int,
                      overwrite: bool) -> dict | None:
    """Before any map is computed: without ``overwrite``, refuse a folder whose maps were made another way (detector,
    policy, size) and a folder without manifest that already holds some of the maps (not ours: their origin is
    unknown). Returns the folder's manifest (None when it has none)."""
    from scgan.data import get_resize_policy

    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    settings = {"detector": detector, "policy": get_resize_policy(policy).name, "size": size}
    if manifest is not None and not overwrite:
        made = {key: manifest.get(key) for key in settings}
        if made != settings:
            raise InputError(
                f"{out_dir / MANIFEST_NAME}: the maps there were made with {made}, this run asks for {settings}; "
                "use another --out, or --overwrite to recompute them all"
            )
    if manifest is None and not overwrite:
        foreign = [name for name in names if (out_dir / name).exists()]
        if foreign:
            raise InputError(
                f"{out_dir / foreign[0]}: exists, but {out_dir} has no {MANIFEST_NAME} saying how it was made "
                f"({len(foreign)} such file(s)); use another --out, or --overwrite to replace them"
            )
    return manifest


def _start_manifest(out_dir: Path, names: list[str], detector: str, policy: str, size: int, overwrite: bool) -> dict:
    """The manifest this run extends (written at once, so the folder says how its maps are made from the start)."""
    manifest = check_maps_folder(out_dir, names, detector, policy, size, overwrite)
    settings = {"detector": detector, "policy": policy, "size": size}
    if manifest is None or any(manifest.get(key) != value for key, value in settings.items()):
        manifest = {"format": MANIFEST_FORMAT, **settings, "maps": {}}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(out_dir, manifest)
    return manifest


def write_contact_sheet(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, tile: int = 160
) -> Path:
    """PNG with one row per image: the image (uint8 RGB) | its saliency map (float [0,1], gray), each ``tile`` px."""
    from scgan.atomic import atomic_path

    if not pairs:
        raise InputError("contact sheet needs at least one (image, saliency) pair")
    gap = 4
    sheet = Image.new("RGB", (2 * tile + 3 * gap, len(pairs) * (tile + gap) + gap), (255, 255, 255))
    for row, (image, saliency) in enumerate(pairs):
        y = gap + row * (tile + gap)
        sheet.paste(Image.fromarray(image).resize((tile, tile), Image.Resampling.BILINEAR), (gap, y))
        gray = Image.fromarray(to_uint8_map(saliency), mode="L").resize((tile, tile), Image.Resampling.BILINEAR)
        sheet.paste(gray.convert("RGB"), (2 * gap + tile, y))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return Path(path)
