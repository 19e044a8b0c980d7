"""The metric registry: one name per metric variant, its metadata, and streaming metric objects.

    >>> import metrics
    >>> metrics.list_metrics()
    ['psnr', 'ssim', 'ssim_scgan', 'cci', 'cf_abs', 'delta_e00', 'auc_ab', 'cni', 'psnr_salient', ...]
    >>> m = metrics.create_metric("psnr")
    >>> m.update(pred, target)          # any number of batches: (N, 3, H, W) RGB, float [0, 1] or uint8
    >>> m.values()                      # per-image values in update order, float64 (N_total,)
    >>> m.compute()                     # dataset value (the mean of the per-image values for image-level metrics)

Every streaming object keeps per-image values, so dataset values are always computed from per-image rows.
Each metric declares the inputs it reads (``needs()``, ``metrics.engine.Need``); the evaluation engine
(``metrics.engine``) prepares them once per batch. ``metrics.functional`` and ``MetricSuite`` run the same objects.

Longer than 500 lines for one reason: it is the one table of all 19 metrics (metadata, options, needs), which the
CLI, the leaderboard and the docs read; the kernels live in ``metrics/image.py``, ``naturalness.py``, ``saliency.py``.

Longer than 500 lines for one reason: each metric's class sits beside its registration and metadata, and the
classifier-based metrics (``TopK``, ``Top1Agree``, ``FidEffl0``) subclass ``Metric`` and register here; in a module of
their own, either the registry would import them to register them (an import cycle) or the registry would be complete
only after some other import had run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metrics import dataset as ds
from metrics import image as im
from metrics import naturalness, saliency
from metrics.engine import PAIR, PRED, TARGET, BatchInputs, Need, prepare_batch

__all__ = ["MetricInfo", "Metric", "list_metrics", "metric_info", "create_metric", "classifier_for", "default_metrics"]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is.

    ``higher_is_better``: True, False, or None for a descriptive value without a "best" direction (colourfulness:
    its target is a band or the ground truth's value). ``level``: "image" (one value per image, dataset value = their
    mean) or "dataset" (computed from per-image rows). ``paired``: needs the ground truth. ``needs_labels``,
    ``needs_classifier``; ``reference``: the implementation it is calibrated against and the test tolerance;
    ``description``: one line. ``inputs``: the kinds of shared input the evaluation engine prepares for it
    (``metrics.engine``: "uint8 pair", "lab pair", "classifier", "saliency", ...). ``needs_saliency``: needs a
    saliency map per image. ``added_to_protocols``: a descriptive image-level metric that every leaderboard protocol
    measures next to its own frozen (hashed) metric list, so that adding it leaves the protocols' hashes, which
    identify the numbers they define, unchanged."""

    name: str
    higher_is_better: bool | None
    level: str
    paired: bool
    needs_labels: bool
    needs_classifier: bool
    reference: str
    description: str
    inputs: tuple[str, ...] = ()
    needs_saliency: bool = False
    added_to_protocols: bool = False


_INFOS: dict[str, MetricInfo] = {}
_FACTORIES: dict[str, Callable[..., Metric]] = {}


def _register(info: MetricInfo, factory: Callable[..., Metric]) -> None:
    _INFOS[info.name] = info
    _FACTORIES[info.name] = factory


def list_metrics() -> list[str]:
    """All metric names, image-level first, in a fixed order."""
    return list(_INFOS)


def default_metrics() -> list[str]:
    """The metrics ``scgan eval`` computes without ``--metrics``: every one that needs only the image pairs (no
    classifier, no saliency map), in registry order."""
    return [n for n, i in _INFOS.items() if not (i.needs_classifier or i.needs_saliency or i.needs_labels)]


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
    ``needs()`` lists the shared inputs (``metrics.engine.Need``) that ``per_image`` reads from a batch's
    ``BatchInputs``; ``update`` runs the engine on one metric, ``MetricSuite`` on many (each input once per batch).
    """

    info: MetricInfo

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []

    def reset(self) -> None:
        """Forget every update."""
        self._rows = []

    def __len__(self) -> int:
        return int(sum(r.shape[0] for r in self._rows))

    def needs(self) -> tuple[Need, ...]:
        raise NotImplementedError

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        """The per-image values of one batch, float64 (N,); records nothing."""
        raise NotImplementedError

    def update_from(self, inputs: BatchInputs) -> None:
        """Add a batch prepared by the engine (``metrics.engine.prepare_batch``)."""
        self._rows.append(self.per_image(inputs))

    def update(self, pred, target=None, labels=None, saliency=None) -> None:
        """Add a batch: ``pred`` (N, 3, H, W), ``target`` the same shape for paired metrics, ``labels`` (N,) int,
        ``saliency`` (N, 1, H, W) float maps for the saliency metrics."""
        self.update_from(prepare_batch([self], pred, target, labels, saliency))

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


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.detach().cpu().numpy().astype(np.float64)


# ------------------------------------------------------------------------------------------------ image-level metrics
class ImageMetric(Metric):
    """An image-level metric: per-image values from one kernel of ``metrics``, dataset value = their mean.

    ``needs_of(options)`` gives the inputs for the chosen options; ``kernel(inputs, options)`` the (N,) values.
    """

    def __init__(self, info: MetricInfo, needs_of, kernel, defaults: dict, **options):
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"{info.name}: unknown option(s) {sorted(unknown)}; allowed: {list(defaults) or 'none'}")
        super().__init__()
        self.info = info
        self.options = options
        self._settings = {**defaults, **options}
        self._needs = tuple(needs_of(self._settings))
        self._kernel = kernel

    def needs(self) -> tuple[Need, ...]:
        return self._needs

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        return _numpy(self._kernel(inputs, self._settings))


def _image_metric(info: MetricInfo, needs_of, kernel, defaults: dict | None = None, check=None) -> None:
    def factory(**options):
        if check is not None:
            check({**(defaults or {}), **options})
        return ImageMetric(info, needs_of, kernel, defaults or {}, **options)

    _register(info, factory)


def _pixels(side: str, quantize: bool) -> Need:
    """The 0..255 values of a side: the 8-bit image (the 8-bit protocol) or unrounded ``x * 255``."""
    return Need("uint8" if quantize else "values255", side)


def _pixel_pair(o: dict) -> tuple[Need, Need]:
    return _pixels(PRED, o["quantize"]), _pixels(TARGET, o["quantize"])


def _colourfulness_need(side: str, absolute: bool, quantize: bool) -> Need:
    return Need("colourfulness", side, (absolute, quantize))


def _lab_need(max_threshold: float, with_delta_e: bool) -> Need:
    return Need("lab_stats", PAIR, (float(max_threshold), with_delta_e))


_image_metric(
    MetricInfo(
        "psnr", True, "image", True, False, False,
        "skimage.metrics.peak_signal_noise_ratio on uint8 (data range 255); tol 1e-6 dB",
        "PSNR in dB over RGB on 0..255 values (float input: round(x*255)); identical images give inf",
        inputs=("uint8 pair",),
    ),
    _pixel_pair,
    lambda inputs, o: im.psnr(*(inputs.get(n) for n in _pixel_pair(o))),
    {"quantize": True},
)
_image_metric(
    MetricInfo(
        "ssim", True, "image", True, False, False,
        "skimage structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
        "data_range=255, channel_axis=-1) on uint8; tol 1e-5",
        "SSIM (Wang et al. 2004): Gaussian 11x11 sigma 1.5, population covariance, range 255, valid region, "
        "mean over RGB",
        inputs=("uint8 pair",),
    ),
    _pixel_pair,
    lambda inputs, o: im.ssim(*(inputs.get(n) for n in _pixel_pair(o)), o["precision"],
                              o["workers"] if o["workers"] is not None else inputs.workers),
    {"quantize": True, "precision": "float32", "workers": None},
    check=lambda o: im.check_ssim_precision(o["precision"]),
)
_image_metric(
    MetricInfo(
        "ssim_scgan", True, "image", True, False, False,
        "skimage structural_similarity(data_range=2.0, channel_axis=-1) on the same float images; tol 1e-5",
        "SSIM as the SCGAN paper computed it: floats in [0,1], uniform 7x7, sample covariance, data range 2",
        inputs=("image pair as given",),
    ),
    lambda o: (Need("images", PRED), Need("images", TARGET)),
    lambda inputs, o: im.ssim_scgan(inputs.get(Need("images", PRED)), inputs.get(Need("images", TARGET)),
                                    inputs.workers),
)
_image_metric(
    MetricInfo(
        "cci", None, "image", False, False, False,
        "numpy formula of Hasler & Suesstrunk (2003), float64; tol 1e-9 relative",
        "Colourfulness (CCI) on 0..255 RGB, signed opponents rg=R-G, yb=(R+G)/2-B, population std",
        inputs=("uint8",),
    ),
    lambda o: (_colourfulness_need(PRED, False, o["quantize"]),),
    lambda inputs, o: inputs.get(_colourfulness_need(PRED, False, o["quantize"])),
    {"quantize": True},
)
_image_metric(
    MetricInfo(
        "cf_abs", None, "image", False, False, False,
        "numpy formula with |rg|, |yb| (the 'CF' of DDColor, CT2, ColorFormer), float64; tol 1e-9 relative",
        "Colourfulness with absolute opponents |R-G|, |(R+G)/2-B|",
        inputs=("uint8",),
    ),
    lambda o: (_colourfulness_need(PRED, True, o["quantize"]),),
    lambda inputs, o: inputs.get(_colourfulness_need(PRED, True, o["quantize"])),
    {"quantize": True},
)
_image_metric(
    MetricInfo(
        "delta_e00", False, "image", True, False, False,
        "skimage.color.deltaE_ciede2000(rgb2lab(gt), rgb2lab(pred)).mean(); tol 1e-6",
        "Mean CIEDE2000 colour difference over pixels (Lab D65 from sRGB)",
        inputs=("lab pair",),
    ),
    lambda o: (_lab_need(im.AUC_MAX_THRESHOLD, True),),
    lambda inputs, o: inputs.get(_lab_need(im.AUC_MAX_THRESHOLD, True))[0],
)
_image_metric(
    MetricInfo(
        "auc_ab", True, "image", True, False, False,
        "numpy integral of the ab-error CDF over [0, 150] / 150 (Zhang et al. 2016); tol 1e-9",
        "Raw-accuracy AuC: fraction of pixels with ab L2 error < t, integrated over t in [0,150], / 150",
        inputs=("lab pair",),
    ),
    lambda o: (_lab_need(o["max_threshold"], False),),
    lambda inputs, o: inputs.get(_lab_need(o["max_threshold"], False))[1],
    {"max_threshold": im.AUC_MAX_THRESHOLD},
    check=lambda o: im.check_max_threshold(o["max_threshold"]),
)
_image_metric(
    MetricInfo(
        "cni", True, "image", False, False, False,
        "per-pixel transcription of SingleImageCNI (SCGAN evaluation/indexes_CCI.py), float64; tol 1e-9",
        "Colour naturalness index (SCGAN code): HSL skin/grass/sky mean saturation scored by Gaussians",
        inputs=("uint8",), added_to_protocols=True,
    ),
    lambda o: (Need("uint8", PRED),),
    lambda inputs, o: naturalness.cni(inputs.get(Need("uint8", PRED))),
)


# -------------------------------------------------------------------------------------------- saliency-aware metrics
def _salient(o: dict) -> Need:
    return Need("salient", PAIR, float(o["threshold"]))


def _band(o: dict) -> Need:
    return Need("band", PAIR, (float(o["threshold"]), int(o["band_px"])))


def _inside(inputs: BatchInputs, o: dict, salient: bool) -> torch.Tensor:
    mask = inputs.get(_salient(o))
    return mask if salient else ~mask


_SALIENCY_DEFAULTS = {"threshold": 0.5}
_U8_PAIR = (Need("uint8", PRED), Need("uint8", TARGET))
for _where, _is_salient in (("salient", True), ("background", False)):
    _image_metric(
        MetricInfo(
            f"psnr_{_where}", True, "image", True, False, False,
            "numpy PSNR over the masked pixels of the uint8 images; tol 1e-9",
            f"PSNR (dB, range 255) over the {_where} pixels (saliency {'>=' if _is_salient else '<'} threshold)",
            inputs=("uint8 pair", "saliency"), needs_saliency=True,
        ),
        lambda o: (*_U8_PAIR, _salient(o)),
        lambda inputs, o, s=_is_salient: saliency.masked_psnr(inputs.get(_U8_PAIR[0]), inputs.get(_U8_PAIR[1]),
                                                              _inside(inputs, o, s)),
        _SALIENCY_DEFAULTS,
    )
for _where, _is_salient in (("salient", True), ("background", False)):
    _image_metric(
        MetricInfo(
            f"cci_{_where}", None, "image", False, False, False,
            "numpy CCI formula over the masked pixels of the uint8 image; tol 1e-9",
            f"Colourfulness (signed CCI) over the {_where} pixels of the colorization",
            inputs=("uint8", "saliency"), needs_saliency=True,
        ),
        lambda o: (Need("uint8", PRED), _salient(o)),
        lambda inputs, o, s=_is_salient: saliency.masked_cci(inputs.get(_U8_PAIR[0]), _inside(inputs, o, s)),
        _SALIENCY_DEFAULTS,
    )
_LAB32_PAIR = (Need("lab32", PRED), Need("lab32", TARGET))
_image_metric(
    MetricInfo(
        "bleeding", False, "image", True, False, False,
        "numpy mean of the Lab ab error over the dilate-minus-erode band; tol 1e-6 (float32 Lab)",
        "Colour bleeding: mean ab error within band_px pixels of the salient object's boundary",
        inputs=("lab pair (float32)", "saliency"), needs_saliency=True,
    ),
    lambda o: (*_LAB32_PAIR, _band(o)),
    lambda inputs, o: saliency.bleeding(inputs.get(_LAB32_PAIR[0]), inputs.get(_LAB32_PAIR[1]), inputs.get(_band(o))),
    {"threshold": 0.5, "band_px": 5},
)


# ---------------------------------------------------------------------------------------------- colourfulness sets
class CciRatio(Metric):
    """Fraction of colorizations with ``16 <= cci <= 20`` (bounds inclusive). Per-image values: 1.0 in band, else 0.0;
    ``cci_values()`` gives the underlying CCI of each image."""

    info = MetricInfo(
        "cci_ratio", True, "dataset", False, False, False,
        "exact count of 16 <= cci <= 20 over per-image cci",
        "Fraction of colorizations whose CCI lies in [16, 20] (SCGAN paper), bounds inclusive",
        inputs=("uint8",),
    )

    def __init__(self, quantize: bool = True, band: tuple[float, float] = ds.CCI_BAND):
        super().__init__()
        self.quantize = quantize
        self.band = (float(band[0]), float(band[1]))
        self._cci: list[np.ndarray] = []

    def reset(self) -> None:
        super().reset()
        self._cci = []

    def needs(self) -> tuple[Need, ...]:
        return (_colourfulness_need(PRED, False, self.quantize),)

    def _cci_of(self, inputs: BatchInputs) -> np.ndarray:
        return _numpy(inputs.get(self.needs()[0]))

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        return ds.cci_in_band(self._cci_of(inputs), self.band)

    def update_from(self, inputs: BatchInputs) -> None:
        self._cci.append(self._cci_of(inputs))
        super().update_from(inputs)

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
        inputs=("uint8 pair",),
    )

    def __init__(self, variant: str = "abs", quantize: bool = True):
        if variant not in ("abs", "signed"):
            raise ValueError(f"delta_cf: variant must be 'abs' (cf_abs) or 'signed' (cci), got {variant!r}")
        super().__init__()
        self.variant = variant
        self.quantize = quantize
        self._pred: list[np.ndarray] = []
        self._true: list[np.ndarray] = []

    def reset(self) -> None:
        super().reset()
        self._pred, self._true = [], []

    def needs(self) -> tuple[Need, ...]:
        absolute = self.variant == "abs"
        return _colourfulness_need(PRED, absolute, self.quantize), _colourfulness_need(TARGET, absolute, self.quantize)

    def _both(self, inputs: BatchInputs) -> tuple[np.ndarray, np.ndarray]:
        pred_need, true_need = self.needs()
        return _numpy(inputs.get(pred_need)), _numpy(inputs.get(true_need))

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        cf_pred, cf_true = self._both(inputs)
        return cf_pred - cf_true

    def update_from(self, inputs: BatchInputs) -> None:
        cf_pred, cf_true = self._both(inputs)
        self._pred.append(cf_pred)
        self._true.append(cf_true)
        self._rows.append(cf_pred - cf_true)

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
    every metric that asks for the same (spec, backend, device) (loaded weights, not results)."""
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


class _ClassifierMetric(Metric):
    """A metric of classifier outputs; the engine runs the network once per batch and side for all of them."""

    sides: tuple[str, ...] = (PRED,)
    with_features = False

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

    def needs(self) -> tuple[Need, ...]:
        return tuple(Need("classifier", side, (self.classifier, self.with_features)) for side in self.sides)

    def _logits(self, inputs: BatchInputs, side: str = PRED) -> torch.Tensor:
        logits, _ = inputs.get(Need("classifier", side, (self.classifier, self.with_features)))
        if logits.ndim != 2 or logits.shape[0] != inputs.count:
            raise ValueError(f"{self.info.name}: classifier returned logits of shape {tuple(logits.shape)}")
        return logits


class TopK(_ClassifierMetric):
    """Classifier accuracy on the colorizations against labels: top-1 or top-5. Per-image values: 1.0 hit, 0.0 miss."""

    def __init__(self, k: int, info: MetricInfo, **options):
        super().__init__(**options)
        self.k = k
        self.info = info

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        return ds.topk_hits(self._logits(inputs), inputs.labels, self.k)


class Top1Agree(_ClassifierMetric):
    """Label-free: fraction of images whose top-1 class on the colorization equals the top-1 class on the ground
    truth. Per-image values: 1.0 agree, 0.0 not."""

    info = MetricInfo(
        "top1_agree", True, "dataset", True, False, True,
        "exact counts of argmax(logits(pred)) == argmax(logits(gt))",
        "Label-free Top-1 agreement: same top-1 class on colorization and ground truth (EfficientNet-Lite0)",
        inputs=("classifier pair",),
    )
    sides = (PRED, TARGET)

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        return ds.agreement_hits(self._logits(inputs), self._logits(inputs, TARGET))


class FidEffl0(_ClassifierMetric):
    """Frechet distance between EfficientNet-Lite0 pooled features of the colorizations and of the ground truth.
    NOT comparable with standard (Inception) FID. Has no per-image values."""

    info = MetricInfo(
        "fid_effl0", False, "dataset", True, False, True,
        "scipy.linalg.sqrtm Frechet formula on the same features; tol 1e-6 relative",
        "Frechet distance of EfficientNet-Lite0 pooled features (not comparable to standard Inception FID)",
        inputs=("classifier features pair",),
    )
    sides = (PRED, TARGET)
    with_features = True

    def __init__(self, **options):
        super().__init__(**options)
        self._features_pred: list[np.ndarray] = []
        self._features_true: list[np.ndarray] = []

    def reset(self) -> None:
        super().reset()
        self._features_pred, self._features_true = [], []

    def features(self, inputs: BatchInputs, side: str = PRED) -> np.ndarray:
        """The pooled features (N, D) float64 of one side of a batch."""
        return inputs.get(Need("classifier", side, (self.classifier, True)))[1]

    def per_image(self, inputs: BatchInputs) -> np.ndarray:
        raise ValueError("fid_effl0 is a distance between two feature distributions: it has no per-image values")

    def update_from(self, inputs: BatchInputs) -> None:
        self._features_pred.append(self.features(inputs, PRED))
        self._features_true.append(self.features(inputs, TARGET))
        self._rows.append(np.zeros(inputs.count))  # placeholder rows, only counted; values() refuses

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
    inputs=("classifier", "labels"),
)
_TOP5_INFO = MetricInfo(
    "top5", True, "dataset", False, True, True,
    "exact counts: label among the 5 largest logits(pred)",
    "Classifier Top-5 accuracy on the colorizations (EfficientNet-Lite0 by default)",
    inputs=("classifier", "labels"),
)
_register(_TOP1_INFO, lambda **options: TopK(1, _TOP1_INFO, **options))
_register(_TOP5_INFO, lambda **options: TopK(5, _TOP5_INFO, **options))
_register(Top1Agree.info, Top1Agree)
_register(FidEffl0.info, FidEffl0)


def has_per_image_values(name: str) -> bool:
    """Whether ``name`` has per-image values (a column in the eval rows); only ``fid_effl0`` has none."""
    return metric_info(name).name != "fid_effl0"
