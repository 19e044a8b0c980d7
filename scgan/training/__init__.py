"""The trainer of every trainable method: SCGAN's two-stage recipe and, injected by ``baselines``, the published
baselines (docs/training.md section 4).

Modules: ``config`` (:class:`TrainConfig`, torch-free), ``flags`` (the command-line options generated from it,
torch-free), ``trainer`` (:class:`Trainer`, :func:`train`), ``method`` (the :class:`TrainingMethod` interface),
``scgan_method`` (SCGAN's recipe), ``data`` (the streamed training set), ``rng`` (seeded draws, RNG state),
``distributed`` (torchrun process groups).

Public API, imported lazily so that building the command-line parsers does not import torch: ``TrainConfig``,
``Trainer``, ``train``, ``TrainResult``, ``TrainingDiverged``, ``TrainingMethod``, ``OptimiserSpec``,
``ScganMethod``, ``step_random``, ``critic_random``, ``epoch_batches``, ``normalise_generator_spec``,
``CHECKPOINT_NAME``.
"""

from __future__ import annotations

from scgan.lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "scgan.training.config",
    "PretrainConfig": "scgan.training.config",
    "Trainer": "scgan.training.trainer",
    "train": "scgan.training.trainer",
    "TrainResult": "scgan.training.trainer",
    "TrainingDiverged": "scgan.training.trainer",
    "CHECKPOINT_NAME": "scgan.training.trainer",
    "TrainingMethod": "scgan.training.method",
    "OptimiserSpec": "scgan.training.method",
    "normalise_generator_spec": "scgan.training.method",
    "ScganMethod": "scgan.training.scgan_method",
    "step_random": "scgan.training.rng",
    "critic_random": "scgan.training.rng",
    "epoch_batches": "scgan.training.data",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
