"""Accuracy of a classifier on a labelled image folder: ``python -m metrics.classifier --data DIR``.

``DIR/labels.csv`` has the columns ``file,label`` (labels 0..999 in sorted-wnid order; extra columns are ignored).
Prints top-1, top-5 and the mean negative log-likelihood of the true class, e.g.::

    python -m metrics.classifier --data ../shared/data/imagenet-val-sample
    python -m metrics.classifier --data ../shared/data/imagenet-val-sample --preprocessing imagenet

Images are read with Pillow (EXIF orientation applied, converted to RGB) and classified at their own size (the
classifier resizes and crops), batched by equal size.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def _read_labels(folder: Path) -> list[tuple[str, int]]:
    path = folder / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: labels file not found (columns file,label)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns file,label, found {reader.fieldnames}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                label = int(row["label"])
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: label {row['label']!r} is not an integer") from exc
            if not 0 <= label < 1000:
                raise ValueError(f"{path}:{line}: label {label} outside 0..999")
            rows.append((row["file"], label))
    return rows


def _load_rgb(path: Path) -> torch.Tensor:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            rgb = ImageOps.exif_transpose(img).convert("RGB")
            array = np.array(rgb)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from exc
    return torch.from_numpy(array).permute(2, 0, 1)


def evaluate(classifier, folder: Path, limit: int | None = None, progress: bool = True) -> dict:
    """Top-1, top-5 and NLL of ``classifier`` on ``folder`` (see the module docstring)."""
    from tqdm import tqdm

    rows = _read_labels(folder)[:limit]
    if not rows:
        raise ValueError(f"{folder / 'labels.csv'}: no images listed")
    logits = torch.empty(len(rows), 1000)
    step = classifier.batch_size
    for start in tqdm(range(0, len(rows), step), desc="classify", disable=not progress, unit="batch"):
        images = [_load_rgb(folder / name) for name, _ in rows[start:start + step]]
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            by_size.setdefault(tuple(img.shape[1:]), []).append(i)
        for indices in by_size.values():
            batch = torch.stack([images[i] for i in indices])
            logits[[start + i for i in indices]] = classifier.logits(batch)
    labels = torch.tensor([label for _, label in rows])
    top5 = torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :5]
    return {
        "data": str(folder),
        "images": len(rows),
        "classifier": classifier.name,
        "backend": classifier.backend,
        "preprocessing": classifier.preprocessing.normalization,
        "top1": (top5[:, 0] == labels).double().mean().item(),
        "top5": (top5 == labels[:, None]).any(1).double().mean().item(),
        "nll": F.cross_entropy(logits, labels).item(),
    }


def main(argv: list[str] | None = None) -> int:
    from metrics.classifier import load_classifier

    parser = argparse.ArgumentParser(prog="python -m metrics.classifier", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder with images and labels.csv (file,label)")
    parser.add_argument("--classifier", default="efficientnet-lite0",
                        help="efficientnet-lite0 | vgg16:PATH.pth | onnx:PATH.onnx")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto")
    parser.add_argument("--preprocessing", default=None, help="normalization override: tf-lite, imagenet or unit")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of labels.csv")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        _read_labels(args.data)  # fail on a bad folder before loading (and maybe exporting) the classifier
        clf = load_classifier(args.classifier, backend=args.backend, device=args.device, batch_size=args.batch_size,
                              preprocessing=args.preprocessing)
        result = evaluate(clf, args.data, args.limit, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['classifier']} ({result['backend']}, {result['preprocessing']}) on {result['data']}: "
              f"{result['images']} images, top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f}, "
              f"NLL {result['nll']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
