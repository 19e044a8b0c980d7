"""The leaderboard's methods: loading method specs, the on-disk colorization cache and colorizing a group of images.

A method is any object with ``name``, ``input_size``, ``sha256`` and ``colorize(images, raw) -> images`` (the
``baselines.load_method`` interface). Every colorization is rounded to uint8 (what a saved PNG holds) before it is
measured or cached, so cached and fresh colorizations give identical rows. Colorizations of methods with a weights
hash are cached per (method, input image content) in ``OUT/cache``; the anchors ``gt``/``gray`` are computed (they
cost less than reading a PNG).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.protocols import Protocol
from scgan.colorize import check_rgb_values
from scgan.errors import ImageReadError, InputError

#: Methods that are not colorizers: the bounds (``gt``, ``gray``) and the reference ``tint`` (no worst-case figures).
ANCHOR_NAMES = ("gt", "gray", "tint")


@dataclass
class MethodRun:
    """A loaded method under its display name.

    ``method``: object with ``name``, ``input_size``, ``sha256`` and ``colorize(images, raw) -> images`` (the
    ``baselines.load_method`` interface). ``cache_key``: None when its outputs are not cached.
    """

    name: str
    spec: str
    method: object
    sha256: str | None
    cache_key: str | None


def parse_method_list(text: str) -> list[str]:
    """``"gt,gray,onnx:a.onnx=mine"`` -> the list of specs (blank items refused)."""
    specs = [s.strip() for s in text.split(",")]
    if not specs or any(not s for s in specs):
        raise InputError(f"--methods: empty item in {text!r} (expected e.g. gt,gray,onnx:model.onnx=name)")
    return specs


def split_display_name(spec: str) -> tuple[str, str | None]:
    """``"onnx:PATH=NAME"`` -> (``"onnx:PATH"``, ``"NAME"``); the name after the last ``=`` must not hold a path
    separator (so paths containing ``=`` still work)."""
    if "=" in spec:
        base, name = spec.rsplit("=", 1)
        if name and "/" not in name and "\\" not in name and base:
            return base, name
    return spec, None


def _load_one_method(spec: str, device: str, batch_size: int):
    from baselines import load_method

    return load_method(spec, device=device, batch_size=batch_size)


class FailedMethod:
    """Stands in for a method that could not be loaded (``--skip-bad``): every image it is asked for fails with the
    load error, so the method appears in coverage and run.json as failed, with the reason, and the others go on."""

    input_size = None
    sha256 = None

    def __init__(self, name: str, reason: str):
        self.name = name
        self.load_error = reason

    def colorize(self, images: torch.Tensor, raw: bool = False) -> torch.Tensor:
        raise InputError(self.load_error)


def method_files(spec: str) -> list[str]:
    """The files a method spec reads (``onnx:PATH``, ``scgan:CKPT``, ``NAME:WEIGHTS``), for the output-safety rule."""
    base, _ = split_display_name(spec)
    _, sep, tail = base.partition(":")
    return [tail] if sep and tail else []


def load_methods(specs: list, device: str, protocol: Protocol, batch_size: int = 16,
                 skip_bad: bool = False) -> list[MethodRun]:
    """Load every method spec (strings as in ``--methods``, or ready method objects); names must be unique.

    A method that fails to load (a missing file, an ONNX graph ONNX Runtime rejects, ...) is an ``InputError`` naming
    the method and its file; with ``skip_bad`` it becomes a :class:`FailedMethod` and the other methods go on.
    """
    runs: list[MethodRun] = []
    for spec in specs:
        if isinstance(spec, str):
            base, display = split_display_name(spec)
            try:
                method = _load_one_method(base, device, batch_size)
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime and exporters raise their own exception types
                reason = f"method {display or base!r} cannot be loaded from {base}: {type(exc).__name__}: " + \
                    " ".join(str(exc).split())
                if not skip_bad:
                    raise InputError(reason + " (use --skip-bad to go on without it)") from exc
                method = FailedMethod(display or base, reason)
            name = display or str(getattr(method, "name", base))
            spec_text = spec
        else:
            method = spec
            name = str(method.name)
            spec_text = f"<object {type(method).__name__}>"
        sha = getattr(method, "sha256", None)
        if name in ANCHOR_NAMES and sha is None:
            cache_key = None  # anchors: cheaper to compute than to read back
        elif sha is None:
            cache_key = None  # no weights hash: the outputs cannot be keyed safely
        else:
            identity = {
                "name": name, "sha256": sha, "raw": protocol.raw, "input_size": getattr(method, "input_size", None),
                "quantization": protocol.output_quantization,
                # The exported graph's own hash: a change in export code (same weights) must not serve stale outputs.
                "model_sha256": getattr(method, "model_sha256", None),
            }
            digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
            cache_key = f"{slug(name)}-{digest}"
        runs.append(MethodRun(name, spec_text, method, sha, cache_key))
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"--methods: duplicate method name(s) {duplicates}; rename with SPEC=NAME")
    if not runs:
        raise InputError("--methods: no method given")
    return runs


def slug(name: str) -> str:
    """A method name as a file-name part (letters, digits, ``-_.``; at most 60 characters)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


# -------------------------------------------------------------------------------------------------------------- cache
class ColorizationCache:
    """uint8 colorizations on disk, keyed by (method cache key, sha256 of the input image's pixels and shape)."""

    def __init__(self, root: Path | None):
        self.root = root
        self.hits = 0
        self.misses = 0
        self.invalid = 0  # entries that did not match (unreadable, wrong size or pixel format): recomputed

    def _path(self, method_key: str, image_key: str) -> Path:
        return self.root / method_key / image_key[:2] / f"{image_key}.png"

    def get(self, method_key: str | None, image_key: str, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The cached uint8 (H, W, 3) output, or None (a miss). An entry that is not an 8-bit RGB PNG of ``size``
        ((height, width), when given) is counted in ``invalid``, treated as a miss, and overwritten by the recomputed
        output."""
        if self.root is None or method_key is None:
            return None
        path = self._path(method_key, image_key)
        if not path.is_file():
            self.misses += 1
            return None
        from PIL import Image

        from scgan.data import load_image

        try:
            with Image.open(path) as header:
                mode, (width, height) = header.mode, header.size
            image = load_image(path) if mode == "RGB" and (size is None or (height, width) == tuple(size)) else None
        except (ImageReadError, OSError, ValueError, SyntaxError):
            image = None
        if image is None:
            self.invalid += 1
            self.misses += 1
            return None
        self.hits += 1
        return image

    def put(self, method_key: str | None, image_key: str, image: np.ndarray) -> None:
        if self.root is None or method_key is None:
            return
        from scgan.data import save_image

        save_image(image, self._path(method_key, image_key))


def image_content_key(image: np.ndarray) -> str:
    """sha256 of a uint8 (H, W, 3) image's shape and pixels: the cache key of a model input."""
    digest = hashlib.sha256(f"{image.shape}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------------ measurements
def _to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """float (3, H, W) [0, 1] -> uint8 (H, W, 3): ``floor(x * 255 + 0.5)`` in float64, clamped to 0..255.

    Exactly ``scgan.data.to_uint8`` (which writes the PNGs of ``scgan colorize``), so the leaderboard measures what a
    saved colorization holds. float64: float32 rounding of ``x * 255`` would move pixels that sit on a .5 tie. One
    image at a time, in place, in NumPy: the float64 copy stays in the CPU cache (5x faster than one pass over a batch
    of 16 images of 256x256, 10x faster than ``to_uint8``'s copies), and NumPy runs it on this thread, where torch
    would start OpenMP threads that stall for seconds when the CPU is shared (measured: 0.1 s -> 5 s per 64 images).
    """
    values = image.detach().cpu().numpy().astype(np.float64)
    values *= 255.0
    values += 0.5
    np.floor(values, out=values)
    np.clip(values, 0.0, 255.0, out=values)
    return np.ascontiguousarray(values.astype(np.uint8).transpose(1, 2, 0))


def _check_output(output, expected_shape: tuple, method: str, files: list[str]) -> torch.Tensor:
    """The type and shape of a method's output (its values are checked image by image in ``colorize_group``)."""
    if not isinstance(output, torch.Tensor):
        raise InputError(f"method {method!r} returned {type(output).__name__}, expected a tensor, on {files}")
    if tuple(output.shape) != tuple(expected_shape):
        raise InputError(
            f"method {method!r} returned shape {tuple(output.shape)}, expected {expected_shape}, on {files}"
        )
    return output



def colorize_group(run: MethodRun, gt01: torch.Tensor, keys: list[str], files: list[str], raw: bool, cache,
                    device: str, calls: dict) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """uint8 (H, W, 3) outputs of one method for a group of same-size images, and index -> error message."""
    size = (int(gt01.shape[-2]), int(gt01.shape[-1]))
    outputs: list[np.ndarray | None] = [cache.get(run.cache_key, k, size) for k in keys]
    missing = [i for i, out in enumerate(outputs) if out is None]
    errors: dict[int, str] = {}

    def produce(indices: list[int]) -> None:
        batch = gt01[indices].to(device)
        calls[run.name] = calls.get(run.name, 0) + len(indices)
        with torch.no_grad():
            result = run.method.colorize(batch, raw=raw)
        result = _check_output(result, tuple(batch.shape), run.name, [files[i] for i in indices]).detach().cpu()
        for j, i in enumerate(indices):
            check_rgb_values(result[j].numpy(), f"method {run.name!r}", f" on {files[i]}")  # NumPy: _to_uint8_image
            image = _to_uint8_image(result[j])
            outputs[i] = image
            cache.put(run.cache_key, keys[i], image)

    if missing:
        # A method is foreign code (ONNX Runtime raises its own Exception subclasses): any exception on an image is
        # recorded against that image and the method; strict runs then stop with it, --skip-bad runs go on.
        try:
            produce(missing)
        except Exception as exc:  # noqa: BLE001
            if len(missing) == 1:
                errors[missing[0]] = f"{type(exc).__name__}: {exc}"
            else:
                # Find the image(s) that fail: one at a time.
                for i in missing:
                    try:
                        produce([i])
                    except Exception as single_exc:  # noqa: BLE001 (a method is foreign code; see above)
                        errors[i] = f"{type(single_exc).__name__}: {single_exc}"
    return outputs, errors


def default_methods() -> list[str]:
    """Every method usable on a fresh install, with no file from the user: the anchors ``gt`` and ``gray``, the
    reference anchor ``tint`` (one constant colour: what a metric gives for colour without understanding), then every
    shipped colorizer (``scgan baselines``, kind "shipped": trained by ``bench/recipes``, installed with the package).
    """
    from baselines import list_methods

    rows = list_methods()
    return ([row.name for row in rows if row.kind in ("anchor", "reference")]
            + [row.name for row in rows if row.kind == "shipped"])



def sample_renderer(runs: list[MethodRun], entries, protocol: Protocol, device: str,
                    cache: ColorizationCache) -> Callable[[str], tuple[np.ndarray, dict, np.ndarray]]:
    """A function ``file -> (gray input (H, W) uint8, {method: uint8 (H, W, 3) colorization}, ground truth)`` for the
    leaderboard's image figures: the image decoded and resized as the protocol says, colorized by every method (through
    the cache, so a run's own colorizations are read back rather than computed again)."""
    from metrics.color import rgb_to_gray
    from scgan import data

    by_name = {e.name: e for e in entries}
    calls: dict[str, int] = {}

    def render(file: str) -> tuple[np.ndarray, dict, np.ndarray]:
        gt = data.resize_image(data.load_image(by_name[file].path), protocol.resize_policy)
        gt01 = data.to_tensor(gt)[None]
        key = image_content_key(gt)
        outputs = {}
        for run in runs:
            produced, _ = colorize_group(run, gt01, [key], [file], protocol.raw, cache, device, calls)
            outputs[run.name] = produced[0]
        gray = data.to_uint8(rgb_to_gray(gt01))[0, ..., 0]  # what the models see: BT.601 luma, (H, W) uint8
        return gray, outputs, gt

    return render
