"""Leaderboard tables from tidy per-image rows (``rows.csv``): means with intervals, marks against the best, coverage.

The rows are the truth; every table and plot is made from them (docs/architecture.md). A row is one (method, image):
columns ``method``, ``file``, ``protocol``, ``protocol_hash``, ``error`` (empty when the method produced the image),
``label`` (-1 when unknown), one column per per-image metric under its registry name, and diagnostic columns
(``gt_cf_abs``, ``cast_a``, ``cast_b``, ``near_gray``, saliency-aware ``psnr_salient`` ...; docs/leaderboard.md).

Rule for unequal coverage (``--skip-bad``): a method that produced no image is dropped from the table (and listed);
every other statistic is computed on the images that **every** remaining method covers, and the table says how many
that is. Means over different image sets are never put side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench import stats
from metrics.dataset import cci_in_band

ANCHORS = ("gt", "gray", "tint")
#: The anchors that stand for no skill (no colour; one constant colour for every photo): a candidate worse than one of
#: them on a metric is not printed as that metric's best. ``gt`` is the upper bound every model is below.
LOWER_ANCHORS = ("gray", "tint")
ID_COLUMNS = ("method", "file", "protocol", "protocol_hash", "label", "error")


@dataclass(frozen=True)
class TableColumn:
    """One leaderboard column.

    kind: ``mean`` (mean of a per-image column, bootstrap CI, Wilcoxon vs best), ``proportion`` (fraction of 0/1
    per-image indicators, Wilson CI, Wilcoxon on the indicators), ``cci_ratio`` (proportion of ``cci`` inside the
    protocol's band), ``delta_cf`` (|mean cf_abs - mean gt_cf_abs|, paired bootstrap), ``dataset`` (one number per
    method from ``dataset_metrics.csv``, no interval).
    higher_is_better: True/False, or None for a descriptive column without a "best" (mean CCI).
    scale: display multiplier (100 for percentages); digits: decimals shown.
    """

    key: str
    label: str
    kind: str
    higher_is_better: bool | None
    source: tuple[str, ...]
    scale: float = 1.0
    digits: int = 2


def _registry_columns() -> tuple[TableColumn, ...]:
    """Mean columns of the registry's metrics that every protocol measures next to its own list
    (``MetricInfo.added_to_protocols``, e.g. ``cni``), direction from the registry: adding such a metric to
    ``metrics/`` shows it here without an edit."""
    import metrics

    return tuple(
        TableColumn(name, f"{name.upper()} (mean)", "mean", metrics.metric_info(name).higher_is_better, (name,),
                    digits=4)
        for name in metrics.list_metrics() if metrics.metric_info(name).added_to_protocols
    )


TABLE_COLUMNS = (
    TableColumn("psnr", "PSNR (dB)", "mean", True, ("psnr",), digits=2),
    TableColumn("ssim", "SSIM", "mean", True, ("ssim",), digits=4),
    TableColumn("ssim_scgan", "SSIM (SCGAN protocol)", "mean", True, ("ssim_scgan",), digits=4),
    TableColumn("top1", "Top-1 (%)", "proportion", True, ("top1",), scale=100.0, digits=1),
    TableColumn("top5", "Top-5 (%)", "proportion", True, ("top5",), scale=100.0, digits=1),
    TableColumn("top1_agree", "Top-1 agreement with GT (%)", "proportion", True, ("top1_agree",), 100.0, 1),
    TableColumn("cci", "CCI (mean)", "mean", None, ("cci",), digits=2),
    TableColumn("cci_ratio", "CCI ratio (%)", "cci_ratio", True, ("cci",), scale=100.0, digits=1),
    TableColumn("delta_cf", "delta CF", "delta_cf", False, ("cf_abs", "gt_cf_abs"), digits=2),
    TableColumn("delta_e00", "delta E00", "mean", False, ("delta_e00",), digits=2),
    TableColumn("auc_ab", "AuC", "mean", True, ("auc_ab",), digits=4),
    TableColumn(
        "fid_effl0", "FID (EfficientNet-Lite0 features, not comparable to standard FID)", "dataset", False,
        ("fid_effl0",), digits=2,
    ),
) + _registry_columns()
SALIENCY_COLUMNS = (
    TableColumn("psnr_salient", "PSNR salient (dB)", "mean", True, ("psnr_salient",), digits=2),
    TableColumn("psnr_background", "PSNR background (dB)", "mean", True, ("psnr_background",), digits=2),
    TableColumn("cci_salient", "CCI salient", "mean", None, ("cci_salient",), digits=2),
    TableColumn("cci_background", "CCI background", "mean", None, ("cci_background",), digits=2),
    TableColumn("bleeding", "Colour bleeding (ab error at boundaries)", "mean", False, ("bleeding",), digits=2),
)
NOT_SIGNIFICANT_MARK = "≈"


@dataclass
class Cell:
    estimate: float
    low: float
    high: float
    n: int
    p_value: float = math.nan
    best: bool = False
    not_significant: bool = False  # not significantly different from the best


@dataclass
class Summary:
    """Everything the report shows, computed from the rows."""

    protocol: str
    protocol_hash: str
    methods: list[str]  # in the table, in row order
    dropped_methods: list[str]  # produced no image
    coverage: pd.DataFrame  # method, images_ok, images_failed, images_total
    common_files: list[str]
    columns: list[TableColumn]
    cells: dict[tuple[str, str], Cell]  # (method, column key) -> cell
    best: dict[str, str | None]
    notes: list[str] = field(default_factory=list)
    cci_band: tuple[float, float] = (16.0, 20.0)
    #: method -> the side (pixels) its network sees, None = any size (anchors, fully convolutional ONNX files); empty
    #: when the caller did not say (the table then has no input column)
    input_sizes: dict[str, int | None] = field(default_factory=dict)


def _check_rows(rows: pd.DataFrame) -> None:
    missing = [c for c in ("method", "file") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows: missing column(s) {missing}; expected the tidy rows written by `scgan leaderboard`")
    if rows.duplicated(["method", "file"]).any():
        dup = rows[rows.duplicated(["method", "file"])].iloc[0]
        raise ValueError(f"rows: duplicate row for method {dup['method']!r}, file {dup['file']!r}")
    for column in ("protocol_hash",):
        if column in rows.columns and rows[column].nunique(dropna=True) > 1:
            raise ValueError(
                f"rows: mixes protocol hashes {sorted(rows[column].dropna().unique())}: rows measured under different "
                "protocols cannot share a table"
            )


def _ok(rows: pd.DataFrame) -> pd.Series:
    if "error" not in rows.columns:
        return pd.Series(True, index=rows.index)
    return rows["error"].isna() | (rows["error"].astype(str) == "")


def coverage_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: images produced, images failed, images attempted (in first-appearance order of methods)."""
    ok = _ok(rows)
    order = list(dict.fromkeys(rows["method"]))
    table = pd.DataFrame(
        {
            "method": order,
            "images_ok": [int(ok[rows["method"] == m].sum()) for m in order],
            "images_failed": [int((~ok)[rows["method"] == m].sum()) for m in order],
        }
    )
    table["images_total"] = table["images_ok"] + table["images_failed"]
    return table


def covered_images(rows: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """The coverage rule (module docstring): (methods in the table, methods dropped because they produced no image,
    the files every method in the table produced, in first-appearance order)."""
    ok_rows = rows[_ok(rows)]
    all_methods = list(dict.fromkeys(rows["method"]))
    produced = {m: set(ok_rows.loc[ok_rows["method"] == m, "file"]) for m in all_methods}
    methods = [m for m in all_methods if produced[m]]
    dropped = [m for m in all_methods if not produced[m]]
    if not methods:
        return methods, dropped, []
    common_set = set.intersection(*(produced[m] for m in methods))
    return methods, dropped, [f for f in dict.fromkeys(ok_rows["file"]) if f in common_set]


def column_values(rows: pd.DataFrame, method: str, files: list[str], column: str) -> np.ndarray:
    """Per-image values of ``column`` for ``method`` on ``files`` (in that order)."""
    sub = rows[rows["method"] == method].set_index("file")
    return sub.loc[files, column].to_numpy(dtype=np.float64)


def _candidates(methods: list[str]) -> list[str]:
    non_anchor = [m for m in methods if m not in ANCHORS]
    return non_anchor if non_anchor else list(methods)


def _estimate(column: TableColumn, values: list[np.ndarray], band: tuple[float, float], n_resamples: int) -> Cell:
    if column.kind == "mean":
        interval = stats.bootstrap_mean_ci(values[0], n_resamples=n_resamples)
    elif column.kind == "proportion":
        interval = stats.proportion_ci(values[0])
    elif column.kind == "cci_ratio":
        interval = stats.proportion_ci(cci_in_band(values[0], band))
    elif column.kind == "delta_cf":
        interval = stats.delta_cf_ci(values[0], values[1], n_resamples=n_resamples)
    else:
        raise ValueError(f"unknown column kind {column.kind!r}")
    return Cell(interval.estimate, interval.low, interval.high, interval.n)


def _paired(column: TableColumn, values: list[np.ndarray], best_values: list[np.ndarray], band, n_resamples: int):
    if column.kind == "mean" or column.kind == "proportion":
        return stats.paired_wilcoxon(values[0], best_values[0])
    if column.kind == "cci_ratio":
        return stats.paired_wilcoxon(cci_in_band(values[0], band), cci_in_band(best_values[0], band))
    if column.kind == "delta_cf":
        return stats.paired_bootstrap_difference(
            lambda p, g: np.abs(p.mean(axis=1) - g.mean(axis=1)), values, best_values, n_resamples=n_resamples
        )
    raise ValueError(f"unknown column kind {column.kind!r}")


def _pick_best(column: TableColumn, cells: dict, candidates: list[str]) -> str | None:
    if column.higher_is_better is None:
        return None
    scored = [(m, cells[(m, column.key)].estimate) for m in candidates if (m, column.key) in cells]
    scored = [(m, v) for m, v in scored if not math.isnan(v)]
    if not scored:
        return None
    key = (lambda mv: -mv[1]) if column.higher_is_better else (lambda mv: mv[1])
    return sorted(scored, key=key)[0][0]  # stable: the first listed method wins an exact tie


def _better_lower_anchor(column: TableColumn, cells: dict, methods: list[str], candidate: str) -> str | None:
    """The first lower anchor in the table that is strictly better than ``candidate`` on ``column``, else None."""
    if candidate in ANCHORS:
        return None
    value = cells[(candidate, column.key)].estimate
    for anchor in LOWER_ANCHORS:
        cell = cells.get((anchor, column.key))
        if anchor not in methods or cell is None or math.isnan(cell.estimate) or math.isnan(value):
            continue
        if (cell.estimate > value) if column.higher_is_better else (cell.estimate < value):
            return anchor
    return None


def _mark_best(column: TableColumn, cells: dict, methods: list[str], best_method: str, notes: list[str]) -> None:
    """Bold the best candidate, unless a lower anchor beats it (then say so under the table instead)."""
    anchor = _better_lower_anchor(column, cells, methods, best_method)
    if anchor is None:
        cells[(best_method, column.key)].best = True
    else:
        notes.append(f"{column.label}: no method is marked best: the best candidate ({best_method}) is worse than the "
                     f"{anchor} anchor.")


def summarize(
    rows: pd.DataFrame,
    dataset_metrics: pd.DataFrame | None = None,
    columns: tuple[TableColumn, ...] = TABLE_COLUMNS + SALIENCY_COLUMNS,
    cci_band: tuple[float, float] = (16.0, 20.0),
    n_resamples: int = stats.N_BOOTSTRAP,
    input_sizes: dict[str, int | None] | None = None,
) -> Summary:
    """Compute every table cell from tidy rows (see the module docstring for the coverage rule).

    ``dataset_metrics``: optional frame with columns ``method`` and dataset-level metrics (``fid_effl0``), the ones
    that cannot be computed from per-image values. ``input_sizes``: method -> its network's input side in pixels
    (None: any size), shown as the table's ``input`` column.
    """
    _check_rows(rows)
    rows = rows.copy()
    rows["file"] = rows["file"].astype(str)
    coverage = coverage_table(rows)
    ok_rows = rows[_ok(rows)]
    methods, dropped, common = covered_images(rows)
    notes: list[str] = []
    if methods and (any(len(ok_rows[ok_rows["method"] == m]) != len(common) for m in methods)
                    or coverage["images_failed"].any()):
        notes.append(
            f"Methods cover different images; every statistic is computed on the {len(common)} images that all "
            f"{len(methods)} methods in the table cover."
        )
    if dropped:
        notes.append(f"Dropped (no image produced): {', '.join(dropped)}.")
    protocol = str(rows["protocol"].iloc[0]) if "protocol" in rows.columns and len(rows) else ""
    protocol_hash = str(rows["protocol_hash"].iloc[0]) if "protocol_hash" in rows.columns and len(rows) else ""

    cells: dict[tuple[str, str], Cell] = {}
    best: dict[str, str | None] = {}
    used_columns: list[TableColumn] = []
    candidates = _candidates(methods)
    for column in columns:
        if column.kind == "dataset":
            if dataset_metrics is None or column.key not in dataset_metrics.columns:
                continue
            frame = dataset_metrics.set_index("method")
            present = [m for m in methods if m in frame.index and not pd.isna(frame.loc[m, column.key])]
            if not present:
                if "fid_note" in frame.columns:
                    reasons = sorted({str(r) for r in frame["fid_note"].dropna() if str(r)})
                    notes.extend(reasons[:1])
                continue
            for m in present:
                value = float(frame.loc[m, column.key])
                cells[(m, column.key)] = Cell(value, math.nan, math.nan, len(common))
            used_columns.append(column)
            best_method = _pick_best(column, cells, candidates)
            best[column.key] = best_method
            if best_method is not None:
                _mark_best(column, cells, methods, best_method, notes)
            continue
        if not all(source in ok_rows.columns for source in column.source) or not common:
            continue
        # Images where this column is defined for every method (top1 needs a label, saliency needs a salient region).
        files = list(common)
        for m in methods:
            for source in column.source:
                values = column_values(ok_rows, m, files, source)
                files = [f for f, v in zip(files, values) if not np.isnan(v)]
        if not files:
            continue
        if len(files) < len(common):
            notes.append(f"{column.label}: computed on the {len(files)} images where it is defined for every method.")
        values_by_method = {m: [column_values(ok_rows, m, files, s) for s in column.source] for m in methods}
        for m in methods:
            cells[(m, column.key)] = _estimate(column, values_by_method[m], cci_band, n_resamples)
        used_columns.append(column)
        best_method = _pick_best(column, cells, candidates)
        best[column.key] = best_method
        if best_method is None:
            continue
        _mark_best(column, cells, methods, best_method, notes)
        for m in methods:
            if m == best_method:
                continue
            test = _paired(column, values_by_method[m], values_by_method[best_method], cci_band, n_resamples)
            cell = cells[(m, column.key)]
            cell.p_value = test.p_value
            cell.not_significant = not test.significant
    sizes = {m: input_sizes.get(m) for m in methods} if input_sizes else {}
    return Summary(
        protocol, protocol_hash, methods, dropped, coverage, common, used_columns, cells, best, notes, cci_band, sizes
    )


def input_size_text(size: int | None) -> str:
    """``64`` -> ``"64 px"``; None (the network takes any size, or no network) -> ``"any"``."""
    return "any" if size is None else f"{int(size)} px"


def _format_number(value: float, column: TableColumn) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    # round first and add 0.0 so that a round-off -0.0001 prints as 0.00, not -0.00
    return f"{round(value * column.scale, column.digits) + 0.0:.{column.digits}f}"


def format_cell(cell: Cell | None, column: TableColumn, markdown: bool = True) -> str:
    """``estimate [low, high]`` with the best in bold (Markdown) and ``≈`` where not significantly different."""
    if cell is None:
        return "n/a"
    text = _format_number(cell.estimate, column)
    if cell.best and markdown:
        text = f"**{text}**"
    if not math.isnan(cell.low):
        text += f" [{_format_number(cell.low, column)}, {_format_number(cell.high, column)}]"
    if cell.not_significant:
        text += f" {NOT_SIGNIFICANT_MARK}"
    return text


def leaderboard_frame(summary: Summary) -> pd.DataFrame:
    """``leaderboard.csv``: one row per method; per column key ``K``: K, K_low, K_high, K_n, K_p_vs_best, K_best,
    K_not_significant (not significantly different from the best)."""
    records = []
    coverage = summary.coverage.set_index("method")
    for m in summary.methods:
        record: dict = {
            "method": m,
            "protocol": summary.protocol,
            "protocol_hash": summary.protocol_hash,
            "images_ok": int(coverage.loc[m, "images_ok"]),
            "images_failed": int(coverage.loc[m, "images_failed"]),
            "images_compared": len(summary.common_files),
        }
        if summary.input_sizes:
            record["input_size"] = summary.input_sizes.get(m)
        for column in summary.columns:
            cell = summary.cells.get((m, column.key))
            if cell is None:
                continue
            record[column.key] = cell.estimate
            record[f"{column.key}_low"] = cell.low
            record[f"{column.key}_high"] = cell.high
            record[f"{column.key}_n"] = cell.n
            record[f"{column.key}_p_vs_best"] = cell.p_value
            record[f"{column.key}_best"] = cell.best
            record[f"{column.key}_not_significant"] = cell.not_significant
        records.append(record)
    return pd.DataFrame.from_records(records)


def escape_html(text) -> str:
    """``&``, ``<`` and ``>`` as HTML entities: a file or method name cannot inject markup into a Markdown page."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown(text) -> str:
    """A name (file, folder, method) as literal Markdown text: HTML-special characters as entities, Markdown's own
    (``\\ ` * _ [ ] |``) behind a backslash, line breaks as spaces."""
    text = escape_html(text).replace("\n", " ").replace("\r", " ")
    for char in "\\`*_[]|":
        text = text.replace(char, "\\" + char)
    return text


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes escaped, HTML-special characters as entities: cells hold file and
    method names; the cells' own Markdown, such as the bold of the best method, is kept)."""

    def clean(text) -> str:
        return escape_html(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def main_table(summary: Summary, columns: list[TableColumn] | None = None, markdown: bool = True):
    """(header, body) of the main table: methods as rows, one column per table column."""
    columns = summary.columns if columns is None else columns
    sized = bool(summary.input_sizes)
    header = ["method"] + (["input"] if sized else []) + ["images"] + [c.label for c in columns]
    body = []
    for m in summary.methods:
        size = [input_size_text(summary.input_sizes.get(m))] if sized else []
        body.append([m, *size, str(len(summary.common_files))] + [
            format_cell(summary.cells.get((m, c.key)), c, markdown) for c in columns
        ])
    return header, body


def legend(summary: Summary) -> str:
    """The text under the table: what the interval, the bold and the mark mean."""
    lo, hi = summary.cci_band
    return (
        f"Cells: estimate [95% CI]. Means: percentile bootstrap ({stats.N_BOOTSTRAP} resamples, seed {stats.SEED}); "
        f"proportions (Top-1/5, agreement, CCI ratio = share of images with {lo:g} <= CCI <= {hi:g}): Wilson interval; "
        "delta CF: paired bootstrap. **Bold**: best method (anchors `gt`/`gray`/`tint` are not candidates when other "
        "methods are present; no bold where the best candidate is worse than the `gray` or `tint` anchor). "
        f"{NOT_SIGNIFICANT_MARK}: not significantly different from the best (two-sided paired Wilcoxon "
        f"signed-rank test on the same images, alpha {stats.ALPHA}; delta CF: paired bootstrap interval of the "
        "difference contains 0). FID is computed on EfficientNet-Lite0 pooled features and is not comparable to "
        "standard (Inception) FID; it has no interval."
    )
