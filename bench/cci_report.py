"""CCI report of a folder of colorizations (and of its ground truth): distribution, ratio with its interval, outliers.

CCI is the Hasler-Suesstrunk colourfulness with signed rg/yb (``metrics`` ``cci``), measured at each file's native
size on its 8-bit values. The CCI ratio is the share of images with ``16 <= cci <= 20`` (bounds inclusive; the SCGAN
paper's "natural" band) with its Wilson 95% interval; the mean CCI has a percentile-bootstrap interval
(``bench.stats``). Outliers are the images furthest outside the band: distance ``max(16 - cci, cci - 20)``.

Outputs in ``--out``: ``cci.csv`` (file, cci [, cci_gt], in_band, distance), ``cci_report.md``, ``cci_hist.png``,
``cci_boxplot.png``, ``cci_outliers.png``, ``cci_summary.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench import figures, report, stats
from scgan.atomic import write_text
from scgan.errors import ImageReadError

CCI_BAND = (16.0, 20.0)
N_OUTLIERS = 8


def _cci_of(path: Path) -> tuple[float, np.ndarray]:
    """(CCI of the file's 8-bit RGB values at its native size, the decoded uint8 (H, W, 3) image)."""
    from metrics.functional import cci
    from scgan import data

    image = data.load_image(path)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    return float(cci(tensor)[0]), image


def band_distance(cci: np.ndarray, band=CCI_BAND) -> np.ndarray:
    """How far each value lies outside the band (0 inside)."""
    return np.maximum(np.maximum(band[0] - cci, cci - band[1]), 0.0)


def summarize_cci(values: np.ndarray, band=CCI_BAND) -> dict:
    """Mean CCI (bootstrap CI) and CCI ratio (Wilson CI) of per-image values."""
    inside = (values >= band[0]) & (values <= band[1])
    mean = stats.bootstrap_mean_ci(values)
    ratio = stats.proportion_ci(inside.astype(np.float64))
    return {
        "images": int(values.size),
        "cci_mean": mean.estimate, "cci_mean_low": mean.low, "cci_mean_high": mean.high,
        "cci_median": float(np.median(values)) if values.size else float("nan"),
        "cci_ratio": ratio.estimate, "cci_ratio_low": ratio.low, "cci_ratio_high": ratio.high,
        "below_band": int((values < band[0]).sum()), "in_band": int(inside.sum()),
        "above_band": int((values > band[1]).sum()),
    }


def run_cci_report(pred: str, out: Path, gt: str | None = None, skip_bad: bool = False, quiet: bool = True) -> dict:
    """Measure, summarise and write the CCI report; returns the summary dict."""
    from scgan import data, paths

    out = Path(out)
    pred_entries = data.list_images(pred)
    pairs = None
    if gt is not None:
        pairs = data.pair_by_name(data.list_images(gt), pred_entries)
    items = [(p, g) for g, p in pairs] if pairs is not None else [(p, None) for p in pred_entries]
    # The output-safety rule (scgan.paths), before any image is measured.
    paths.check_outputs_apart({"--out": out}, {"--pred": [pred, *(p.path for p, _ in items)],
                                               "--gt": None if gt is None else [gt, *(g.path for _, g in items)]})
    paths.prepare_output_dir("--out", out)
    records, thumbnails, bad = [], {}, []
    iterator = items
    if not quiet:
        from tqdm import tqdm

        iterator = tqdm(items, desc="cci", unit="img")
    for pred_entry, gt_entry in iterator:
        try:
            value, image = _cci_of(pred_entry.path)
            record = {"file": pred_entry.name, "cci": value}
            if gt_entry is not None:
                record["cci_gt"], _ = _cci_of(gt_entry.path)
        except ImageReadError as exc:
            if not skip_bad:
                raise
            bad.append({"file": pred_entry.name, "reason": exc.reason})
            continue
        records.append(record)
        thumbnails[pred_entry.name] = _thumbnail(image)
    if not records:
        raise ValueError(f"--pred {pred}: no readable image")
    frame = pd.DataFrame.from_records(records)
    frame["in_band"] = (frame["cci"] >= CCI_BAND[0]) & (frame["cci"] <= CCI_BAND[1])
    frame["distance"] = band_distance(frame["cci"].to_numpy())
    out.mkdir(parents=True, exist_ok=True)
    report.write_rows(frame, out / "cci.csv")
    summary = {"pred": summarize_cci(frame["cci"].to_numpy()), "band": list(CCI_BAND), "bad": bad,
               "pred_dir": str(pred), "gt_dir": str(gt) if gt else None}
    if "cci_gt" in frame.columns:
        summary["gt"] = summarize_cci(frame["cci_gt"].to_numpy())
    report.write_json(summary, out / "cci_summary.json")
    _plots(frame, out, thumbnails)
    write_text(out / "cci_report.md", _markdown(summary, frame))
    return summary


def _thumbnail(image: np.ndarray, size: int = 160) -> np.ndarray:
    from PIL import Image

    thumb = Image.fromarray(image)
    thumb.thumbnail((size, size))
    return np.asarray(thumb)


def _plots(frame: pd.DataFrame, out: Path, thumbnails: dict) -> None:
    plt = figures.pyplot()
    series = {"colorizations": frame["cci"].to_numpy()}
    if "cci_gt" in frame.columns:
        series["ground truth"] = frame["cci_gt"].to_numpy()
    figure, axes = plt.subplots(figsize=(6, 3.5))
    high = max(40.0, max(float(v.max()) for v in series.values()) * 1.05)
    bins = np.linspace(0.0, high, 41)
    axes.axvspan(*CCI_BAND, color="tab:green", alpha=0.2, label="[16, 20]")
    for name, values in series.items():
        axes.hist(values, bins=bins, alpha=0.6, label=name)
    axes.set_xlabel("CCI")
    axes.set_ylabel("images")
    axes.legend()
    figures.save_figure(figure, out / "cci_hist.png")
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.axhspan(*CCI_BAND, color="tab:green", alpha=0.2)
    axes.boxplot(list(series.values()), showmeans=True)
    axes.set_xticks(range(1, len(series) + 1), list(series))
    axes.set_ylabel("CCI")
    figures.save_figure(figure, out / "cci_boxplot.png")
    outliers = frame[frame["distance"] > 0].sort_values("distance", ascending=False).head(N_OUTLIERS)
    if outliers.empty:
        return
    figure, axes = plt.subplots(1, len(outliers), figsize=(2.0 * len(outliers), 2.4), squeeze=False)
    for ax, row in zip(axes[0], outliers.itertuples()):
        ax.imshow(thumbnails[row.file])
        ax.set_title(f"{row.file}\nCCI {row.cci:.1f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    figures.save_figure(figure, out / "cci_outliers.png")


def _markdown(summary: dict, frame: pd.DataFrame) -> str:
    from bench.tables import escape_markdown, markdown_table

    lines = ["# CCI report", "", f"Colorizations: {escape_markdown(summary['pred_dir'])}" +
             (f"; ground truth: {escape_markdown(summary['gt_dir'])}" if summary.get("gt_dir") else ""), ""]
    header = ["set", "images", "mean CCI [95% CI]", "median", "CCI ratio [95% CI]", "below 16", "in [16, 20]",
              "above 20"]
    body = []
    for key, name in (("pred", "colorizations"), ("gt", "ground truth")):
        if key not in summary:
            continue
        s = summary[key]
        body.append([name, s["images"], f"{s['cci_mean']:.2f} [{s['cci_mean_low']:.2f}, {s['cci_mean_high']:.2f}]",
                     f"{s['cci_median']:.2f}",
                     f"{100 * s['cci_ratio']:.1f}% [{100 * s['cci_ratio_low']:.1f}, {100 * s['cci_ratio_high']:.1f}]",
                     s["below_band"], s["in_band"], s["above_band"]])
    lines.append(markdown_table(header, body))
    lines += ["", "Mean: percentile bootstrap (10000 resamples, seed 0). Ratio: share of images with 16 <= CCI <= 20, "
              "Wilson interval.", "", "## Furthest outside [16, 20]", ""]
    outliers = frame[frame["distance"] > 0].sort_values("distance", ascending=False).head(N_OUTLIERS)
    columns = ["file", "cci"] + (["cci_gt"] if "cci_gt" in frame.columns else []) + ["distance"]
    lines.append(markdown_table(columns, [[r[c] if c == "file" else f"{r[c]:.2f}" for c in columns]
                                          for _, r in outliers.iterrows()]))
    if summary.get("bad"):
        lines += ["", "Unreadable files skipped: " + escape_markdown(
            ", ".join(f"{b['file']} ({b['reason']})" for b in summary["bad"]))]
    lines += ["", "Plots: cci_hist.png, cci_boxplot.png, cci_outliers.png.", ""]
    return "\n".join(lines)
