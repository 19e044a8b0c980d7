"""Calibrated colorization metrics (docs/metrics.md): a registry of named metric variants, streaming objects and a
functional API that share one implementation, plus colour conversions (``metrics.color``).

Images: (N, 3, H, W) RGB sRGB, float in [0, 1] or uint8 in 0..255 (scaled by 1/255). See ``docs/metrics.md``.
"""

from metrics import functional
from metrics.registry import Metric, MetricInfo, create_metric, list_metrics, metric_info
from metrics.suite import MetricSuite

__all__ = ["Metric", "MetricInfo", "MetricSuite", "create_metric", "functional", "list_metrics", "metric_info"]
