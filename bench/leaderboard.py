"""``scgan leaderboard``: put every method through one protocol on the same images, then write the results.

This module is the run: it reads the configuration, lists the images, loads the methods (``bench.methods``) and the
classifier, evaluates (``bench.evaluation``, sharded under torchrun), and on rank 0 writes, in the output folder:
``rows.csv`` (one row per image and method), ``dataset_metrics.csv`` (FID), the image figures (``bench.figures``:
``samples.png``, ``worst_*.png``), the report (``bench.report``: ``leaderboard.csv``, ``leaderboard.md``,
``cci_boxplot.png``, ``report.html``) and ``run.json`` (provenance from ``bench.provenance``). docs/leaderboard.md
describes every file and column.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.evaluation import (
    EvalResult,
    EvalSettings,
    Timer,
    dataset_metrics_frame,
    evaluate,
    merge_results,
    rows_frame,
)
from bench.methods import ColorizationCache, MethodRun, default_methods, load_methods, method_files, sample_renderer
from bench.protocols import CLASSIFIER_METRICS, DEFAULT_PROTOCOL, LABEL_METRICS, Protocol, get_protocol
from bench.provenance import device_description, git_commit, versions
from scgan.errors import ImageReadError, InputError

DEFAULT_OUT = "leaderboard-out"
SAMPLES_IN_GRID = 4
WORST_K = 3


@dataclass
class LeaderboardConfig:
    """Everything ``scgan leaderboard`` takes (see ``bench/commands/leaderboard.py`` for the options)."""

    data: str = "samples"
    labels: str | None = None
    methods: list = field(default_factory=list)  # specs or method objects; empty = default_methods()
    out: Path = Path(DEFAULT_OUT)
    protocol: str = DEFAULT_PROTOCOL  # "wang": luminance-keeping (bench.protocols)
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
    with Timer(setup_timings, "load_methods_s"):
        runs = load_methods(specs, config.device, protocol, config.batch_size, skip_bad=config.skip_bad)
    classifier = None
    if any(m in CLASSIFIER_METRICS for m in chosen_metrics):
        from metrics.classifier import load_classifier

        with Timer(setup_timings, "load_classifier_s"):
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
        from scgan.saliency_detectors import build_detector

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
        merged = merge_results([r for r, _ in gathered])
        merged.timings.update(setup_timings)
        return _write_outputs(LeaderboardRun(config, protocol, chosen_metrics, entries, runs, classifier, settings,
                                             cache, world_size, started, started_at), merged)
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


@dataclass
class LeaderboardRun:
    """What a run set up and what its outputs are written from (besides the merged evaluation result)."""

    config: LeaderboardConfig
    protocol: Protocol  # the protocol measured (its classifier replaced when --classifier overrides it)
    metrics: tuple[str, ...]
    entries: list  # scgan.data.ImageEntry of every listed image
    runs: list[MethodRun]
    classifier: object | None
    settings: EvalSettings
    cache: ColorizationCache
    world_size: int
    started: float  # time.perf_counter() at the start
    started_at: str  # ISO time (UTC) at the start

    @property
    def out(self) -> Path:
        return Path(self.config.out)


def _write_outputs(run: LeaderboardRun, merged: EvalResult) -> dict:
    """Write rows.csv, dataset_metrics.csv, the figures, the report and run.json; returns the rows, summary, run info
    and output folder."""
    from bench import figures, report, tables

    config, runs, protocol, out = run.config, run.runs, run.protocol, run.out
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
    evaluated_s = time.perf_counter() - run.started
    out.mkdir(parents=True, exist_ok=True)
    report.write_rows(rows, out / "rows.csv")
    if dataset is not None:
        dataset = dataset.assign(protocol=protocol.name, protocol_hash=protocol.hash)
        report.write_rows(dataset, out / "dataset_metrics.csv")
    figures_started = time.perf_counter()
    render = sample_renderer(runs, run.entries, protocol, config.device, run.cache)
    images_written = figures.write_image_figures(out, rows, method_order, render, config.samples, config.worst_k)
    figures_s = time.perf_counter() - figures_started
    run_info = _run_info(run, merged, rows, evaluated_s, figures_s)
    report_started = time.perf_counter()
    summary = report.build_report(rows, dataset, out, run_info=run_info, extra_images=images_written)
    run_info["timings_s"]["report_s"] = round(time.perf_counter() - report_started, 4)
    run_info["timings_s"]["total"] = round(time.perf_counter() - run.started, 4)
    report.write_json(run_info, out / "run.json")
    return {"rows": rows, "summary": summary, "run": run_info, "out": out}


def _run_info(run: LeaderboardRun, merged: EvalResult, rows: pd.DataFrame, evaluated_s: float,
              figures_s: float) -> dict:
    """run.json: what was measured, with what, on what, and how long it took."""
    from scgan import data

    config, runs, protocol, classifier = run.config, run.runs, run.protocol, run.classifier
    saliency_dir = run.settings.saliency_dir
    out = run.out
    return {
        "command": "scgan leaderboard",
        "started_at": run.started_at,
        "data": str(config.data),
        "labels": str(config.labels) if config.labels else None,
        "images_listed": len(run.entries),
        "images_evaluated": int(rows["file"].nunique()),
        "gray_excluded": merged.gray_excluded,
        "bad": merged.bad,
        "protocol": {"name": protocol.name, "hash": protocol.hash, "params": protocol.params()},
        "resize_policy": data.resize_policy_info(protocol.resize_policy),
        "metrics": list(run.metrics),
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
        "world_size": run.world_size,
        "versions": versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "host": device_description(config.device),
        "cache": {"dir": str(out / "cache") if config.cache else None, "hits": merged.cache_hits,
                  "misses": merged.cache_misses, "invalid_recomputed": merged.cache_invalid},
        "colorize_calls": merged.colorize_calls,
        "timings_s": {**{k: round(v, 4) for k, v in sorted(merged.timings.items())},
                      "evaluate_total": round(evaluated_s, 4), "figures_s": round(figures_s, 4)},
    }


def distributed_context() -> tuple[int, int]:
    """(rank, world_size) under torchrun (gloo process group initialised here), (0, 1) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch.distributed as dist

    from scgan.training.distributed import join_process_group

    join_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def _gather(result: EvalResult | None, error: str | None, world_size: int):
    """All ranks' (result, error) pairs on every rank (gloo, pickled objects)."""
    if world_size == 1:
        return [(result, error)]
    import torch.distributed as dist

    gathered: list = [None] * world_size
    dist.all_gather_object(gathered, (result, error))
    return gathered
