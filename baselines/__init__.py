"""Baselines behind one ONNX colorizer contract (docs/baselines.md): anchors, published architectures with loaders for
their released weights, export, and the ONNX Runtime runner.

Public API (imported lazily so that ``scgan --help`` stays fast): ``load_method(spec, device)``, ``list_methods()``,
``export_baseline(name, weights, out_path)``, ``OnnxColorizer``, ``validate_colorizer(path)``.
"""

from __future__ import annotations

from scgan.lazy import lazy_exports

_EXPORTS = {
    "load_method": "baselines.methods",
    "list_methods": "baselines.registry",
    "get_architecture": "baselines.registry",
    "MethodRow": "baselines.registry",
    "export_baseline": "baselines.export",
    "OnnxColorizer": "baselines.runner",
    "validate_colorizer": "baselines.contract",
    "ContractError": "baselines.contract",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
