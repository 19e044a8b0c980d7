"""`scgan eval`: compare colorizations with their ground truth, one row per image plus a dataset summary."""

from __future__ import annotations

import argparse

NAME = "eval"
HELP = "evaluate colorizations against ground truth: per-image metric rows (CSV) and a dataset summary"
DESCRIPTION = """\
Pair ground-truth and predicted images by name (relative path; the extension may differ), compute the metrics of
docs/metrics.md on every pair, write one CSV row per image (file + one column per metric) and print the dataset
summary (means of per-image values, cci_ratio, delta_cf, top1, ...). Gray ground-truth images are excluded and listed.
Without --metrics: every metric that needs no classifier, plus top1/top5/top1_agree when --labels is given.
--demo evaluates the embedded sample photos against a degraded copy (desaturated by half, then JPEG quality 30).
"""

# Added to the default set when --labels is given.
LABEL_METRICS = ("top1", "top5", "top1_agree")

# The --demo degradation: keep this much of the chroma (blend with BT.601 gray), then JPEG at this quality.
DEMO_SATURATION = 0.5
DEMO_JPEG_QUALITY = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", help="ground truth: image folder, list file, or 'samples' (the embedded photos)")
    parser.add_argument("--pred", help="predictions: image folder or list file, files named like the ground truth")
    parser.add_argument("--labels", help="labels CSV (file,label) of the ground truth; enables top1/top5")
    parser.add_argument(
        "--metrics",
        help="comma-separated metric names (default: all that need no classifier; see `--list-metrics`)",
    )
    parser.add_argument("--list-metrics", action="store_true", help="print the metric registry and exit")
    parser.add_argument(
        "--resize",
        default="native",
        help="resize policy applied to both sides: squash256 | crop256 | native (default: native, sizes must match)",
    )
    parser.add_argument("--out", help="rows CSV to write (required; with --demo: an output folder)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable files and list them in the summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--demo", action="store_true", help="evaluate the embedded samples against a degraded copy")
    parser.add_argument("--classifier", default="efficientnet-lite0",
                        help="classifier for top1/top5/top1_agree/fid_effl0: efficientnet-lite0 | vgg16:PATH | "
                             "onnx:PATH (default: efficientnet-lite0)")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"),
                        help="classifier backend (default: onnxruntime)")
    parser.add_argument("--device", default="cpu", help="device for the classifier (cpu, cuda, auto)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per metric batch (default 16)")


def run(args: argparse.Namespace) -> int:
    from scgan.errors import InputError

    if args.list_metrics:
        return _print_registry()
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    from metrics.engine import use_image_workers

    use_image_workers()  # threads set once for the run: one intra-op thread, images spread over the cores
    if args.demo:
        return _run_demo(args)
    for flag in ("gt", "pred", "out"):
        if not getattr(args, flag):
            raise InputError(f"--{flag} is required (or use --demo)")
    from pathlib import Path

    if Path(args.out).is_dir():
        raise InputError(f"--out {args.out}: is a folder; give the rows CSV path, e.g. {Path(args.out) / 'rows.csv'}")
    _check_outputs(args, {"--out": args.out, "summary": _summary_path(args.out)}, args.gt, args.pred)
    result = evaluate(args, args.gt, args.pred)
    _write_outputs(args, result, rows_path=args.out, summary_path=_summary_path(args.out))
    return 0


def _check_outputs(args, outputs: dict, gt_source, pred_source) -> None:
    """The output-safety rule (scgan.paths), before any image is read: outputs apart from every input, the rows
    file named .csv, its folder writable."""
    from scgan import data, paths

    rows_path = outputs["--out"]
    paths.check_suffix("--out", rows_path, (".csv",), "the rows CSV")
    inputs = {"--labels": args.labels}
    for flag, source in (("--gt", gt_source), ("--pred", pred_source)):
        # the listed files too: a list file's images may live anywhere
        inputs[flag] = [source, *(e.path for e in data.list_images(source))]
    paths.check_outputs_apart(outputs, inputs)
    for label, path in outputs.items():
        paths.prepare_output_file(label, path)


def _summary_path(rows_path):
    from pathlib import Path

    rows_path = Path(rows_path)
    return rows_path.with_name(rows_path.stem + ".summary.json")


def _print_registry() -> int:
    import metrics

    print(f"{'metric':<16} {'level':<8} {'better':<7} {'needs':<22} description")
    for name in metrics.list_metrics():
        info = metrics.metric_info(name)
        flags = (("gt", info.paired), ("labels", info.needs_labels), ("classifier", info.needs_classifier),
                 ("saliency", info.needs_saliency))
        needs = ", ".join(word for word, flag in flags if flag) or "-"
        print(f"{name:<16} {info.level:<8} {_direction(info):<7} {needs:<22} {info.description}")
    return 0


def _direction(info) -> str:
    return {True: "higher", False: "lower", None: "-"}[info.higher_is_better]


def _choose_metrics(args) -> list[str]:
    from metrics.registry import default_metrics
    from metrics.suite import parse_metric_names

    if args.metrics:
        return parse_metric_names(args.metrics)
    names = default_metrics()  # the registry's metrics that need only the image pairs
    if args.labels:
        names += list(LABEL_METRICS)
    return names


def evaluate(args, gt_source, pred_source) -> dict:
    """Pair, read, resize and score every image; returns rows (list of dicts) and the summary dict. Writes nothing."""
    import numpy as np
    import torch

    from metrics import metric_info
    from metrics.suite import MetricSuite
    from scgan import data
    from scgan.errors import ImageReadError, InputError

    names = _choose_metrics(args)
    policy = data.get_resize_policy(args.resize)
    gt_entries = data.list_images(gt_source)
    pred_entries = data.list_images(pred_source)
    pairs = data.pair_by_name(gt_entries, pred_entries)
    labels = None
    if args.labels:
        labels = data.load_labels(args.labels)
        gt_named = data.attach_labels([gt for gt, _ in pairs], labels, source=str(gt_source))
        pairs = [(gt, pred) for gt, (_, pred) in zip(gt_named, pairs)]
    needing = [n for n in names if metric_info(n).needs_labels]
    if needing and labels is None:
        raise InputError(f"metric(s) {', '.join(needing)} need --labels CSV")
    suite = MetricSuite(names, classifier=args.classifier, backend=args.backend, device=args.device)

    kept_pairs: list[tuple] = []
    gray_excluded: list[str] = []
    bad: list[dict] = []
    batch: list[tuple] = []  # (gt_name, pred_name, gt uint8 HWC, pred uint8 HWC, label)

    def flush() -> None:
        if not batch:
            return
        gt = torch.from_numpy(np.stack([b[2] for b in batch])).permute(0, 3, 1, 2)
        pred = torch.from_numpy(np.stack([b[3] for b in batch])).permute(0, 3, 1, 2)
        batch_labels = torch.tensor([b[4] for b in batch]) if suite.needs_labels else None
        suite.update(pred, gt, batch_labels)
        kept_pairs.extend((b[0], b[1], b[4]) for b in batch)
        batch.clear()

    iterator = pairs
    if not args.quiet:
        from tqdm import tqdm

        iterator = tqdm(pairs, desc="eval", unit="img")
    for gt_entry, pred_entry in iterator:
        try:
            gt_img, gt_is_gray = data.load_for_protocol(gt_entry.path, policy)
            if gt_is_gray:
                gray_excluded.append(gt_entry.name)
                continue
            pred_img, _ = data.load_for_protocol(pred_entry.path, policy)
        except ImageReadError as exc:
            if not args.skip_bad:
                raise
            bad.append({"file": gt_entry.name, "path": str(exc.path), "reason": exc.reason})
            continue
        if gt_img.shape != pred_img.shape:
            raise InputError(
                f"{pred_entry.path}: size {pred_img.shape[1]}x{pred_img.shape[0]} differs from its ground truth "
                f"{gt_entry.path} ({gt_img.shape[1]}x{gt_img.shape[0]}) under --resize {policy.name}; "
                "use --resize squash256 or crop256"
            )
        if batch and batch[0][2].shape != gt_img.shape:
            flush()  # images of another size: a batch holds one size
        batch.append((gt_entry.name, pred_entry.name, gt_img, pred_img, gt_entry.label))
        if len(batch) >= args.batch_size:
            flush()
    flush()
    if not kept_pairs:
        raise InputError(
            f"no image pairs left to evaluate in {gt_source} ({len(gray_excluded)} gray, {len(bad)} unreadable)"
        )

    columns = suite.columns()
    rows = []
    for i, (gt_name, pred_name, label) in enumerate(kept_pairs):
        row = {"file": gt_name, "pred_file": pred_name, "resize": policy.name}
        if labels is not None:
            row["label"] = label
        row.update({name: float(values[i]) for name, values in columns.items()})
        rows.append(row)
    summary = {
        "images": len(kept_pairs),
        "metrics": suite.summary(),
        "resize": policy.info(),
        "gt": str(gt_source),
        "pred": str(pred_source),
        "gray_excluded": gray_excluded,
        "bad": bad,
    }
    if suite.classifier is not None:
        summary["classifier"] = suite.classifier_info()
    if "fid_effl0" in names:
        summary["notes"] = ["fid_effl0 uses EfficientNet-Lite0 features: not comparable to standard (Inception) FID"]
    if "psnr" in names and np.isinf(columns["psnr"]).any():
        summary.setdefault("notes", []).append(
            f"{int(np.isinf(columns['psnr']).sum())} identical pair(s) have psnr = inf, so the mean psnr is inf"
        )
    return {"names": names, "rows": rows, "summary": summary}


def _write_outputs(args, result: dict, rows_path, summary_path) -> None:
    import csv
    import io
    import json
    import math

    from metrics.suite import jsonable
    from scgan.atomic import write_bytes

    rows = result["rows"]
    fieldnames = list(rows[0].keys())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # repr() of a float is the shortest text that reads back to the same float; inf stays "inf".
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    summary = dict(result["summary"])
    summary["rows"] = str(rows_path)
    text_json = json.dumps(jsonable(summary), indent=2)
    # One unit: both texts are encoded before anything is written (an unencodable name fails here, with the previous
    # pair intact); then the rows, then the summary, each atomically, so a summary never describes other rows.
    rows_bytes, summary_bytes = buffer.getvalue().encode("utf-8"), (text_json + "\n").encode("utf-8")
    write_bytes(rows_path, rows_bytes)
    write_bytes(summary_path, summary_bytes)
    if args.json:
        print(text_json)
        return
    resize = summary["resize"]["name"]
    print(f"{summary['images']} images  (gt {summary['gt']}, pred {summary['pred']}, resize {resize})")
    print(f"{'metric':<12} {'value':>14}  better")
    import metrics

    for name, value in summary["metrics"].items():
        better = _direction(metrics.metric_info(name))
        shown = f"{value:14.6f}" if math.isfinite(value) else f"{value!s:>14}"
        print(f"{name:<12} {shown}  {better}")
    if summary["gray_excluded"]:
        print(f"gray ground truth excluded ({len(summary['gray_excluded'])}): {', '.join(summary['gray_excluded'])}")
    if summary["bad"]:
        print(f"unreadable files skipped ({len(summary['bad'])}): " + ", ".join(b["file"] for b in summary["bad"]))
    for note in summary.get("notes", []):
        print(f"note: {note}")
    print(f"rows: {rows_path}\nsummary: {summary_path}")


def make_degraded_copy(out_dir, quiet: bool = True) -> list:
    """Write the --demo predictions: every embedded sample photo desaturated by half (blend with its BT.601 gray)
    and saved as JPEG quality 30, named ``<stem>.jpg`` under ``out_dir``. Returns the written paths."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from scgan import data
    from scgan.atomic import atomic_path

    out_dir = Path(out_dir)
    written = []
    for entry in data.list_images("samples"):
        img = data.load_image(entry.path).astype(np.float64)
        gray = img @ np.array([0.299, 0.587, 0.114])
        degraded = gray[..., None] + DEMO_SATURATION * (img - gray[..., None])
        degraded = np.clip(np.floor(degraded + 0.5), 0, 255).astype(np.uint8)
        path = out_dir / (data.name_stem(entry.name) + ".jpg")
        with atomic_path(path) as tmp:
            Image.fromarray(degraded).save(tmp, format="JPEG", quality=DEMO_JPEG_QUALITY)
        written.append(path)
    return written


def _run_demo(args) -> int:
    from pathlib import Path

    from scgan.errors import InputError

    if not args.out:
        raise InputError("--demo needs --out DIR (the folder for the degraded copy, rows.csv and summary.json)")
    if args.gt or args.pred:
        raise InputError("--demo uses the embedded samples and its own degraded copy: leave out --gt and --pred")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: with --demo it must be a folder")
    from scgan import paths

    paths.check_outputs_apart({"--out": out_dir}, {"--labels": args.labels})
    paths.prepare_output_dir("--out", out_dir)
    pred_dir = out_dir / "pred"
    make_degraded_copy(pred_dir)
    result = evaluate(args, "samples", pred_dir)
    result["summary"]["demo"] = (
        f"ground truth: the embedded sample photos; predictions: desaturated to {DEMO_SATURATION:g} of their chroma "
        f"(blend with BT.601 gray) and saved as JPEG quality {DEMO_JPEG_QUALITY} in {pred_dir}"
    )
    _write_outputs(args, result, rows_path=out_dir / "rows.csv", summary_path=out_dir / "summary.json")
    return 0
