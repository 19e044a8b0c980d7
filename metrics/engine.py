"""The per-image evaluation engine: checks one batch once, computes each input that metrics share once per batch, and
hands it to every metric explicitly (the idea of torchmetrics' compute groups).

Every metric says what it needs as :class:`Need` values (``Metric.needs()``; the registry's ``MetricInfo.inputs``
names the kinds). A batch's inputs live in a :class:`BatchInputs` made for that batch and dropped with it: nothing is
kept between batches, no cache is keyed on tensors, and no metric call changes torch's thread count (an evaluation
command sets it once, ``use_image_workers``).

Kinds of input (``Need.kind``), per side (``"pred"`` / ``"target"``) unless noted:

- ``"images"``: the checked image as given (float [0, 1] or uint8);
- ``"uint8"``: the 8-bit image: uint8 as is, float quantized once per batch (``quantize_uint8``);
- ``"values255"``: unrounded ``x * 255`` in float64 (the ``quantize=False`` option of the 0..255 metrics);
- ``"colourfulness"`` (option ``(absolute, quantize)``): per-image CCI / CF values, shared by cci, cci_ratio, cf_abs,
  delta_cf;
- ``"classifier"`` (option ``(classifier, with_features)``): logits and pooled features; when any metric of the batch
  wants features, one forward pass gives both;
- ``"lab32"``: float32 CIE Lab of the 8-bit image (saliency bleeding);
- ``"lab_stats"`` (pair; option ``(max_threshold, with_delta_e)``): per-image CIEDE2000 and AuC from one Lab
  conversion per pair; when any metric wants CIEDE2000, the AuC comes out of the same conversion;
- ``"salient"`` (pair; option ``threshold``) and ``"band"`` (pair; option ``(threshold, band_px)``): masks from the
  saliency map given with the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from metrics import image as im
from metrics import saliency as sal
from metrics._inputs import as_image_tensor, check_labels, check_pair, to_8bit_values
from metrics.color import rgb_to_lab

__all__ = ["Need", "SideInputs", "BatchInputs", "prepare_batch", "quantize_uint8", "use_image_workers", "PRED",
           "TARGET", "PAIR"]

PRED, TARGET, PAIR = "pred", "target", "pair"

# Image worker threads of the CPU kernels when a caller gives none: 1 (the calling thread) until an evaluation command
# chooses otherwise, once, with use_image_workers. A setting of the process, like torch's thread count, not a cache.
_PROCESS_WORKERS = {"workers": 1}


def use_image_workers(workers: int | None = None) -> int:
    """For an evaluation command, called once at its start (never inside a metric call): torch computes with one
    intra-op thread in this process and the engine spreads the images of each batch over ``workers`` Python threads
    (default: torch's intra-op thread count before the call). Returns the worker count.

    Why: per-image metric ops are too small for intra-op threading; on a shared 2-core machine two OpenMP threads made
    the metrics of ``scgan leaderboard`` 10-30x slower than one thread (measured: CCI 0.32 s vs 0.011 s for the
    default run's 12 images). Image workers use the cores instead.
    """
    workers = torch.get_num_threads() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    torch.set_num_threads(1)
    _PROCESS_WORKERS["workers"] = workers
    return workers


def image_workers(workers: int | None) -> int:
    """``workers`` when given, else the process's choice (``use_image_workers``; 1 by default)."""
    return _PROCESS_WORKERS["workers"] if workers is None else int(workers)

def quantize_uint8(images: torch.Tensor) -> torch.Tensor:
    """Checked image -> uint8 (N, 3, H, W): uint8 as is; float ``x`` -> ``floor(x * 255 + 0.5)``, the float64 rounding
    of ``metrics._inputs.to_8bit_values`` (what ``scgan.data.to_uint8`` and ``save_image`` write), for every input.

    float64 input is rounded by exactly that formula. float16/32 input computes ``t = x * 255 + 0.5`` in float32 (half
    the memory traffic): the product of a float32 ``x`` by 255 rounds to the same side of every tie ``k + 0.5`` as the
    exact product (rounding is monotonic and the tie is a float32 number), unless it lands exactly on the tie, which
    makes ``t`` an integer; ``t`` is exact otherwise (``x <= 1 + 1e-6`` keeps it below 256). So ``floor(t)`` is the
    float64 result wherever ``t`` is not an integer, and the integers are redone in float64. Images made from 8-bit
    data (``u / 255``) give ``t`` within 2^-15 of ``u + 0.5``, never an integer: they take the float32 path alone and
    give back ``u`` (``tests/test_metrics_engine.py`` checks all 256 levels and every tie). CPU: NumPy in chunks that
    stay in the cache (about 10x faster than the same torch ops here, measured).
    """
    if images.dtype == torch.uint8:
        return images
    with torch.no_grad():
        if images.device.type != "cpu":
            return _quantize_torch(images)
        source = images.detach()
        if source.dtype != torch.float64:
            source = source.to(torch.float32)
        values = source.contiguous().numpy().reshape(-1)
        out = np.empty(values.shape, dtype=np.uint8)
        for start in range(0, values.size, QUANTIZE_CHUNK_VALUES):
            _quantize_chunk(values[start:start + QUANTIZE_CHUNK_VALUES], out[start:start + QUANTIZE_CHUNK_VALUES])
        return torch.from_numpy(out).view(images.shape)


# Float images are quantized in chunks of this many values (a working set that stays in the CPU cache).
QUANTIZE_CHUNK_VALUES = 1 << 16


def _quantize_chunk(x: np.ndarray, out: np.ndarray) -> None:
    t = np.multiply(x, x.dtype.type(255.0))
    t += x.dtype.type(0.5)
    if x.dtype == np.float32:
        whole = np.trunc(t)
        ties = whole == t
        if ties.any():
            whole[ties] = np.floor(np.clip(x[ties].astype(np.float64), 0.0, 1.0) * 255.0 + 0.5)
        t = whole
    # Truncation is floor here: t >= 0.5 - 255e-6 > 0 and t < 256 (the input check bounds x by 1e-6).
    out[...] = t


def _quantize_torch(images: torch.Tensor) -> torch.Tensor:
    """``quantize_uint8`` off the CPU: the same steps as torch ops."""
    if images.dtype == torch.float64:
        return torch.floor(images.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
    x = images.to(torch.float32)
    t = x * 255.0 + 0.5
    whole = torch.trunc(t)
    ties = whole == t
    if bool(ties.any()):
        whole[ties] = torch.floor(x[ties].to(torch.float64).clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.float32)
    return whole.clamp_(0.0, 255.0).to(torch.uint8)


@dataclass(frozen=True)
class Need:
    """One input a metric needs: its ``kind``, the ``side`` it is computed on, and an ``option`` that is part of what
    it is (e.g. the AuC threshold). Equal needs are computed once per batch."""

    kind: str
    side: str = PRED
    option: object = None


class SideInputs:
    """The inputs of one side (pred or target) of a batch, each computed at most once. ``select(indices)`` gives the
    inputs of a subset of the images with what is already computed carried over (the leaderboard computes the ground
    truth's inputs once per group and takes the images a method colorized)."""

    def __init__(self, images: torch.Tensor, wants_features: Iterable[object] = ()):
        self.images = images
        # classifiers for which some metric of this batch wants pooled features (one forward pass gives both)
        self.wants_features = set(wants_features)
        self._values: dict[tuple, object] = {}

    def get(self, kind: str, option: object = None):
        key = (kind, option)
        if key not in self._values:
            self._values[key] = self._compute(kind, option)
        return self._values[key]

    def _compute(self, kind: str, option: object):
        if kind == "images":
            return self.images
        if kind == "uint8":
            return quantize_uint8(self.images)
        if kind == "values255":
            return to_8bit_values(self.images, False, torch.float64)
        if kind == "colourfulness":
            absolute, quantize = option
            return im.colourfulness(self.get("uint8") if quantize else self.get("values255"), absolute)
        if kind == "classifier":
            classifier, with_features = option
            if not with_features and classifier in self.wants_features:
                return self.get("classifier", (classifier, True))
            return _classify(classifier, self.images, with_features)
        if kind == "lab32":
            return _lab32(self.get("uint8"))
        raise ValueError(f"unknown input kind {kind!r}")

    def select(self, indices: list[int]) -> SideInputs:
        """The inputs of images ``indices`` (tensors and arrays indexed; computed values carried over)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        subset = SideInputs(self.images[index], self.wants_features)
        for key, value in self._values.items():
            subset._values[key] = _take(value, index)
        return subset


def _take(value, index: torch.Tensor):
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_take(v, index) for v in value)
    if isinstance(value, torch.Tensor):
        return value[index.to(value.device)]
    return value[index.numpy()]  # numpy arrays


def _classify(classifier, images: torch.Tensor, with_features: bool):
    """(logits (N, K) float32 on the CPU, pooled features (N, D) float64 numpy or None) of one classifier pass.
    Classifiers take float images in [0, 1]: uint8 is scaled by 1/255 in float32 (what a classifier would do)."""
    if images.dtype == torch.uint8:
        images = images.to(torch.float32) / 255.0
    with torch.no_grad():
        if with_features:
            both = getattr(classifier, "logits_and_features", None)
            logits, feats = both(images) if both else (classifier.logits(images), classifier.features(images))
            return logits.detach().cpu().to(torch.float32), feats.detach().cpu().to(torch.float64).numpy()
        return classifier.logits(images).detach().cpu().to(torch.float32), None


def _lab32(images_u8: torch.Tensor) -> torch.Tensor:
    """float32 CIE Lab (N, 3, H, W) of uint8 RGB, one image at a time (a working set that stays in the CPU cache:
    2-3x faster than one pass over a batch of 16 images of 256x256)."""
    return torch.cat([rgb_to_lab(images_u8[i:i + 1].to(torch.float32) / 255.0) for i in range(images_u8.shape[0])])


class BatchInputs:
    """Everything the metrics of one batch read: both sides' inputs, labels, the saliency map and pair inputs."""

    def __init__(self, pred: SideInputs, target: SideInputs | None, labels: torch.Tensor | None = None,
                 saliency: torch.Tensor | None = None, with_delta_e: Iterable[float] = (), workers: int | None = None):
        self.sides = {PRED: pred, TARGET: target}
        self.labels = labels
        self.saliency = saliency
        # AuC thresholds for which some metric of this batch also wants CIEDE2000 (one Lab conversion gives both)
        self.with_delta_e = set(with_delta_e)
        self.workers = image_workers(workers)
        self._pair: dict[tuple, object] = {}

    @property
    def count(self) -> int:
        return int(self.sides[PRED].images.shape[0])

    def get(self, need: Need):
        """The value of ``need`` for this batch (computed on first use, then reused)."""
        if need.side != PAIR:
            side = self.sides[need.side]
            if side is None:
                raise ValueError(f"input {need.kind!r} of the target: no target was given")
            return side.get(need.kind, need.option)
        key = (need.kind, need.option)
        if key not in self._pair:
            self._pair[key] = self._compute_pair(need.kind, need.option)
        return self._pair[key]

    def _compute_pair(self, kind: str, option):
        if kind == "lab_stats":
            max_threshold, with_delta_e = option
            if not with_delta_e and max_threshold in self.with_delta_e:
                return self.get(Need("lab_stats", PAIR, (max_threshold, True)))
            return im.lab_stats(self.sides[PRED].get("images"), self.sides[TARGET].get("images"), max_threshold,
                                with_delta_e, self.workers)
        if kind == "salient":
            if self.saliency is None:
                raise ValueError("saliency metrics need a saliency map per image (saliency=...)")
            return self.saliency >= option
        if kind == "band":
            threshold, band_px = option
            return sal.boundary_band(self.get(Need("salient", PAIR, threshold)), band_px)
        raise ValueError(f"unknown input kind {kind!r}")


def check_saliency(saliency, count: int, height: int, width: int) -> torch.Tensor:
    """Saliency maps -> float (N, 1, H, W) in [0, 1] at the images' size; errors name the argument."""
    saliency = torch.as_tensor(saliency)
    if saliency.ndim == 3:
        saliency = saliency[:, None]
    if saliency.shape != (count, 1, height, width):
        raise ValueError(f"saliency: expected maps of shape ({count}, 1, {height}, {width}) (one per image, at the "
                         f"images' size), got {tuple(saliency.shape)}")
    if not saliency.is_floating_point():
        raise TypeError(f"saliency: expected float maps in [0, 1], got dtype {saliency.dtype}")
    return saliency


def prepare_batch(metric_list, pred, target=None, labels=None, saliency=None, workers: int | None = None,
                  target_inputs: SideInputs | None = None) -> BatchInputs:
    """Check one batch once for every metric of ``metric_list`` and plan their shared inputs.

    pred, target: (N, 3, H, W) RGB, float [0, 1] or uint8 (tensors or numpy arrays); target is required when a metric
    is paired (and checked against pred when given). labels: (N,) class indices, required when a metric needs them.
    saliency: (N, 1, H, W) float maps in [0, 1], required by the saliency metrics. ``target_inputs``: the target's
    inputs when already prepared (then ``target`` is not given again).
    """
    infos = [m.info for m in metric_list]
    for info in infos:
        if info.paired and target is None and target_inputs is None:
            raise ValueError(f"{info.name}: needs the ground truth (target=...)")
        if info.needs_labels and labels is None:
            raise ValueError(f"{info.name}: needs class labels (labels=..., or --labels CSV)")
        if info.needs_saliency and saliency is None:
            raise ValueError(f"{info.name}: needs a saliency map per image (saliency=..., or --saliency DIR)")
    if target_inputs is not None:
        pred, _ = check_pair(pred, target_inputs.images)
    elif target is not None:
        pred, target = check_pair(pred, target)
    else:
        pred = as_image_tensor(pred, "pred")
    if labels is not None and any(i.needs_labels for i in infos):
        labels = check_labels(labels, pred.shape[0])
    if saliency is not None:
        saliency = check_saliency(saliency, pred.shape[0], pred.shape[2], pred.shape[3]).to(pred.device)
    needs = [need for m in metric_list for need in m.needs()]
    features = {need.option[0] for need in needs if need.kind == "classifier" and need.option[1]}
    delta_e = {need.option[0] for need in needs if need.kind == "lab_stats" and need.option[1]}
    if target_inputs is None and target is not None:
        target_inputs = SideInputs(target, features)
    return BatchInputs(SideInputs(pred, features), target_inputs, labels, saliency, delta_e, workers)
