"""The leaderboard's evaluation: every method on every batch of images, measured through the metrics engine.

Images are processed in global batches of ``batch_size`` consecutive images of the sorted list; under torchrun batch
``b`` goes to rank ``b % world_size`` and rank 0 merges (:func:`merge_results`), so a sharded run gives exactly the
rows of one process (each batch is measured the same way wherever it runs). Results are tidy rows (one per image and
method, :func:`rows_frame`) and, for FID, pooled classifier features per method (:func:`dataset_metrics_frame`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.methods import ColorizationCache, MethodRun, colorize_group, image_content_key
from bench.protocols import Protocol
from scgan.errors import ImageReadError, InputError


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


class Timer:
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
        with Timer(timings, "decode_resize_s"):
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
    with Timer(timings, "prepare_s"):
        gt_nchw = _nchw([g[2] for g in group])
        gt_u8 = torch.from_numpy(gt_nchw)
        # The values of scgan.data.to_tensor (x / 255, float32, correctly rounded in both libraries), made in NumPy
        # for the reason in bench.methods._to_uint8_image.
        gt01 = torch.from_numpy(np.divide(gt_nchw, np.float32(255.0), dtype=np.float32))
    # Content hashes only when some method's outputs are cached (hashing every image costs more than the anchors).
    cached = cache.root is not None and any(run.cache_key is not None for run in runs)
    keys = [image_content_key(g[2]) if cached else "" for g in group]
    fid_classifiers = {plan.fid.classifier} if plan.fid is not None else set()
    gt_inputs = SideInputs(gt_u8.to(settings.device), fid_classifiers)
    stride = protocol.color_cast_stride
    with Timer(timings, "diagnostics_s"):
        has_cf = any(m.info.name == "cf_abs" for m in plan.image)
        gt_cf = gt_inputs.get("colourfulness", (True, True)).cpu().numpy() if has_cf else None
        gt_lab_grid = _lab_of_uint8(gt_u8[:, :, ::stride, ::stride])
    if plan.classifier or plan.fid is not None:
        with Timer(timings, "classifier_s"):
            for metric in plan.classifier + ([plan.fid] if plan.fid is not None else []):
                for need in metric.needs():
                    if need.side == "target":
                        gt_inputs.get(need.kind, need.option)
        if plan.fid is not None:
            features["__gt__"].append((np.asarray(indices, dtype=np.int64),
                                       gt_inputs.get("classifier", (plan.fid.classifier, True))[1]))
    saliency = None
    if plan.saliency:
        with Timer(timings, "saliency_s"):
            maps = [_load_saliency(settings, g[1], g[2]) for g in group]
        saliency = torch.from_numpy(np.stack(maps))[:, None]
    out_rows: list[dict] = []
    for run in runs:
        with Timer(timings, f"colorize_{run.name}_s"):
            outputs, errors = colorize_group(run, gt01, keys, files, protocol.raw, cache, settings.device, calls)
        ok = [i for i in range(len(group)) if i not in errors]
        if errors and not settings.skip_bad:
            i = min(errors)
            raise InputError(f"method {run.name!r} failed on {files[i]}: {errors[i]} (use --skip-bad to go on)")
        values: dict[str, np.ndarray] = {}
        if ok:
            with Timer(timings, "prepare_s"):
                pred_u8 = torch.from_numpy(_nchw([outputs[i] for i in ok]))
                label_ok = labels[ok]
                has_label = label_ok >= 0
                inputs = prepare_batch(
                    plan.all(), pred_u8.to(settings.device), labels=torch.from_numpy(np.where(has_label, label_ok, 0)),
                    saliency=None if saliency is None else saliency[ok].to(settings.device),
                    target_inputs=gt_inputs if len(ok) == len(group) else gt_inputs.select(ok),
                )
            for metric in plan.image:
                with Timer(timings, f"metric_{metric.info.name}_s"):
                    values[metric.info.name] = metric.per_image(inputs)
            with Timer(timings, "diagnostics_s"):
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
                with Timer(timings, "classifier_s"):
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
    """uint8 (H, W, 3) images of one size -> one contiguous uint8 (N, 3, H, W) array (NumPy: see
    ``bench.methods._to_uint8_image``)."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))


def _lab_of_uint8(images_u8: torch.Tensor) -> torch.Tensor:
    """float32 CIE Lab (N, 3, H, W) of uint8 RGB (N, 3, H, W) for the colour-cast diagnostic: the engine's float32 Lab
    (float32 is 2.5x faster than float64; differences below 1e-4 Lab units, far under the two decimals reported)."""
    from metrics.engine import SideInputs

    return SideInputs(images_u8).get("lab32")


def _row_header(method, file, label, protocol: Protocol, index: int, error: str) -> dict:
    return {"method": method, "file": file, "protocol": protocol.name, "protocol_hash": protocol.hash,
            "label": int(label), "error": error, "_index": int(index)}


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
