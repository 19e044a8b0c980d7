"""A set of metrics updated together: what ``scgan eval`` and leaderboards use to get per-image rows and a summary.

    >>> suite = MetricSuite(["psnr", "ssim", "cci_ratio"])
    >>> suite.update(pred, target)                       # (N, 3, H, W) RGB, float [0, 1] or uint8
    >>> suite.columns()                                  # {"psnr": array (N,), "ssim": ..., "cci_ratio": ...}
    >>> suite.summary()                                  # {"psnr": mean, "ssim": mean, "cci_ratio": fraction}

Runs on the evaluation engine (``metrics.engine``): one image batch is checked once, each input that metrics share is
computed once per batch and handed to every metric (the classifier metrics share one classifier and one forward pass
per batch and side; ``delta_e00`` and ``auc_ab`` one Lab conversion per image pair; float images are quantized once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from metrics.engine import prepare_batch
from metrics.registry import classifier_for, create_metric, has_per_image_values, list_metrics, metric_info

__all__ = ["MetricSuite", "parse_metric_names", "jsonable"]


def parse_metric_names(text: str | Sequence[str]) -> list[str]:
    """``"psnr, ssim"`` or a list -> validated, de-duplicated names in the given order; error names unknown ones."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n).strip() for n in text]
    names = [n for n in names if n]
    if not names:
        raise ValueError("--metrics: no metric names given")
    known = list_metrics()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"--metrics: unknown metric(s) {', '.join(unknown)}; known metrics: {', '.join(known)}")
    return list(dict.fromkeys(names))


def jsonable(value):
    """Floats that JSON cannot hold (inf, nan) as the strings "inf", "-inf", "nan"; numpy scalars as Python."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class MetricSuite:
    """Streaming metrics by name. ``classifier`` (object or spec), ``backend`` and ``device`` go to the classifier
    metrics; ``options`` maps a metric name to extra options for it; ``workers``: image worker threads of the CPU
    kernels (default 1; pays off with torch at one intra-op thread)."""

    def __init__(
        self,
        names: Sequence[str],
        classifier=None,
        backend: str = "onnxruntime",
        device: str = "cpu",
        options: dict[str, dict] | None = None,
        workers: int | None = None,
    ):
        self.names = parse_metric_names(list(names))
        options = options or {}
        self.infos = {n: metric_info(n) for n in self.names}
        self.needs_labels = any(i.needs_labels for i in self.infos.values())
        self.needs_classifier = any(i.needs_classifier for i in self.infos.values())
        self.needs_saliency = any(i.needs_saliency for i in self.infos.values())
        self.workers = workers
        self.classifier = None
        if self.needs_classifier:
            self.classifier = classifier_for(classifier, backend, device)
        self.metrics = {}
        for name in self.names:
            opts = dict(options.get(name, {}))
            if self.infos[name].needs_classifier:
                opts.setdefault("classifier", self.classifier)
            self.metrics[name] = create_metric(name, **opts)
        self.count = 0

    def update(self, pred, target, labels=None, saliency=None) -> None:
        """Add a batch of pairs: pred and target (N, 3, H, W); labels (N,) when a metric needs them; saliency
        (N, 1, H, W) float maps in [0, 1] when a saliency metric is asked for."""
        inputs = prepare_batch(list(self.metrics.values()), pred, target, labels, saliency, self.workers)
        for metric in self.metrics.values():
            metric.update_from(inputs)
        self.count += inputs.count

    def columns(self) -> dict[str, np.ndarray]:
        """Per-image values of every metric that has them (all but fid_effl0), each (N_total,) float64."""
        return {n: m.values() for n, m in self.metrics.items() if has_per_image_values(n)}

    def summary(self) -> dict[str, float]:
        """Dataset value of every metric (means of per-image values for image-level metrics)."""
        return {n: m.compute() for n, m in self.metrics.items()}

    def classifier_info(self) -> dict | None:
        """Name, backend and weights sha256 of the classifier in use (None without classifier metrics)."""
        if self.classifier is None:
            return None
        return {
            "name": getattr(self.classifier, "name", type(self.classifier).__name__),
            "backend": getattr(self.classifier, "backend", None),
            "sha256": getattr(self.classifier, "sha256", None),
        }
