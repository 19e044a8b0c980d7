"""The ImageNet classifier behind ``top1``, ``top5``, ``top1_agree`` and ``fid_effl0``: one :class:`Classifier` front
over a torch module or an ONNX Runtime session, chosen by :func:`load_classifier`.

Specs:
- ``efficientnet-lite0`` (default): the packaged real ImageNet weights; ``efficientnet-lite0:PATH.pth`` for another
  state dict in the same naming. Preprocessing: short side 256 bicubic, centre 224, ``(x*255 - 127) / 128``.
- ``vgg16:PATH.pth``: a torchvision-layout VGG-16 state dict. Preprocessing: short side 256, centre 224, ImageNet
  mean/std.
- ``onnx:PATH.onnx``: any ONNX classifier with one float32 (N, 3, H, W) input and 1000 logits (output ``logits`` or
  the first output; an optional rank-2 output ``features`` serves :meth:`Classifier.features`). Default preprocessing:
  ImageNet mean/std at 224 (or the model's static input size) after a short side of size*256/224; override with
  ``preprocessing=``.

Backends: ``onnxruntime`` (torch models are exported once to ONNX, cached under ``$SCGAN_CACHE_DIR`` or
``~/.cache/scgan-bench`` by the weights' sha256, and checked against torch) or ``torch`` (eager).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metrics.device import resolve_device

from . import onnx_classifier as onnx_rt
from .efficientnet_lite0 import FEATURE_DIM, build_efficientnet_lite0, file_sha256, packaged_weights_path
from .preprocess import (
    EFFICIENTNET_LITE0_PREPROCESSING,
    IMAGENET_PREPROCESSING,
    NORMALIZATIONS,
    Preprocessing,
    check_image_structure,
    check_images,
)
from .vgg16 import load_vgg16

BACKENDS = ("onnxruntime", "torch")
SPEC_FORMS = "'efficientnet-lite0', 'efficientnet-lite0:PATH.pth', 'vgg16:PATH.pth' or 'onnx:PATH.onnx'"
DEFAULT_BATCH_SIZE = 64

# A runner maps a preprocessed float32 batch (B, 3, S, S) on the classifier's device to (logits, features or None).
Runner = Callable[[torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"]]


class Classifier:
    """An ImageNet-1k classifier over RGB images.

    Attributes: ``name`` (e.g. ``efficientnet-lite0``), ``sha256`` (of the weights file: ``.pth`` or ``.onnx``),
    ``backend`` (``onnxruntime`` | ``torch``), ``device``, ``preprocessing`` (:class:`Preprocessing`),
    ``batch_size``, ``feature_dim`` (None when the model has no feature output).

    Every method takes images as float (N, 3, H, W) RGB sRGB in [0, 1] of any size (uint8 is accepted and scaled),
    runs them in batches of ``batch_size`` without gradients, and returns CPU tensors. Results do not depend on the
    batch size beyond float rounding (~1e-5) and are deterministic.
    """

    def __init__(self, name: str, sha256: str, backend: str, device: str, preprocessing: Preprocessing,
                 runner: Runner, batch_size: int = DEFAULT_BATCH_SIZE, feature_dim: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.sha256 = sha256
        self.backend = backend
        self.device = device
        self.preprocessing = preprocessing
        self.batch_size = int(batch_size)
        self.feature_dim = feature_dim
        self.num_classes = 1000
        self._runner = runner

    def __repr__(self) -> str:
        return (f"Classifier(name={self.name!r}, backend={self.backend!r}, device={self.device!r}, "
                f"preprocessing={self.preprocessing}, sha256={self.sha256[:12]}...)")

    def _run(self, images: torch.Tensor, want_features: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_image_structure(images)
        logits_parts, feature_parts = [], []
        with torch.no_grad():
            for start in range(0, images.shape[0], self.batch_size):
                end = min(start + self.batch_size, images.shape[0])
                # Values are checked and uint8 converted per chunk: a large uint8 set never exists in float at once.
                chunk = check_images(images[start:end], name=f"images[{start}:{end}]").to(self.device)
                x = self.preprocessing(chunk).float().contiguous()
                logits, features = self._runner(x)
                logits_parts.append(logits.float().cpu())
                if want_features:
                    if features is None:
                        raise ValueError(
                            f"classifier {self.name!r} has no pooled-feature output (for an ONNX classifier, add a "
                            "rank-2 output named 'features')"
                        )
                    feature_parts.append(features.float().cpu())
        return torch.cat(logits_parts), (torch.cat(feature_parts) if want_features else None)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """float32 (N, 1000) logits (no softmax), labels 0..999 in sorted-wnid order."""
        return self._run(images, want_features=False)[0]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """float32 (N, D) pooled features (EfficientNet-Lite0: the 1280-d global average pool of the head, the
        ``fid_effl0`` embedding; VGG-16: fc7, 4096-d)."""
        return self._run(images, want_features=True)[1]

    def logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both from one pass: (N, 1000) logits and (N, D) features."""
        logits, features = self._run(images, want_features=True)
        return logits, features

    def predict(self, images: torch.Tensor, k: int = 1) -> torch.Tensor:
        """int64 (N, k) indices of the k largest logits, best first (ties broken by lower index)."""
        logits = self.logits(images)
        # A stable descending sort makes ties deterministic (torch.topk does not promise an order among ties).
        return torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :k]


def _torch_runner(model: nn.Module, device: str) -> Runner:
    model = model.to(device).eval()

    def run(x: torch.Tensor):
        return model.forward_logits_and_pooled(x)

    return run


def _onnx_runner(session, input_name: str, logits_name: str, features_name: str | None,
                 fixed_batch: int | None = None) -> Runner:
    names = [logits_name] + ([features_name] if features_name else [])

    def run_once(x: np.ndarray) -> list[np.ndarray]:
        return session.run(names, {input_name: x})

    def run(x: torch.Tensor):
        x = np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
        if fixed_batch is None:
            outputs = run_once(x)
        else:
            # A graph with a fixed batch: feed full chunks, zero-padding the last one, and drop the padding rows.
            parts = []
            for start in range(0, x.shape[0], fixed_batch):
                chunk = x[start:start + fixed_batch]
                n = chunk.shape[0]
                if n < fixed_batch:
                    chunk = np.concatenate([chunk, np.zeros((fixed_batch - n, *chunk.shape[1:]), np.float32)])
                parts.append([o[:n] for o in run_once(chunk)])
            outputs = [np.concatenate(column) for column in zip(*parts)]
        logits = torch.from_numpy(outputs[0])
        features = torch.from_numpy(outputs[1]) if features_name else None
        return logits, features

    return run


def _session_device(session, device: str) -> str:
    """The device a session really runs on (``device="auto"`` may have fallen back to the CPU)."""
    return device if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"


def _resolve_preprocessing(preprocessing, default: Preprocessing) -> Preprocessing:
    if preprocessing is None:
        return default
    if isinstance(preprocessing, Preprocessing):
        return preprocessing
    if isinstance(preprocessing, str):
        if preprocessing not in NORMALIZATIONS:
            raise ValueError(f"preprocessing {preprocessing!r}: choose one of {', '.join(NORMALIZATIONS)} "
                             "or pass a Preprocessing(resize, crop, normalization)")
        return Preprocessing(default.resize, default.crop, preprocessing)
    raise ValueError(f"preprocessing must be None, a normalization name or a Preprocessing, got {preprocessing!r}")


def _parse_spec(spec: str) -> tuple[str, Path | None]:
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"classifier spec {spec!r}: expected {SPEC_FORMS}")
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in ("efficientnet-lite0", "vgg16", "onnx"):
        raise ValueError(f"classifier spec {spec!r}: unknown classifier {kind!r}; expected {SPEC_FORMS}")
    if kind in ("vgg16", "onnx") and not rest:
        raise ValueError(f"classifier spec {spec!r}: {kind} needs a weights file, e.g. '{kind}:PATH'")
    if sep and not rest:
        raise ValueError(f"classifier spec {spec!r}: empty path after ':'")
    path = Path(rest).expanduser() if rest else None
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"classifier spec {spec!r}: file not found: {path}")
    return kind, path


def load_classifier(spec: str = "efficientnet-lite0", backend: str = "onnxruntime", device: str = "cpu",
                    batch_size: int = DEFAULT_BATCH_SIZE, preprocessing: Preprocessing | str | None = None,
                    num_threads: int | None = None, cache_dir: str | Path | None = None) -> Classifier:
    """Load an ImageNet classifier (see the module docstring for ``spec``).

    Args:
        spec: ``efficientnet-lite0[:PATH.pth]``, ``vgg16:PATH.pth`` or ``onnx:PATH.onnx``.
        backend: ``onnxruntime`` or ``torch`` (``onnx:`` specs need ``onnxruntime``).
        device: ``cpu``, ``cuda[:N]`` or ``auto``; ONNX Runtime uses CUDA only when it is really usable.
        batch_size: images per forward pass.
        preprocessing: None (the model's own), a normalization name (``tf-lite``, ``imagenet``, ``unit``) keeping
            the default sizes, or a :class:`Preprocessing`.
        num_threads: ONNX Runtime intra-op threads (None: its default).
        cache_dir: folder for exported ONNX graphs (default: :func:`onnx_classifier.cache_dir`).
    Raises:
        ValueError / FileNotFoundError with a message naming the bad spec, backend, device or file.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    kind, path = _parse_spec(spec)
    auto = str(device) == "auto"
    device = resolve_device(device, backend)

    if kind == "onnx":
        if backend != "onnxruntime":
            raise ValueError(f"classifier spec {spec!r}: an ONNX classifier runs with backend='onnxruntime' only")
        session = onnx_rt.create_session(path, device, num_threads, cpu_fallback=auto)
        device = _session_device(session, device)
        info = onnx_rt.inspect_onnx_classifier(session, path)
        size = info.input_size or 224
        default = Preprocessing(int(size * 256 / 224), size, IMAGENET_PREPROCESSING.normalization)
        prep = _resolve_preprocessing(preprocessing, default)
        if info.input_size is not None and prep.crop != info.input_size:
            raise ValueError(f"{path}: the model takes {info.input_size}x{info.input_size} inputs, "
                             f"the preprocessing crops {prep.crop}")
        feature_dim = None
        if info.features_name:
            (features_output,) = [o for o in session.get_outputs() if o.name == info.features_name]
            feature_dim = features_output.shape[1] if isinstance(features_output.shape[1], int) else None
        runner = _onnx_runner(session, info.input_name, info.logits_name, info.features_name, info.fixed_batch)
        return Classifier(f"onnx:{path.name}", file_sha256(path), backend, device, prep, runner, batch_size,
                          feature_dim)

    if kind == "efficientnet-lite0":
        weights = path if path is not None else packaged_weights_path()
        model = build_efficientnet_lite0(pretrained=True, weights_path=weights)
        name = "efficientnet-lite0" if path is None else f"efficientnet-lite0:{path.name}"
        default, feature_dim = EFFICIENTNET_LITE0_PREPROCESSING, FEATURE_DIM
    else:  # vgg16
        weights = path
        model = load_vgg16(path)
        name = f"vgg16:{path.name}"
        default, feature_dim = IMAGENET_PREPROCESSING, model.classifier[3].out_features
    sha256 = file_sha256(weights)
    prep = _resolve_preprocessing(preprocessing, default)

    if backend == "torch":
        return Classifier(name, sha256, backend, device, prep, _torch_runner(model, device), batch_size, feature_dim)
    # The exported graph has a static spatial size (only the batch is dynamic): the crop is part of the name.
    stem = (kind if path is None else f"{kind}-{path.stem}") + f"-{prep.crop}"
    onnx_path = onnx_rt.cached_export(model, stem, sha256, prep.crop, directory=cache_dir)
    session = onnx_rt.create_session(onnx_path, device, num_threads, cpu_fallback=auto)
    device = _session_device(session, device)
    runner = _onnx_runner(session, "image", "logits", "features")
    return Classifier(name, sha256, backend, device, prep, runner, batch_size, feature_dim)
