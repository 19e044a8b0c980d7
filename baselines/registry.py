"""The registry of methods: anchors, SCGAN and the published baselines, with how each is built, loaded and exported.

``list_methods()`` gives the rows ``scgan baselines`` prints (anchors, architectures, SCGAN, then the shipped
models); ``get_architecture(name)`` the recipe for one of the
trainable architectures (build the PyTorch network, load weights strictly, wrap it in the ONNX contract).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class MethodRow:
    """One registry row. ``weights``: "loaded" (the authors' released PyTorch weights load as they are),
    "trained here" (no usable PyTorch release: train with this project), "none" (an anchor)."""

    name: str
    paper: str
    input_size: int | None
    weights: str
    kind: str  # "anchor", "scgan" or "architecture"
    notes: str = ""


@dataclass(frozen=True)
class Architecture:
    """How to make one baseline network.

    build(**options) -> the PyTorch network in its native normalisation; load_weights(net, state_dict, released)
    loads strictly; colorizer(net) -> an nn.Module following the contract (gray [0,1] -> rgb [0,1] (, saliency));
    test_options: smaller settings of the same structure for fast CPU tests, with test_size the input side they take.
    """

    name: str
    paper: str
    input_size: int
    weights: str
    build: Callable[..., nn.Module]
    load_weights: Callable[..., None]
    colorizer: Callable[[nn.Module], nn.Module]
    has_saliency: bool = False
    test_options: dict = field(default_factory=dict)
    test_size: int = 64
    notes: str = ""


def _from_module(module, weights: str, notes: str, **fields) -> Architecture:
    """The entry of an architecture module that defines NAME, PAPER, INPUT_SIZE, build, load_weights and Colorizer."""
    return Architecture(
        name=module.NAME,
        paper=module.PAPER,
        input_size=module.INPUT_SIZE,
        weights=weights,
        build=module.build,
        load_weights=module.load_weights,
        colorizer=module.Colorizer,
        notes=notes,
        **fields,
    )


def _architectures() -> dict[str, Architecture]:
    from .archs import iizuka, pix2pix, saliency_variants, zhang_eccv16, zhang_siggraph17

    def saliency_variant(name: str, build, notes: str, test_options: dict) -> Architecture:
        return Architecture(
            name=name,
            paper=saliency_variants.PAPER,
            input_size=saliency_variants.INPUT_SIZE,
            weights="trained here",
            build=build,
            load_weights=saliency_variants.load_weights,
            colorizer=saliency_variants.Colorizer,
            has_saliency=True,
            test_options=test_options,
            test_size=32,
            notes=notes,
        )

    entries = [
        _from_module(
            zhang_eccv16,
            "loaded",
            "colorization_release_v2-9b330a0b.pth; 313-bin annealed mean, T=0.38 when trained here, the release's own "
            "forward (T=1 on its scores) for its weights; --option temperature=T fixes it",
            test_size=32,
        ),
        _from_module(zhang_siggraph17, "loaded", "siggraph17-df00044c.pth; automatic mode (no hints)", test_size=32),
        _from_module(
            iizuka,
            "trained here",
            "authors released Torch7 weights only; this project's layout",
            test_options={"global_size": 32, "num_classes": 10},
            test_size=32,
        ),
        _from_module(
            pix2pix,
            "trained here",
            "unet_256 in the authors' key layout; no colorization weights released",
            test_options={"num_downs": 5, "ngf": 8},
            test_size=32,
        ),
        saliency_variant(
            saliency_variants.PIX2PIX_SAL,
            saliency_variants.build_pix2pix_sal,
            "pix2pix U-Net + SCGAN saliency head",
            {"num_downs": 5, "ngf": 8},
        ),
        saliency_variant(
            saliency_variants.URESNET_SAL,
            saliency_variants.build_uresnet_sal,
            "residual U-Net + SCGAN saliency head",
            {"widths": (8, 8, 16, 16)},
        ),
    ]
    return {entry.name: entry for entry in entries}


ANCHORS = {
    "gt": MethodRow("gt", "ground truth (upper anchor)", None, "none", "anchor", "returns the RGB ground truth"),
    "gray": MethodRow("gray", "no colour (lower anchor)", None, "none", "anchor", "returns the BT.601 gray as RGB"),
}
#: Not of kind "anchor": the leaderboard's default methods are the "anchor" rows, and tint joins them by decision.
TINT_ROW = MethodRow(
    "tint", "one constant colour (reference anchor)", None, "none", "reference",
    "the gray's L* with the training photos' mean a*, b* (baselines.anchors.TRAINING_MEAN_CHROMA)",
)
SCGAN_ROW = MethodRow(
    "scgan",
    "Zhao et al. SCGAN: Saliency Map-guided Colorization with Generative Adversarial Network. IEEE TCSVT 2020",
    256,
    "trained here",
    "scgan",
    "scgan:CHECKPOINT",
)


def architecture_names() -> list[str]:
    return list(_architectures())


def get_architecture(name: str) -> Architecture:
    """The recipe of a published baseline; ValueError listing the known names for an unknown one."""
    architectures = _architectures()
    if name not in architectures:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(architectures)}")
    return architectures[name]


def list_methods() -> list[MethodRow]:
    """Every method: anchors, the published baselines, then SCGAN (the order of the paper's tables)."""
    rows = [ANCHORS["gt"], ANCHORS["gray"], TINT_ROW]
    for arch in _architectures().values():
        rows.append(MethodRow(arch.name, arch.paper, arch.input_size, arch.weights, "architecture", arch.notes))
    rows.append(SCGAN_ROW)
    return rows + shipped_rows()


def shipped_rows() -> list[MethodRow]:
    """One row per shipped model (``scgan.shipped``), loaded by its name."""
    from scgan.shipped import read_registry

    rows = []
    for name, entry in read_registry().items():
        paper = SCGAN_ROW.paper if entry["method"] == "scgan" else get_architecture(entry["method"]).paper
        notes = (f"{entry['images_seen']} images seen; data {entry['data'].get('data')}; sha256 "
                 f"{entry['sha256'][:12]}")
        rows.append(MethodRow(name, paper, entry["input_size"], "shipped", "shipped", notes))
    return rows
