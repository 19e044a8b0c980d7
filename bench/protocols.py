"""Named evaluation protocols: frozen bundles of everything that decides what a leaderboard number means.

Two leaderboards are comparable only when they used the same protocol; every row of ``rows.csv`` carries the
protocol's name and ``hash`` (sha256 of the canonical JSON of its full parameter set, first 16 hex digits), and
``run.json`` carries the parameters themselves. Changing any parameter (even one that looks cosmetic) changes the
hash; the ``version`` field is bumped when the code behind a parameter changes meaning.

- ``scgan-paper``: the SCGAN paper's evaluation (Zhao et al., TCSVT 2020, Table I): ground truth and input squashed to
  256x256 (bilinear on uint8, as OpenCV does), the network's raw RGB output (no luminance recombination), SSIM in the
  paper's variant (``ssim_scgan``: uniform 7x7, sample covariance, data range 2) next to Wang et al.'s, signed CCI
  (Hasler & Suesstrunk with signed rg/yb), the CCI band [16, 20].
- ``wang``: the protocol a user comparing colorizers on real photos would want: native resolution (no resize of the
  ground truth), the method's chroma recombined with the full-resolution input luminance in CIE Lab (so the
  metrics judge colour, not the model's upsampling), SSIM of Wang et al. (Gaussian 11x11, sigma 1.5, K=(0.01, 0.03),
  range 255); ``ssim_scgan`` is left out because its definition needs 256x256 inputs.

Both compute the outputs' per-image values on the uint8-quantised colorizations (what a saved PNG holds), so a
cached colorization and a fresh one give identical rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from scgan.data import GRAY_CHROMA_THRESHOLD

# Image-level metrics (one value per image) in table order; dataset-level ones are derived from them in the report.
IMAGE_METRICS_PAPER = (
    "psnr", "ssim", "ssim_scgan", "cci", "cf_abs", "delta_e00", "auc_ab", "top1", "top5", "top1_agree", "fid_effl0",
)
IMAGE_METRICS_WANG = ("psnr", "ssim", "cci", "cf_abs", "delta_e00", "auc_ab", "top1", "top5", "top1_agree", "fid_effl0")
# Metrics that need the classifier (EfficientNet-Lite0 by default); top1/top5 also need labels.
CLASSIFIER_METRICS = ("top1", "top5", "top1_agree", "fid_effl0")
LABEL_METRICS = ("top1", "top5")


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol. Every field is part of the hash.

    resize_policy: ``scgan.data`` policy applied to the ground truth before anything else (``squash256``/``native``).
    raw: True = the method's RGB output as is; False = its chroma recombined with the input luminance (Lab).
    metrics: the per-image metric variants this protocol computes (registry names), in table order.
    cci_band: inclusive band of "natural" colourfulness for ``cci_ratio``.
    classifier / classifier_backend: the ImageNet classifier for Top-1 and FID features (``metrics.classifier``).
    output_quantization: colorizations are rounded to this dtype before measuring (and caching).
    gray_rule_chroma_p99: an output with 99th percentile of |R-G|+|G-B| at most this (0..255) counts as near-gray.
    saliency_threshold: a saliency map value >= this marks a salient pixel.
    bleeding_band_px: half-width k (pixels) of the band around salient-object boundaries for the bleeding score.
    color_cast_space: the colour space of the colour-cast diagnostic (mean a*, b* bias).
    color_cast_stride: the cast is averaged over the pixels of a regular grid, every ``stride``-th pixel in each
        direction (a mean bias needs no more; it costs 1/stride^2 of the Lab conversions).
    """

    name: str
    description: str
    resize_policy: str
    raw: bool
    metrics: tuple[str, ...]
    cci_variant: str = "signed"
    cci_band: tuple[float, float] = (16.0, 20.0)
    classifier: str = "efficientnet-lite0"
    classifier_backend: str = "onnxruntime"
    output_quantization: str = "uint8"
    gray_rule_chroma_p99: float = GRAY_CHROMA_THRESHOLD  # the data layer's gray rule, applied to the outputs
    saliency_threshold: float = 0.5
    bleeding_band_px: int = 5
    color_cast_space: str = "CIELAB D65"
    color_cast_stride: int = 4
    version: int = 1
    extra: dict = field(default_factory=dict)

    def params(self) -> dict:
        """The full parameter set as a JSON-ready dict (lists instead of tuples)."""
        return json.loads(json.dumps(asdict(self)))

    @property
    def hash(self) -> str:
        """sha256 (first 16 hex digits) of the canonical JSON of ``params()``."""
        canonical = json.dumps(self.params(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def __hash__(self) -> int:  # frozen dataclass with a dict field: hash by the parameter hash
        return hash(self.hash)


PROTOCOLS: dict[str, Protocol] = {
    "scgan-paper": Protocol(
        name="scgan-paper",
        description="SCGAN paper (Zhao et al. TCSVT 2020, Table I): 256x256 squash, raw network RGB, ssim_scgan "
        "(uniform 7x7, data range 2) and Wang SSIM, signed CCI, CCI band [16, 20]",
        resize_policy="squash256",
        raw=True,
        metrics=IMAGE_METRICS_PAPER,
    ),
    "wang": Protocol(
        name="wang",
        description="native resolution, predicted chroma recombined with the input luminance (Lab), SSIM of Wang et "
        "al. (Gaussian 11x11, sigma 1.5, range 255), signed CCI, CCI band [16, 20]",
        resize_policy="native",
        raw=False,
        metrics=IMAGE_METRICS_WANG,
    ),
}
#: The leaderboard's default: the luminance-keeping protocol, the way a practical colorizer is used (its chroma on
#: the input's own full-resolution luminance). Small models (the shipped 64-pixel ones) are meant to be used so; under
#: ``scgan-paper`` their raw RGB is a 64-pixel image upsampled to 256, scored mostly for its blur.
DEFAULT_PROTOCOL = "wang"

#: What each protocol does to a colorization, in a few words: the caption of every table it measures (not part of
#: the hash: a caption is not a parameter).
CAPTIONS = {
    "scgan-paper": "raw network RGB at 256x256, the paper's Table I protocol; structure and colour are scored",
    "wang": "luminance-keeping: the method's chroma on the input's full-resolution luminance; colour is scored",
}


def caption_words(name: str) -> str:
    """``" (luminance-keeping: ...)"`` for a known protocol, ``""`` for another."""
    words = CAPTIONS.get(name)
    return f" ({words})" if words else ""


def caption(name: str) -> str:
    """``"Protocol `wang` (luminance-keeping: ...)"``: how every table names its protocol."""
    return f"Protocol `{name}`" + caption_words(name)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; a clear error lists the known names."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"--protocol: unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
