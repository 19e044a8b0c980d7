"""Saliency ground truth for SCGAN training: one 8-bit gray PNG per training image.

SCGAN's attention loss compares ``G_c(x) * G_s(x)`` with ``c * s`` where ``s`` is a saliency map produced once per data
set by a salient-object-detection (SOD) model (the paper used PFAN). Two detectors are provided:

* :class:`OnnxSaliencyDetector`: any SOD model exported to ONNX whose input is an RGB image and whose first output is a
  one-channel map in [0, 1] (DESIGN section 5). Conventions (those of U^2-Net / U^2-Net-p, the development model): input
  ``1x3xSxS`` float32, RGB / 255 then ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); ``S`` is read
  from the model's input shape (320 for U^2-Net-p) and the image is squashed to it (bilinear); the first output is the
  fused map after sigmoid, resized back to the image size (bilinear). A model whose output leaves [0, 1] slightly
  (numerical noise) is clipped; one that is clearly not a probability map is an error.
* :func:`spectral_residual_saliency`: the weight-free spectral-residual detector of Hou & Zhang (CVPR 2007), so that the
  pipeline runs on a fresh machine: on the gray image downscaled to 64 px (long side), the log amplitude spectrum minus
  its 3x3 local average is recombined with the original phase, inverse-transformed, squared, smoothed with a Gaussian
  and normalised to [0, 1].

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

#: ImageNet normalisation used by U^2-Net-style SOD models (DESIGN section 5).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

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

#: Tolerance for an ONNX model's output leaving [0, 1] before it is considered "not a probability map".
_RANGE_SLACK = 1e-3


def _check_rgb_uint8(image: np.ndarray, what: str = "image") -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise InputError(f"{what}: expected a uint8 RGB array of shape (H, W, 3), got shape {shape} dtype {dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{what}: empty image of shape {image.shape}")


def _resize_float(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float32 (H, W) array (Pillow mode 'F', no quantisation)."""
    if array.shape == (height, width):
        return array.astype(np.float32, copy=False)
    resized = Image.fromarray(array.astype(np.float32, copy=False), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def _gray_bt601(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float64 (H, W) BT.601 luma on 0..1."""
    rgb = image.astype(np.float64) / 255.0
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


# ---------------------------------------------------------------------------------------------- spectral residual
def spectral_residual_saliency(image: np.ndarray, work_size: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) of one image.

    Args:
        image: uint8 RGB array (H, W, 3), sRGB.
        work_size: the long side of the downscaled gray image the spectrum is analysed on (64 in the paper).
        sigma: standard deviation, in pixels of the downscaled image, of the Gaussian that smooths the squared
            reconstruction.

    Returns:
        float32 (H, W) in [0, 1] (resized back to the input size, bilinear); constant images give all zeros.
    """
    from scipy import ndimage

    _check_rgb_uint8(image)
    if work_size < 8:
        raise InputError(f"work_size must be at least 8 pixels, got {work_size}")
    height, width = image.shape[:2]
    scale = work_size / max(height, width)
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    gray = _resize_float(_gray_bt601(image).astype(np.float32), small_h, small_w).astype(np.float64)

    spectrum = np.fft.fft2(gray)
    # log amplitude; the tiny floor keeps log finite where the amplitude is exactly zero (constant images).
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    phase = np.angle(spectrum)
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="nearest")
    reconstruction = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    # Zero padding at the borders damps the bright edges left by the FFT's periodic wrap-around.
    saliency = ndimage.gaussian_filter(reconstruction, sigma=sigma, mode="constant")

    low, high = float(saliency.min()), float(saliency.max())
    if not np.isfinite(high) or high - low <= 1e-12 * max(1.0, abs(high)) or float(gray.max() - gray.min()) < 1e-6:
        return np.zeros((height, width), dtype=np.float32)
    saliency = (saliency - low) / (high - low)
    return np.clip(_resize_float(saliency.astype(np.float32), height, width), 0.0, 1.0)


class SpectralResidualDetector:
    """Callable wrapper of :func:`spectral_residual_saliency` with the detector interface (``name``, ``__call__``)."""

    def __init__(self, work_size: int = 64, sigma: float = 2.5):
        self.work_size = work_size
        self.sigma = sigma
        self.name = f"spectral-residual(work_size={work_size},sigma={sigma})"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return spectral_residual_saliency(image, self.work_size, self.sigma)


# ----------------------------------------------------------------------------------------------------- ONNX SOD
def cpu_or_cuda_providers() -> list[str]:
    """ONNX Runtime providers that really work here: CUDA only when torch sees a GPU, else CPU alone.

    onnxruntime-gpu lists the CUDA provider even on machines without a GPU; asking for it there prints errors, so it is
    requested only when a device exists.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = []
    try:
        import torch

        if torch.cuda.is_available() and "CUDAExecutionProvider" in available:
            providers.append("CUDAExecutionProvider")
    except ImportError:  # pragma: no cover - torch is a dependency; keep the CPU path usable without it
        pass
    providers.append("CPUExecutionProvider")
    return providers


class OnnxSaliencyDetector:
    """A salient-object-detection ONNX model (U^2-Net-style conventions, see the module docstring).

    Calling it on a uint8 RGB (H, W, 3) image returns float32 (H, W) in [0, 1].
    """

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"saliency model not found: {path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no provider chatter on CPU-only machines
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=list(providers or cpu_or_cuda_providers())
            )
        except Exception as exc:  # ORT raises its own exception types for unreadable or invalid models
            raise InputError(f"{path}: cannot load as an ONNX model: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"{path}: a saliency model must have exactly one input, it has {len(inputs)}")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise InputError(f"{path}: input {self.input_name!r} must be (N, 3, H, W) RGB, got shape {shape}")
        # Fixed spatial size when the model declares one, else U^2-Net's 320.
        self.input_size = (
            (int(shape[2]), int(shape[3])) if isinstance(shape[2], int) and isinstance(shape[3], int) else (320, 320)
        )
        self.path = path
        self.name = f"onnx:{path.name}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _check_rgb_uint8(image)
        height, width = image.shape[:2]
        in_h, in_w = self.input_size
        resized = np.asarray(
            Image.fromarray(image).resize((in_w, in_h), Image.Resampling.BILINEAR), dtype=np.float32
        )
        normalised = (resized / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        batch = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)
        output = np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
        if output.ndim == 4:
            if output.shape[:2] != (1, 1):
                raise InputError(f"{self.path}: first output must have one channel, got shape {output.shape}")
            output = output[0, 0]
        elif output.ndim == 3 and output.shape[0] == 1:
            output = output[0]
        elif output.ndim != 2:
            raise InputError(f"{self.path}: first output must be a one-channel map, got shape {output.shape}")
        if not np.all(np.isfinite(output)):
            raise InputError(f"{self.path}: model produced non-finite saliency values")
        low, high = float(output.min()), float(output.max())
        if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            raise InputError(
                f"{self.path}: first output must be a map in [0, 1] (after sigmoid), "
                f"got values in [{low:.3g}, {high:.3g}]"
            )
        return np.clip(_resize_float(output, height, width), 0.0, 1.0)


def build_detector(
    model: str | os.PathLike | None = None, method: str | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """The detector the command line asks for: ``model`` (an ONNX path) or ``method`` (``"spectral"``)."""
    if model is not None and method is not None:
        raise InputError("give either --model SOD.onnx or --method spectral, not both")
    if model is not None:
        return OnnxSaliencyDetector(model)
    if method in (None, "spectral"):
        return SpectralResidualDetector()
    raise InputError(f"unknown saliency method {method!r}; available: spectral (or --model SOD.onnx)")


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
    return _resize_float(saliency.astype(np.float32, copy=False), size, size)


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
