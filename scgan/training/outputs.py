"""What a run writes besides its checkpoint (rank 0 only): ``losses.csv``, ``val.csv`` (with ``--val-data``,
``scgan.validation``) and the per-epoch sample grids."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import nn

LOG_KEYS = ("stage", "epoch", "step")
LR_COLUMNS = ("lr_g", "lr_d")


def prepare_run_folder(config) -> Path:
    """Rank 0's run folder (``--out``): refused (InputError naming both paths) when it is, contains or lies inside an
    input (``--data``, ``--saliency``, ``--val-data``, ``--labels``; the trainer checks each listed training photo when
    it has listed them); created, checked writable and marked as a command's output (``scgan.paths``), so that no
    image listing reads it back."""
    from scgan.paths import check_outputs_apart, prepare_output_dir

    inputs = {"--data": config.data, "--saliency": config.saliency, "--val-data": config.val_data,
              "--labels": config.labels}
    inputs = {label: value for label, value in inputs.items() if value and value != "-"}
    check_outputs_apart({"--out": config.out}, inputs)
    return prepare_output_dir("--out", Path(config.out))


class LossLog:
    """``losses.csv``: one row per step: stage, epoch, step, the method's ``loss_columns``, lr_g, lr_d (the first
    critic's learning rate; empty without critics). Appended and flushed every step; rewritten atomically on resume."""

    def __init__(self, path: Path, loss_columns: tuple[str, ...], trailing: tuple[str, ...] = LR_COLUMNS):
        self.path = path
        self.columns = (*LOG_KEYS, *loss_columns, *trailing)

    def reset(self) -> None:
        """A fresh run: no rows of an earlier run."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)

    def append(self, row: dict[str, float | int | str]) -> None:
        """One step's row; losses are written with 6 significant digits, keys outside the columns are dropped."""
        shown = {k: (f"{v:.6g}" if k not in LOG_KEYS + LR_COLUMNS else v) for k, v in row.items() if k in self.columns}
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            if new:
                writer.writeheader()
            writer.writerow(shown)

    def truncate(self, step: int) -> None:
        """On resume: drop rows logged after the checkpoint's ``step`` (they will be recomputed), atomically."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        from scgan.atomic import atomic_path

        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="", extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def write_sample_grid(path: Path, dataset, count: int, method, generator: nn.Module, device: torch.device) -> Path:
    """PNG of the first ``count`` training images, one row each: gray | prediction | predicted saliency (black when
    the method predicts none) | ground truth. ``generator`` is in eval mode; ``method.colorize`` runs it."""
    from metrics.color import rgb_to_gray
    from scgan.data import save_image

    count = min(count, len(dataset))
    rgb01 = torch.stack([dataset[i][0] for i in range(count)]).to(device)
    with torch.no_grad():
        gray01 = rgb_to_gray(rgb01)
        pred01, pred_sal = method.colorize(generator, gray01)
    sal_rgb = (pred_sal if pred_sal is not None else torch.zeros_like(gray01)).expand(-1, 3, -1, -1)
    rows = [torch.cat([gray01.expand(-1, 3, -1, -1)[i], pred01[i], sal_rgb[i], rgb01[i]], dim=2) for i in range(count)]
    save_image(torch.cat(rows, dim=1).cpu(), path)
    return path
