"""Report files from tidy rows: tables (CSV, Markdown), the CCI box plot and one self-contained HTML page.

The renderer only renders what it is given: ``build_report`` needs the rows (plus ``dataset_metrics.csv`` for FID) and
the paths of figures already written (``bench.figures``: the leaderboard run writes ``samples.png`` and
``worst_*.png``; ``scgan report --rows`` finds them with :func:`bench.figures.existing_figures`). It never loads a
method or an image.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench import figures, stats, tables
from bench.protocols import caption, caption_words
from scgan.atomic import atomic_path, write_text

CAST_FLAG_MAGNITUDE = 2.0  # |mean (a*, b*) bias| in CIELAB units that counts as a colour cast (when significant)


# ---------------------------------------------------------------------------------------------------------- writers
def write_rows(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as CSV atomically (floats with full precision: ``repr`` round-trips)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=None)
    return Path(path)


def read_rows(path: Path) -> pd.DataFrame:
    """Read ``rows.csv`` back (``error`` as text, empty when the image was produced)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--rows: file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype={"file": str, "method": str, "error": str, "protocol_hash": str},
                            keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"--rows: {path}: not a readable CSV ({exc})") from exc
    if "error" in frame.columns:
        frame["error"] = frame["error"].fillna("")
    return frame


def write_json(payload: dict, path: Path) -> Path:
    return write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


# ------------------------------------------------------------------------------------------------------ diagnostics
def diagnostics_frame(rows: pd.DataFrame, summary: tables.Summary) -> pd.DataFrame | None:
    """Per method on the compared images: colour cast (mean a*/b* bias vs GT with bootstrap CIs, flagged when
    its magnitude is at least ``CAST_FLAG_MAGNITUDE`` and the CI of the larger component excludes 0) and the number of
    near-gray outputs (the gray rule of docs/data.md applied to the colorization)."""
    if not {"cast_a", "cast_b"} <= set(rows.columns) or not summary.common_files:
        return None
    records = []
    for m in summary.methods:
        a = tables.column_values(rows, m, summary.common_files, "cast_a")
        b = tables.column_values(rows, m, summary.common_files, "cast_b")
        ia, ib = stats.bootstrap_mean_ci(a, n_resamples=2000), stats.bootstrap_mean_ci(b, n_resamples=2000)
        magnitude = math.hypot(ia.estimate, ib.estimate)
        main = ia if abs(ia.estimate) >= abs(ib.estimate) else ib
        significant = not (main.low <= 0.0 <= main.high)
        record = {
            "method": m, "cast_a": ia.estimate, "cast_a_low": ia.low, "cast_a_high": ia.high,
            "cast_b": ib.estimate, "cast_b_low": ib.low, "cast_b_high": ib.high, "cast_magnitude": magnitude,
            "cast_direction": _cast_direction(ia.estimate, ib.estimate),
            "cast_flag": bool(magnitude >= CAST_FLAG_MAGNITUDE and significant),
        }
        if "near_gray" in rows.columns:
            near = tables.column_values(rows, m, summary.common_files, "near_gray")
            record["near_gray"] = int(np.nansum(near))
            record["near_gray_fraction"] = float(np.nanmean(near))
        records.append(record)
    return pd.DataFrame.from_records(records)


def _cast_direction(a: float, b: float) -> str:
    """Hue name of a mean (a*, b*) bias: red/green on a*, yellow/blue on b* (yellow-red is the sepia/brown cast)."""
    parts = []
    if abs(b) >= 0.5:
        parts.append("yellow" if b > 0 else "blue")
    if abs(a) >= 0.5:
        parts.append("red" if a > 0 else "green")
    return "-".join(parts) if parts else "neutral"


def per_class_frame(rows: pd.DataFrame, summary: tables.Summary) -> pd.DataFrame | None:
    """Per (class label, method) on the compared images: image count and the mean of each per-image metric."""
    if "label" not in rows.columns or not summary.common_files:
        return None
    subset = rows[rows["method"].isin(summary.methods) & rows["file"].isin(summary.common_files)]
    subset = subset[subset["label"] >= 0]
    if subset.empty:
        return None
    metric_columns = [c for c in ("psnr", "ssim", "ssim_scgan", "delta_e00", "auc_ab", "cci", "top1", "top5")
                      if c in subset.columns]
    grouped = subset.groupby(["label", "method"], sort=True)
    frame = grouped[metric_columns].mean()
    frame.insert(0, "images", grouped.size())
    return frame.reset_index()


# ------------------------------------------------------------------------------------------------------------ tables
def _table_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def fmt(value) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else ""
        if isinstance(value, (float, np.floating)):
            return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    return tables.markdown_table(list(frame.columns), [[fmt(v) for v in row] for row in frame.itertuples(False)])


def _sections(rows: pd.DataFrame, summary: tables.Summary, diagnostics, per_class, run_info: dict | None):
    """(title, kind, payload) sections shared by the Markdown and the HTML report."""
    sections = []
    main_columns = [c for c in summary.columns if c in tables.TABLE_COLUMNS]
    saliency_columns = [c for c in summary.columns if c in tables.SALIENCY_COLUMNS]
    sections.append(("Leaderboard", "table", tables.main_table(summary, main_columns)))
    sections.append(("", "text", tables.legend(summary)))
    coverage = summary.coverage.copy()
    coverage["in_table"] = coverage["method"].isin(summary.methods)
    sections.append(("Coverage", "frame", coverage))
    if saliency_columns:
        sections.append(("Saliency-aware evaluation", "table", tables.main_table(summary, saliency_columns)))
        sections.append(("", "text", "Salient pixels: saliency >= threshold (run.json protocol params). PSNR/CCI "
                                     "inside vs outside; colour bleeding: mean CIELAB ab error within the band of "
                                     "half-width k pixels around the salient-object boundary (docs/leaderboard.md)."))
    if diagnostics is not None:
        sections.append(("Colour cast and near-gray outputs", "frame", diagnostics))
        sections.append(("", "text", f"cast_a/cast_b: mean a*/b* of the colorization minus the ground truth's (CIELAB, "
                                     f"bootstrap 95% CI); cast_flag: magnitude >= {CAST_FLAG_MAGNITUDE} and "
                                     "significant. near_gray: outputs whose 99th percentile of |R-G|+|G-B| is at most "
                                     "2 (the gray rule of the data layer)."))
    if per_class is not None:
        hardest = per_class
        if "delta_e00" in per_class.columns:
            worst_labels = (per_class.groupby("label")["delta_e00"].mean().sort_values(ascending=False)
                            .head(10).index)
            hardest = per_class[per_class["label"].isin(worst_labels)]
        sections.append(("Per-class breakdown (10 hardest classes by mean delta E00; all in per_class.csv)", "frame",
                         hardest))
    if summary.notes:
        sections.append(("Notes", "names", " ".join(summary.notes)))
    if run_info:
        excluded = run_info.get("gray_excluded") or []
        bad = run_info.get("bad") or []
        lines = []
        if excluded:
            lines.append(f"Gray ground truth excluded ({len(excluded)}): {', '.join(excluded[:20])}")
        if bad:
            lines.append(f"Unreadable files skipped ({len(bad)}): " + ", ".join(f"{b['file']} ({b['reason']})"
                                                                             for b in bad[:20]))
        for failed in run_info.get("methods_failed") or []:
            lines.append(f"Method {failed['name']} failed and was left out: {failed['reason']}")
        if lines:
            sections.append(("Excluded images", "names", " ".join(lines)))
    return sections


def markdown_report(summary: tables.Summary, sections, run_info: dict | None) -> str:
    lines = ["# Colorization leaderboard", ""]
    lines.append(f"{caption(summary.protocol)}, hash `{summary.protocol_hash}`; {len(summary.common_files)} images "
                 f"compared; {len(summary.methods)} methods.")
    if run_info and run_info.get("protocol", {}).get("params"):
        lines.append(f"{run_info['protocol']['params'].get('description', '')}")
    lines.append("")
    for title, kind, payload in sections:
        if title:
            lines += [f"## {title}", ""]
        if kind == "table":
            lines.append(tables.markdown_table(*payload))
        elif kind == "frame":
            lines.append(_table_markdown(payload))
        elif kind == "names":  # free text that holds file or method names
            lines.append(tables.escape_markdown(payload))
        else:
            lines.append(payload)
        lines.append("")
    return "\n".join(lines)


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _figure_title(path: Path) -> str:
    if path.name == "cci_boxplot.png":
        return "CCI per method (band [16, 20] shaded)"
    if path.name == "samples.png":
        return "Samples: gray input, each method, ground truth"
    if path.name.startswith("worst_"):
        return f"Worst images of {path.stem[len('worst_'):]} (same crop in every column)"
    return path.stem.replace("_", " ")


def _html_table(header: list[str], body: list[list[str]]) -> str:
    def cell(text: str) -> str:
        escaped = html.escape(str(text))
        if escaped.startswith("**"):
            end = escaped.find("**", 2)
            escaped = f"<b>{escaped[2:end]}</b>{escaped[end + 2:]}"
        return escaped

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def html_report(summary: tables.Summary, sections, images: list[Path], run_info: dict | None) -> str:
    """One self-contained page: inline CSS, tables, PNGs as base64 data URIs; no external reference at all."""
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>Colorization leaderboard</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
        "margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "th{background:#f0f0f0}td:first-child{text-align:left}img{max-width:100%;margin:1em 0}"
        "p.note{color:#444;font-size:13px}</style></head><body>",
        "<h1>Colorization leaderboard</h1>",
        f"<p>Protocol <code>{html.escape(summary.protocol)}</code>{html.escape(caption_words(summary.protocol))} (hash "
        f"<code>{html.escape(summary.protocol_hash)}</code>); {len(summary.common_files)} images compared; "
        f"{len(summary.methods)} methods.</p>",
    ]
    for title, kind, payload in sections:
        if title:
            parts.append(f"<h2>{html.escape(title)}</h2>")
        if kind == "table":
            parts.append(_html_table(*payload))
        elif kind == "frame":
            body = [["" if (isinstance(v, float) and math.isnan(v)) else
                     (f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)) for v in row]
                    for row in payload.itertuples(False)]
            parts.append(_html_table([str(c) for c in payload.columns], body))
        else:
            parts.append(f"<p class=\"note\">{html.escape(payload)}</p>")
    for image in images:
        parts.append(f"<h2>{html.escape(_figure_title(Path(image)))}</h2>")
        parts.append(f"<img alt=\"{html.escape(Path(image).name)}\" src=\"{_png_data_uri(image)}\">")
    if run_info:
        keep = {k: run_info.get(k) for k in ("protocol", "versions", "git_commit", "host", "methods", "timings_s")}
        parts.append("<h2>Run</h2><pre>" + html.escape(json.dumps(keep, indent=1, default=str)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(rows: pd.DataFrame, dataset: pd.DataFrame | None, out: Path, run_info: dict | None = None,
                 extra_images: list[Path] | None = None, n_resamples: int = stats.N_BOOTSTRAP) -> tables.Summary:
    """Write leaderboard.csv/.md, diagnostics.csv, per_class.csv, cci_boxplot.png and report.html into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    band = (16.0, 20.0)
    if run_info and run_info.get("protocol", {}).get("params", {}).get("cci_band"):
        band = tuple(run_info["protocol"]["params"]["cci_band"])
    input_sizes = {m["name"]: m.get("input_size") for m in (run_info or {}).get("methods", [])}
    summary = tables.summarize(rows, dataset, cci_band=band, n_resamples=n_resamples, input_sizes=input_sizes or None)
    write_rows(tables.leaderboard_frame(summary), out / "leaderboard.csv")
    diagnostics = diagnostics_frame(rows, summary)
    if diagnostics is not None:
        write_rows(_with_protocol(diagnostics, summary), out / "diagnostics.csv")
    per_class = per_class_frame(rows, summary)
    if per_class is not None:
        write_rows(_with_protocol(per_class, summary), out / "per_class.csv")
    sections = _sections(rows, summary, diagnostics, per_class, run_info)
    write_text(out / "leaderboard.md", markdown_report(summary, sections, run_info))
    images = []
    boxplot = figures.cci_boxplot(rows, summary, out / "cci_boxplot.png")
    if boxplot is not None:
        images.append(boxplot)
    for path in extra_images or []:
        if Path(path).is_file() and Path(path) not in images:
            images.append(Path(path))
    write_text(out / "report.html", html_report(summary, sections, images, run_info))
    return summary


def _with_protocol(frame: pd.DataFrame, summary: tables.Summary) -> pd.DataFrame:
    """``frame`` with the protocol's name and hash as its last columns: every CSV says what it measured."""
    return frame.assign(protocol=summary.protocol, protocol_hash=summary.protocol_hash)


def print_table(summary: tables.Summary) -> str:
    """The main table as Markdown text for the terminal, under the line that names its protocol."""
    main_columns = [c for c in summary.columns if c in tables.TABLE_COLUMNS]
    return caption(summary.protocol) + "\n\n" + tables.markdown_table(*tables.main_table(summary, main_columns))
