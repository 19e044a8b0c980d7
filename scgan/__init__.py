"""scgan-bench: SCGAN (Zhao et al., IEEE TCSVT 2020) model, trainer and colorize pipeline.

The model API is available at the top level: ``scgan.PRESETS``, ``scgan.ModelConfig``, ``scgan.build_generator``,
``scgan.build_discriminator``. They are imported on first access (PEP 562), so that ``import scgan`` (and therefore
``scgan --help``) does not import torch.
"""

from scgan.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "PRESETS": "scgan.config",
    "ModelConfig": "scgan.config",
    "build_generator": "scgan.model",
    "build_discriminator": "scgan.model",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
