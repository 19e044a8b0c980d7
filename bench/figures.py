"""The leaderboard's figures (PNG, matplotlib Agg): the CCI box plot, image grids of samples and of each method's worst
images. Figures are drawn from data they are given (rows, images from a ``render`` function); nothing here loads a
method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench import tables
from bench.methods import ANCHOR_NAMES, slug
from scgan.atomic import atomic_path

WORST_CROP_FRACTION = 0.4  # side of the worst-k crop as a fraction of the image's short side


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    return Path(path)


def cci_boxplot(rows: pd.DataFrame, summary: tables.Summary, path: Path) -> Path | None:
    """The paper's Fig. 5: CCI distribution per method on the compared images, band [16, 20] shaded."""
    if "cci" not in rows.columns or not summary.methods or not summary.common_files:
        return None
    plt = pyplot()
    data = [tables.column_values(rows, m, summary.common_files, "cci") for m in summary.methods]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.1 * len(data) + 2.0), 4.0))
    low, high = summary.cci_band
    axes.axhspan(low, high, color="tab:green", alpha=0.2, label=f"[{low:g}, {high:g}]")
    axes.boxplot(data, showmeans=True)
    axes.set_xticks(range(1, len(data) + 1), summary.methods, rotation=30, ha="right")
    axes.set_ylabel("CCI (Hasler-Suesstrunk colourfulness)")
    axes.set_title(f"CCI per method ({len(summary.common_files)} images, protocol {summary.protocol})")
    axes.legend(loc="upper right")
    return save_figure(figure, path)


def image_grid(columns: list[str], rows_images: list[list[np.ndarray]], row_titles: list[str], path: Path,
               cell_inches: float = 1.9) -> Path:
    """A grid of uint8 (H, W, 3) images (or (H, W) gray) with column titles and row titles; PNG."""
    plt = pyplot()
    n_rows, n_cols = len(rows_images), len(columns)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(cell_inches * n_cols, cell_inches * n_rows + 0.3),
                                squeeze=False)
    for r, images in enumerate(rows_images):
        for c, image in enumerate(images):
            ax = axes[r][c]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(row_titles[r], fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def existing_figures(folder: Path) -> list[Path]:
    """Image figures of an earlier leaderboard run in ``folder`` (samples.png, worst_*.png), for ``scgan report``."""
    folder = Path(folder)
    found = [folder / "samples.png"] if (folder / "samples.png").is_file() else []
    return found + sorted(folder.glob("worst_*.png"))


def write_image_figures(out: Path, rows: pd.DataFrame, method_names: list[str], render, n_samples: int,
                        worst_k: int) -> list[Path]:
    """``samples.png`` (gray input, each method, ground truth, for the first images) and ``worst_<method>.png``
    (per non-anchor method its ``worst_k`` images by delta E00 (or PSNR), the same crop, around that method's largest
    error, shown for every method). ``render(file) -> (gray (H, W) uint8, {method: uint8 (H, W, 3)}, ground truth)``
    gives the images (``bench.methods.sample_renderer``). Returns the written paths."""
    ok = rows[rows["error"].fillna("") == ""] if "error" in rows.columns else rows
    files_per_method = [set(ok.loc[ok["method"] == m, "file"]) for m in method_names]
    common = [f for f in dict.fromkeys(ok["file"]) if all(f in s for s in files_per_method)]
    if not common:
        return []
    written: list[Path] = []

    columns = ["input (gray)"] + method_names + ["ground truth"]
    chosen = common[:max(0, n_samples)]
    rendered = {f: render(f) for f in chosen}
    if chosen:
        grid = [[rendered[f][0]] + [rendered[f][1][m] for m in method_names] + [rendered[f][2]] for f in chosen]
        written.append(image_grid(columns, grid, chosen, out / "samples.png"))
    score, worst_first = ("delta_e00", False) if "delta_e00" in ok.columns else ("psnr", True)
    if worst_k <= 0 or score not in ok.columns:
        return written
    for m in method_names:
        if m in ANCHOR_NAMES:
            continue
        sub = ok[(ok["method"] == m) & ok["file"].isin(common)].sort_values(score, ascending=worst_first)
        worst = list(sub["file"].head(worst_k))
        grid, titles = [], []
        for f in worst:
            if f not in rendered:
                rendered[f] = render(f)
            gray, outputs, gt = rendered[f]
            top, left, size = _worst_crop(outputs[m], gt)
            crop = (slice(top, top + size), slice(left, left + size))
            grid.append([gray[crop]] + [outputs[n][crop] for n in method_names] + [gt[crop]])
            titles.append(f"{f}\n{score}={float(sub.set_index('file').loc[f, score]):.2f}")
        if grid:
            written.append(image_grid(columns, grid, titles, out / f"worst_{slug(m)}.png"))
    return written


def _worst_crop(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """(top, left, size) of the square window (side 40% of the short side) with the largest mean |pred - gt|."""
    import torch

    height, width = gt.shape[:2]
    size = max(8, int(min(height, width) * WORST_CROP_FRACTION))
    size = min(size, height, width)
    error = torch.from_numpy(np.abs(pred.astype(np.float32) - gt.astype(np.float32)).mean(axis=2))[None, None]
    stride = max(1, size // 4)
    pooled = torch.nn.functional.avg_pool2d(error, size, stride=stride)[0, 0]
    flat = int(torch.argmax(pooled))
    row, col = divmod(flat, pooled.shape[1])
    return row * stride, col * stride, size
