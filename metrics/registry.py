"""The metric registry: one name per metric variant, its metadata, and streaming metric objects.

    >>> import metrics
    >>> metrics.list_metrics()
    ['psnr', 'ssim', 'ssim_scgan', 'cci', 'cf_abs', 'delta_e00', 'auc_ab', 'cci_ratio', 'delta_cf', ...]
    >>> m = metrics.create_metric("psnr")
    >>> m.update(pred, target)          # any number of batches: (N, 3, H, W) RGB, float [0, 1] or uint8
    >>> m.values()                      # per-image values in update order, float64 (N_total,)
    >>> m.compute()                     # dataset value (the mean of the per-image values for image-level metrics)

Every streaming object keeps per-image values, so dataset values are always computed from per-image rows.
``metrics.functional`` runs the same code on one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metrics import dataset as ds
from metrics import image as im
from metrics._inputs import as_image_tensor, check_labels, check_pair

__all__ = ["MetricInfo", "Metric", "list_metrics", "metric_info", "create_metric", "classifier_for"]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is.

    ``higher_is_better``: True, False, or None for a descriptive value without a "best" direction (colourfulness:
    its target is a band or the ground truth's value). ``level``: "image" (one value per image, dataset value = their
    mean) or "dataset" (computed from per-image rows). ``paired``: needs the ground truth. ``needs_labels``,
    ``needs_classifier``; ``reference``: the implementation it is calibrated against and the test tolerance;
    ``description``: one line."""

    name: str
    higher_is_better: bool | None
    level: str
    paired: bool
    needs_labels: bool
    needs_classifier: bool
    reference: str
    description: str


_INFOS: dict[str, MetricInfo] = {}
_FACTORIES: dict[str, Callable[..., Metric]] = {}


def _register(info: MetricInfo, factory: Callable[..., Metric]) -> None:
    _INFOS[info.name] = info
    _FACTORIES[info.name] = factory


def list_metrics() -> list[str]:
    """All metric names, image-level first, in a fixed order."""
    return list(_INFOS)


def metric_info(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of ``name``; ValueError naming the known metrics otherwise."""
    try:
        return _INFOS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(_INFOS)}") from None


def create_metric(name: str, **options) -> Metric:
    """A fresh streaming metric object for ``name``; ``options`` are passed to it (e.g. ``quantize=False`` for the
    0..255 metrics, ``classifier=`` for the classifier metrics). Unknown options are an error."""
    metric_info(name)
    return _FACTORIES[name](**options)


# --------------------------------------------------------------------------------------------------------- base class
class Metric:
    """Streaming metric: ``update`` with batches, ``values`` (per-image rows), ``compute`` (dataset value), ``reset``.

    Images: (N, 3, H, W) RGB, float in [0, 1] or uint8 in 0..255 (scaled), torch tensors (or numpy arrays).
    """

    info: MetricInfo

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []

    def reset(self) -> None:
        """Forget every update."""
        self._rows = []

    def __len__(self) -> int:
        return int(sum(r.shape[0] for r in self._rows))

    def _check_args(self, pred, target, labels):
        name = self.info.name
        if self.info.paired and target is None:
            raise ValueError(f"{name}: needs the ground truth (target=...)")
        if self.info.needs_labels and labels is None:
            raise ValueError(f"{name}: needs class labels (labels=..., or --labels CSV)")
        if self.info.paired:
            pred, target = check_pair(pred, target)
        else:
            pred = as_image_tensor(pred, "pred")
            if target is not None:
                # Accepted (and checked) so that one update loop can feed every metric, but not used.
                check_pair(pred, target)
        if labels is not None and self.info.needs_labels:
            labels = check_labels(labels, pred.shape[0])
        return pred, target, labels

    def update(self, pred, target=None, labels=None) -> None:
        """Add a batch: ``pred`` (N, 3, H, W), ``target`` the same shape for paired metrics, ``labels`` (N,) int."""
        pred, target, labels = self._check_args(pred, target, labels)
        self._rows.append(self._per_image(pred, target, labels))

    def _per_image(self, pred, target, labels) -> np.ndarray:
        raise NotImplementedError

    def values(self) -> np.ndarray:
        """Per-image values, float64 (N_total,), in update order (``scgan eval`` writes them as a column)."""
        if not self._rows:
            return np.zeros(0, dtype=np.float64)
        return np.concatenate(self._rows)

    def compute(self) -> float:
        """The dataset value; image-level metrics: the mean of the per-image values (``inf`` if any value is inf)."""
        return ds.mean_of_values(self.values(), self.info.name)

    def __repr__(self) -> str:
        return f"<metric {self.info.name}: {len(self)} images>"


# ------------------------------------------------------------------------------------------------ image-level metrics
class ImageMetric(Metric):
    """An image-level metric: per-image values from one function of ``metrics.image``, dataset value = their mean."""

    def __init__(self, info: MetricInfo, fn: Callable[..., torch.Tensor], allowed: tuple[str, ...], **options):
        unknown = set(options) - set(allowed)
        if unknown:
            raise TypeError(f"{info.name}: unknown option(s) {sorted(unknown)}; allowed: {list(allowed) or 'none'}")
        super().__init__()
        self.info = info
        self._fn = fn
        self.options = options

    def _per_image(self, pred, target, labels) -> np.ndarray:
        args = (pred, target) if self.info.paired else (pred,)
        return self._fn(*args, **self.options).detach().cpu().numpy().astype(np.float64)


def _image_metric(info: MetricInfo, fn, allowed: tuple[str, ...] = ()) -> None:
    _register(info, lambda **options: ImageMetric(info, fn, allowed, **options))


_image_metric(
    MetricInfo(
        "psnr", True, "image", True, False, False,
        "skimage.metrics.peak_signal_noise_ratio on uint8 (data range 255); tol 1e-6 dB",
        "PSNR in dB over RGB on 0..255 values (float input: round(x*255)); identical images give inf",
    ),
    im.psnr,
    ("quantize",),
)
_image_metric(
    MetricInfo(
        "ssim", True, "image", True, False, False,
        "skimage structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
        "data_range=255, channel_axis=-1) on uint8; tol 1e-5",
        "SSIM (Wang et al. 2004): Gaussian 11x11 sigma 1.5, population covariance, range 255, valid region, "
        "mean over RGB",
    ),
    im.ssim,
    ("quantize", "precision"),
)
_image_metric(
    MetricInfo(
        "ssim_scgan", True, "image", True, False, False,
        "skimage structural_similarity(data_range=2.0, channel_axis=-1) on the same float images; tol 1e-5",
        "SSIM as the SCGAN paper computed it: floats in [0,1], uniform 7x7, sample covariance, data range 2",
    ),
    im.ssim_scgan,
)
_image_metric(
    MetricInfo(
        "cci", None, "image", False, False, False,
        "numpy formula of Hasler & Suesstrunk (2003), float64; tol 1e-9 relative",
        "Colourfulness (CCI) on 0..255 RGB, signed opponents rg=R-G, yb=(R+G)/2-B, population std",
    ),
    im.cci,
    ("quantize",),
)
_image_metric(
    MetricInfo(
        "cf_abs", None, "image", False, False, False,
        "numpy formula with |rg|, |yb| (the 'CF' of DDColor, CT2, ColorFormer), float64; tol 1e-9 relative",
        "Colourfulness with absolute opponents |R-G|, |(R+G)/2-B|",
    ),
    im.cf_abs,
    ("quantize",),
)
_image_metric(
    MetricInfo(
        "delta_e00", False, "image", True, False, False,
        "skimage.color.deltaE_ciede2000(rgb2lab(gt), rgb2lab(pred)).mean(); tol 1e-6",
        "Mean CIEDE2000 colour difference over pixels (Lab D65 from sRGB)",
    ),
    im.delta_e00,
)
_image_metric(
    MetricInfo(
        "auc_ab", True, "image", True, False, False,
        "numpy integral of the ab-error CDF over [0, 150] / 150 (Zhang et al. 2016); tol 1e-9",
        "Raw-accuracy AuC: fraction of pixels with ab L2 error < t, integrated over t in [0,150], / 150",
    ),
    im.auc_ab,
    ("max_threshold",),
)


# ---------------------------------------------------------------------------------------------- colourfulness sets
class CciRatio(Metric):
    """Fraction of colorizations with ``16 <= cci <= 20`` (bounds inclusive). Per-image values: 1.0 in band, else 0.0;
    ``cci_values()`` gives the underlying CCI of each image."""

    info = MetricInfo(
        "cci_ratio", True, "dataset", False, False, False,
        "exact count of 16 <= cci <= 20 over per-image cci",
        "Fraction of colorizations whose CCI lies in [16, 20] (SCGAN paper), bounds inclusive",
    )

    def __init__(self, quantize: bool = True, band: tuple[float, float] = ds.CCI_BAND):
        super().__init__()
        self.quantize = quantize
        self.band = (float(band[0]), float(band[1]))
        self._cci: list[np.ndarray] = []

    def reset(self) -> None:
        super().reset()
        self._cci = []

    def _per_image(self, pred, target, labels) -> np.ndarray:
        values = im.cci(pred, quantize=self.quantize).cpu().numpy()
        self._cci.append(values)
        return ds.cci_in_band(values, self.band)

    def cci_values(self) -> np.ndarray:
        return np.concatenate(self._cci) if self._cci else np.zeros(0)

    def compute(self) -> float:
        return ds.cci_ratio_from_values(self.cci_values(), self.band)


class DeltaCF(Metric):
    """``|mean cf(pred) - mean cf(gt)|`` over the same images, with ``cf`` = ``cf_abs`` (default, the "CF" of DDColor,
    CT2, ColorFormer) or ``cci`` (``variant="signed"``). Per-image values: ``cf(pred) - cf(gt)`` (signed)."""

    info = MetricInfo(
        "delta_cf", False, "dataset", True, False, False,
        "exact: abs(mean cf_abs(pred) - mean cf_abs(gt)) over per-image values",
        "Colourfulness gap to the ground truth: |mean CF(pred) - mean CF(gt)|, CF = cf_abs",
    )

    def __init__(self, variant: str = "abs", quantize: bool = True):
        if variant not in ("abs", "signed"):
            raise ValueError(f"delta_cf: variant must be 'abs' (cf_abs) or 'signed' (cci), got {variant!r}")
        super().__init__()
        self.variant = variant
        self.quantize = quantize
        self._fn = im.cf_abs if variant == "abs" else im.cci
        self._pred: list[np.ndarray] = []
        self._true: list[np.ndarray] = []

    def reset(self) -> None:
        super().reset()
        self._pred, self._true = [], []

    def _per_image(self, pred, target, labels) -> np.ndarray:
        cf_pred = self._fn(pred, quantize=self.quantize).cpu().numpy()
        cf_true = self._fn(target, quantize=self.quantize).cpu().numpy()
        self._pred.append(cf_pred)
        self._true.append(cf_true)
        return cf_pred - cf_true

    def compute(self) -> float:
        if not self._pred:
            return ds.delta_cf_from_values(np.zeros(0), np.zeros(0))
        return ds.delta_cf_from_values(np.concatenate(self._pred), np.concatenate(self._true))


_register(CciRatio.info, CciRatio)
_register(DeltaCF.info, DeltaCF)


# ------------------------------------------------------------------------------------------------ classifier metrics
_CLASSIFIERS: dict[tuple[str, str, str], object] = {}


def classifier_for(classifier=None, backend: str = "onnxruntime", device: str = "cpu"):
    """Resolve the ``classifier`` option: an object with ``logits``/``features`` is used as is; a spec string (default
    ``"efficientnet-lite0"``) is loaded once per process through ``metrics.classifier.load_classifier`` and shared by
    every metric that asks for the same (spec, backend, device)."""
    if classifier is not None and not isinstance(classifier, str):
        if not hasattr(classifier, "logits"):
            raise TypeError(f"classifier: expected a spec string or an object with .logits(), got {classifier!r}")
        return classifier
    spec = classifier or "efficientnet-lite0"
    key = (spec, backend, device)
    if key not in _CLASSIFIERS:
        # Imported here: loading the classifier package (and ONNX Runtime) is only paid by the metrics that need it.
        from metrics.classifier import load_classifier

        _CLASSIFIERS[key] = load_classifier(spec, backend=backend, device=device)
    return _CLASSIFIERS[key]


class _ClassifierOutputs:
    """Remembers the classifier outputs of the last two image tensors (a batch's pred and target), so that top1,
    top5, top1_agree and fid_effl0 fed the same tensor run the network once. Keyed on the tensor object itself and its
    version counter (any in-place change invalidates the entry); a reference is held, so the identity cannot be reused
    by another tensor. Two entries are all one suite update needs, and they bound the memory held after it."""

    def __init__(self, size: int = 2):
        self.size = size
        self.entries: list[tuple[object, torch.Tensor, int, torch.Tensor, torch.Tensor | None]] = []

    def get(self, classifier, images: torch.Tensor, want_features: bool):
        for owner, tensor, version, logits, features in self.entries:
            if owner is classifier and tensor is images and version == images._version:
                if want_features and features is None:
                    break
                return logits, features
        if want_features:
            both = getattr(classifier, "logits_and_features", None)
            logits, features = both(images) if both else (classifier.logits(images), classifier.features(images))
        else:
            logits, features = classifier.logits(images), None
        self.entries = [(classifier, images, images._version, logits, features)] + self.entries[: self.size - 1]
        return logits, features


_OUTPUTS = _ClassifierOutputs()


class _ClassifierMetric(Metric):
    def __init__(self, classifier=None, backend: str = "onnxruntime", device: str = "cpu"):
        super().__init__()
        self._classifier_option = classifier
        self.backend = backend
        self.device = device
        self._classifier = None

    @property
    def classifier(self):
        """The classifier object (loaded on first use)."""
        if self._classifier is None:
            self._classifier = classifier_for(self._classifier_option, self.backend, self.device)
        return self._classifier

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        logits, _ = _OUTPUTS.get(self.classifier, images, want_features=False)
        if logits.ndim != 2 or logits.shape[0] != images.shape[0]:
            raise ValueError(f"{self.info.name}: classifier returned logits of shape {tuple(logits.shape)}")
        return logits


class TopK(_ClassifierMetric):
    """Classifier accuracy on the colorizations against labels: top-1 or top-5. Per-image values: 1.0 hit, 0.0 miss."""

    def __init__(self, k: int, info: MetricInfo, **options):
        super().__init__(**options)
        self.k = k
        self.info = info

    def _per_image(self, pred, target, labels) -> np.ndarray:
        return ds.topk_hits(self._logits(pred), labels, self.k)


class Top1Agree(_ClassifierMetric):
    """Label-free: fraction of images whose top-1 class on the colorization equals the top-1 class on the ground
    truth. Per-image values: 1.0 agree, 0.0 not."""

    info = MetricInfo(
        "top1_agree", True, "dataset", True, False, True,
        "exact counts of argmax(logits(pred)) == argmax(logits(gt))",
        "Label-free Top-1 agreement: same top-1 class on colorization and ground truth (EfficientNet-Lite0)",
    )

    def _per_image(self, pred, target, labels) -> np.ndarray:
        return ds.agreement_hits(self._logits(pred), self._logits(target))


class FidEffl0(_ClassifierMetric):
    """Frechet distance between EfficientNet-Lite0 pooled features of the colorizations and of the ground truth.
    NOT comparable with standard (Inception) FID. Has no per-image values."""

    info = MetricInfo(
        "fid_effl0", False, "dataset", True, False, True,
        "scipy.linalg.sqrtm Frechet formula on the same features; tol 1e-6 relative",
        "Frechet distance of EfficientNet-Lite0 pooled features (not comparable to standard Inception FID)",
    )

    def __init__(self, **options):
        super().__init__(**options)
        self._features_pred: list[np.ndarray] = []
        self._features_true: list[np.ndarray] = []

    def reset(self) -> None:
        super().reset()
        self._features_pred, self._features_true = [], []

    def _features(self, images: torch.Tensor) -> np.ndarray:
        _, features = _OUTPUTS.get(self.classifier, images, want_features=True)
        return features.detach().cpu().numpy().astype(np.float64)

    def _per_image(self, pred, target, labels) -> np.ndarray:
        self._features_pred.append(self._features(pred))
        self._features_true.append(self._features(target))
        return np.zeros(pred.shape[0])  # placeholder rows, only counted; values() refuses

    def values(self) -> np.ndarray:
        raise ValueError("fid_effl0 is a distance between two feature distributions: it has no per-image values")

    def compute(self) -> float:
        if not self._features_pred:
            raise ValueError("fid_effl0: no images were given")
        return ds.frechet_distance(np.concatenate(self._features_pred), np.concatenate(self._features_true))


_TOP1_INFO = MetricInfo(
    "top1", True, "dataset", False, True, True,
    "exact counts: label == argmax(logits(pred))",
    "Classifier Top-1 accuracy on the colorizations (EfficientNet-Lite0 by default)",
)
_TOP5_INFO = MetricInfo(
    "top5", True, "dataset", False, True, True,
    "exact counts: label among the 5 largest logits(pred)",
    "Classifier Top-5 accuracy on the colorizations (EfficientNet-Lite0 by default)",
)
_register(_TOP1_INFO, lambda **options: TopK(1, _TOP1_INFO, **options))
_register(_TOP5_INFO, lambda **options: TopK(5, _TOP5_INFO, **options))
_register(Top1Agree.info, Top1Agree)
_register(FidEffl0.info, FidEffl0)


def has_per_image_values(name: str) -> bool:
    """Whether ``name`` has per-image values (a column in the eval rows); only ``fid_effl0`` has none."""
    return metric_info(name).name != "fid_effl0"
