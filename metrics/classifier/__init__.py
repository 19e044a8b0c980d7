"""ImageNet classifiers for the ``top1``, ``top5``, ``top1_agree`` and ``fid_effl0`` metrics, and the pretrained
network the trainer uses for its perceptual loss and distillation teacher.

- :func:`load_classifier` -> :class:`Classifier` (``logits``, ``features``, ``predict``; ``name``, ``sha256``,
  ``backend``): EfficientNet-Lite0 with its packaged ImageNet weights (default), a torchvision-layout VGG-16 ``.pth``,
  or any ONNX classifier with 1000 logits; run with ONNX Runtime or torch.
- :func:`build_efficientnet_lite0` -> the torch module (``forward``, ``forward_pooled``, ``forward_features``).
- :func:`efficientnet_lite0_preprocess`: RGB [0, 1] of any size -> the network's 224x224 input.

Images everywhere: float (N, 3, H, W), RGB sRGB, values in [0, 1].
"""

from .classifier import BACKENDS, Classifier, load_classifier
from .efficientnet_lite0 import (
    EXPECTED_PARAMETER_COUNT,
    FEATURE_DIM,
    FEATURE_STAGES,
    EfficientNetLite0,
    build_efficientnet_lite0,
    file_sha256,
    packaged_weights_path,
    parameter_count,
)
from .onnx_classifier import cache_dir
from .preprocess import (
    EFFICIENTNET_LITE0_PREPROCESSING,
    IMAGENET_PREPROCESSING,
    Preprocessing,
    efficientnet_lite0_normalize,
    efficientnet_lite0_preprocess,
)
from .vgg16 import VGG16, load_vgg16

__all__ = [
    "BACKENDS",
    "Classifier",
    "EFFICIENTNET_LITE0_PREPROCESSING",
    "EXPECTED_PARAMETER_COUNT",
    "EfficientNetLite0",
    "FEATURE_DIM",
    "FEATURE_STAGES",
    "IMAGENET_PREPROCESSING",
    "Preprocessing",
    "VGG16",
    "build_efficientnet_lite0",
    "cache_dir",
    "efficientnet_lite0_normalize",
    "efficientnet_lite0_preprocess",
    "file_sha256",
    "load_classifier",
    "load_vgg16",
    "packaged_weights_path",
    "parameter_count",
]
