"""Train a published baseline from photos when no weights are at hand ("trained here" in the registry).

Two engines:

- The saliency-guided variants of the SCGAN paper's Table III (``pix2pix-sal``, ``uresnet-sal``) train with SCGAN's
  own trainer and full recipe (:func:`train_with_scgan_trainer`): stage 1 L1 + attention loss against saliency ground
  truth, stage 2 adds WGAN-GP on both critics (``D_c``, ``D_a``) and the perceptual loss; the baseline network is
  injected into ``scgan.train.train`` (``scgan/`` does not import ``baselines/``), the preset gives the image size and
  the critics. The run folder's ``checkpoint.pt`` is an SCGAN trainer checkpoint (format ``scgan-bench/checkpoint/1``)
  whose ``generator_spec`` is ``{"kind": "baseline", "name": NAME, "options": {build options}}``; resume with the
  same command and ``--resume``.
- The others (and, from Python, the saliency variants on colour alone) use a plain supervised loop around
  ``baselines.losses`` (:func:`train_baseline`): the network sees the BT.601 gray of each photo and learns its colours
  with its paper's objective (Zhang et al.: class-rebalanced cross-entropy with the prior measured on the training
  photos first; Iizuka et al.: MSE + 1/300 classification when labels are given; pix2pix: 100 L1 + conditional GAN with
  the 70x70 PatchGAN). Its checkpoint (atomic ``torch.save``) holds the state dict under ``generator`` plus
  ``baseline``, ``build_options``, ``size``, ``step``, ``epoch``, the training settings and, for Zhang et al.,
  ``ab_prior``.

``scgan export --baseline NAME --weights CKPT`` and ``load_method("NAME:CKPT")`` read both kinds of checkpoint (build
options included, :func:`read_build_options`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

CHECKPOINT_FORMAT = "scgan-bench/baseline/1"
#: Format tag of the SCGAN trainer's checkpoints (``scgan.checkpoint.CHECKPOINT_FORMAT``; repeated here so reading
#: build options does not import the model code).
SCGAN_CHECKPOINT_FORMAT = "scgan-bench/checkpoint/1"
SPEC_KIND = "baseline"


@dataclass
class BaselineTrainConfig:
    """Settings of one training run. ``size``: training resolution (default: the architecture's input size; must
    suit the architecture, e.g. a multiple of 2**num_downs for pix2pix); ``options``: build options (smaller nets)."""

    name: str
    data: str
    out: str
    epochs: int = 1
    batch_size: int = 4
    lr: float = 2e-4
    size: int | None = None
    seed: int = 0
    labels: str | None = None
    max_steps: int | None = None
    options: dict = field(default_factory=dict)


def _load_photos(config: BaselineTrainConfig, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All training photos: (N, 3, size, size) float RGB [0, 1] (squash256, then resized) and labels (N,) (-1: none)."""
    from scgan.data import list_images, load_image, resize_image, scan_images, to_tensor

    entries = list_images(config.data, labels=config.labels)
    kept = scan_images(entries, exclude_gray=True).kept
    if not kept:
        raise ValueError(f"--data {config.data}: no colour images to train on (gray images are excluded)")
    images = torch.stack([to_tensor(resize_image(load_image(e.path), "squash256")) for e in kept])
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    labels = torch.tensor([int(e.label) for e in kept], dtype=torch.long)
    return images.clamp(0.0, 1.0), labels


def train_baseline(config: BaselineTrainConfig, progress: bool = True) -> dict:
    """Run the training; returns ``{"checkpoint": Path, "losses": [per-step loss], "steps": int}``."""
    from tqdm import tqdm

    from metrics.color import rgb_to_gray
    from scgan.atomic import atomic_path

    from . import losses
    from .archs.pix2pix import NLayerDiscriminator
    from .registry import get_architecture

    arch = get_architecture(config.name)
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be at least 1")
    if config.name == "iizuka" and config.batch_size < 2:
        raise ValueError("--batch-size: iizuka needs at least 2 (BatchNorm on its fully connected layers)")
    size = int(config.size or arch.input_size)
    torch.manual_seed(config.seed)
    images, labels = _load_photos(config, size)
    net = arch.build(**config.options).train()
    params = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=config.lr, betas=(0.5, 0.999))
    adversarial = config.name in ("pix2pix", "pix2pix-sal", "uresnet-sal")
    if adversarial:
        discriminator = NLayerDiscriminator(input_nc=4).train()
        optimiser_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999))
    extra = {}
    rebalance = None
    if config.name == "zhang-eccv16":
        prior = losses.ab_prior(images.split(16))
        rebalance = losses.rebalancing_weights(prior).float()
        extra["ab_prior"] = prior
    generator = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    step = 0
    total = config.epochs * ((len(images) + config.batch_size - 1) // config.batch_size)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    bar = tqdm(total=total, disable=not progress, desc=f"train {config.name}", unit="step")
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), config.batch_size):
            if config.max_steps is not None and step >= config.max_steps:
                break
            index = order[start : start + config.batch_size]
            if config.name == "iizuka" and len(index) < 2:
                continue  # a last batch of one cannot go through BatchNorm1d
            batch, batch_labels = images[index], labels[index]
            if not adversarial:
                loss, _ = losses.supervised_loss(config.name, net, batch, batch_labels, rebalance)
            else:
                gray = rgb_to_gray(batch) * 2.0 - 1.0
                output = net(gray)
                fake = output[0] if isinstance(output, tuple) else output
                real = batch * 2.0 - 1.0
                optimiser_d.zero_grad()
                d_loss = losses.pix2pix_discriminator_loss(
                    discriminator(torch.cat([gray, real], 1)), discriminator(torch.cat([gray, fake.detach()], 1))
                )
                d_loss.backward()
                optimiser_d.step()
                loss = losses.pix2pix_generator_loss(discriminator(torch.cat([gray, fake], 1)), fake, real)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            value = float(loss.detach())
            if not torch.isfinite(loss.detach()):
                raise RuntimeError(f"{config.name}: loss became {value} at step {step}")
            history.append(value)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
    bar.close()
    if step == 0:
        raise ValueError(f"--data {config.data}: not enough images for one batch")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "baseline": config.name,
        "build_options": dict(config.options),
        "size": size,
        "epoch": config.epochs,
        "step": step,
        "train_config": {k: v for k, v in dataclasses.asdict(config).items() if k != "options"},
        "generator": net.eval().state_dict(),
        **extra,
    }
    out = Path(config.out)
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return {"checkpoint": out, "losses": history, "steps": step}


def _as_build_options(options: dict) -> dict:
    """Lists come back from tuples after a round trip through a checkpoint or JSON; the builders take tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in dict(options).items()}


def _scgan_generator_spec(data: Any) -> dict | None:
    """The baseline ``generator_spec`` of an SCGAN trainer checkpoint (None for anything else)."""
    if isinstance(data, dict) and data.get("format") == SCGAN_CHECKPOINT_FORMAT:
        spec = data.get("generator_spec")
        if isinstance(spec, dict) and spec.get("kind") == SPEC_KIND:
            return spec
    return None


def _load_if_torch_file(path: str | os.PathLike) -> Any:
    """The content of a PyTorch file (tensors only), or None when it is not one: the weights loader
    (``read_weights_file``) then reports that file as one clear error instead of a pickle traceback here."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # pickle/zip errors have many types; read_weights_file names the file and the reason
        return None


def read_build_options(path: str | os.PathLike) -> dict:
    """The build options stored in a checkpoint trained here ({} for other files): ``build_options`` of a
    ``train_baseline`` checkpoint, or the ``generator_spec`` options of an SCGAN trainer run on a baseline."""
    data = _load_if_torch_file(path)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        return _as_build_options(data.get("build_options") or {})
    spec = _scgan_generator_spec(data)
    return _as_build_options(spec.get("options") or {}) if spec else {}


def trained_size(path: str | os.PathLike) -> int | None:
    """The training resolution recorded in a checkpoint trained here (None for other files): ``size`` of a
    ``train_baseline`` checkpoint, the preset's ``image_size`` of an SCGAN trainer run on a baseline."""
    data = _load_if_torch_file(path)
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT and data.get("size"):
        return int(data["size"])
    if _scgan_generator_spec(data) is not None:
        return int(data["config"]["image_size"])
    return None


# ------------------------------------------------------------------------------------ with SCGAN's trainer
def generator_spec(name: str, options: dict | None = None) -> dict:
    """What an SCGAN trainer checkpoint records for the baseline ``name`` built with ``options``."""
    return {"kind": SPEC_KIND, "name": name, "options": dict(options or {})}


def train_with_scgan_trainer(name: str, config, options: dict | None = None, resume: bool = False,
                             progress: bool = True):
    """Train the saliency variant ``name`` (``pix2pix-sal``, ``uresnet-sal``) with SCGAN's trainer and full recipe.

    ``config``: a ``scgan.train.TrainConfig`` (data, saliency maps, preset, schedule, ablations; ``global_init`` must be
    ``""`` or ``"none"``: these networks have no global feature network); ``options``: the architecture's build options
    (e.g. ``{"num_downs": 5, "ngf": 8}``), recorded in the checkpoint. The network is built with ``torch.manual_seed
    (config.seed)`` and must produce the preset's image size. With ``resume`` the run in ``config.out`` continues: the
    network is rebuilt from the options its checkpoint records (``options``, when given, must equal them).
    Returns ``scgan.train.TrainResult``; the checkpoint is ``config.out/checkpoint.pt``.
    """
    from scgan.errors import InputError
    from scgan.train import CHECKPOINT_NAME, normalise_generator_spec, train

    from .registry import get_architecture

    arch = get_architecture(name)
    if not arch.has_saliency:
        raise InputError(
            f"{name} has no saliency head: SCGAN's trainer (attention loss, D_a) applies to the saliency variants "
            "pix2pix-sal and uresnet-sal; train it with `scgan train-baseline` on colour alone"
        )
    if resume:
        path = Path(config.out) / CHECKPOINT_NAME
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint in {config.out} (expected {path})")
        spec = _scgan_generator_spec(torch.load(str(path), map_location="cpu", weights_only=True))
        if spec is None or spec.get("name") != name:
            trained = f"baseline {spec['name']}" if spec else "no baseline (an SCGAN run or another file)"
            raise InputError(f"--resume: {path} trained {trained}, not {name}")
        stored = spec.get("options") or {}
        if options and normalise_generator_spec(generator_spec(name, options)) != normalise_generator_spec(spec):
            raise InputError(f"--resume: --option {options} differ from the run's build options {stored}")
        options = stored
    options = _as_build_options(options or {})
    torch.manual_seed(config.seed)  # the same initial weights on every rank and in every repetition
    try:
        net = arch.build(**options)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: bad --option build options {options}: {exc}") from exc
    return train(config, resume=resume, progress=progress, generator=net, generator_spec=generator_spec(name, options))
