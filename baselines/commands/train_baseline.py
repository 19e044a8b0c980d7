"""`scgan train-baseline`: train a published baseline on photos (for methods without released PyTorch weights).

The saliency variants (``pix2pix-sal``, ``uresnet-sal``) train with SCGAN's trainer and its full recipe (attention
loss against ``--saliency`` maps, both critics, WGAN-GP, perceptual), taking the trainer's flags (``scgan train
--help``; ``--preset`` sets the image size and the critics); ``--out`` is then a run folder. The other architectures
train with their paper's objective (``baselines.train.train_baseline``); ``--out`` is then a checkpoint file.
"""

from __future__ import annotations

import argparse

from baselines.commands._options import add_option_argument, check_build_options

NAME = "train-baseline"
HELP = "train a published baseline (pix2pix, iizuka, pix2pix-sal with SCGAN's trainer, ...) on photos"
DESCRIPTION = (
    "Train a published baseline on photos. pix2pix-sal and uresnet-sal: SCGAN's trainer and recipe (stage 1 L1 + "
    "attention, stage 2 + WGAN-GP on both critics + perceptual) with --saliency maps; --out RUN_DIR; the SCGAN trainer "
    "flags below apply (--preset gives the image size). Other names: their paper's loss; --out CKPT; --epochs, --lr, "
    "--size, --max-steps, --labels apply."
)

#: The flags this command defines itself (shared by both engines).
OWN_FLAGS = frozenset({"--data", "--out", "--batch-size", "--seed", "--quiet"})
#: Flags of the colour-only engine (defaults None so that giving one to the SCGAN engine is noticed).
COLOUR_ONLY = {"labels": "--labels", "epochs": "--epochs", "lr": "--lr", "size": "--size", "max_steps": "--max-steps"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from scgan.commands.train import add_trainer_arguments

    parser.add_argument("name", help="baseline name (see `scgan baselines`)")
    parser.add_argument("--data", required=False, help="folder, list file or 'samples': the training photos")
    parser.add_argument(
        "--out", required=True, metavar="CKPT|RUN_DIR",
        help="checkpoint file to write (atomically); for pix2pix-sal/uresnet-sal the run folder",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default 4; SCGAN trainer: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data order and noise (default 0)")
    add_option_argument(
        parser, "build option of the architecture (e.g. num_downs=5, ngf=16, widths=(16,32,64,64)); repeatable"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    colour = parser.add_argument_group("colour-only engine (architectures without a saliency head)")
    colour.add_argument("--labels", help="labels.csv (file,label) for iizuka's classification branch")
    colour.add_argument("--epochs", type=int, default=None, help="epochs (default 1)")
    colour.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 2e-4)")
    colour.add_argument("--size", type=int, default=None, help="training resolution (default: the paper's)")
    colour.add_argument("--max-steps", type=int, default=None)
    # Then the options of `scgan train` (groups data, model, schedule, ablations, execution) for the saliency
    # variants. The global-feature ones stay so that asking for them gets a clear answer: these networks have no
    # global feature network (--global-init none and --random-global are accepted and change nothing).
    trainer_defaults = add_trainer_arguments(parser, skip=OWN_FLAGS)
    parser.set_defaults(_trainer_defaults=trainer_defaults)


def run(args: argparse.Namespace) -> int:
    from baselines.registry import get_architecture

    arch = get_architecture(args.name)
    if arch.has_saliency:
        return _run_scgan_trainer(args)  # checks --option itself ("bad --option build options")
    check_build_options(arch, dict(args.option))  # before the photos are loaded
    return _run_colour_only(args)


def _given(args: argparse.Namespace, defaults: dict) -> list[str]:
    """``--flag`` names of the options in ``defaults`` whose value differs from their default."""
    return ["--" + dest.replace("_", "-") for dest, default in defaults.items() if getattr(args, dest) != default]


def _run_colour_only(args: argparse.Namespace) -> int:
    from pathlib import Path

    from baselines.train import BaselineTrainConfig, train_baseline
    from scgan.errors import InputError

    trainer_only = _given(args, args._trainer_defaults)
    if trainer_only:
        raise ValueError(
            f"{', '.join(trainer_only)}: SCGAN trainer options apply to the saliency variants (pix2pix-sal, "
            f"uresnet-sal); {args.name} trains with its paper's loss (--epochs, --lr, --size, --max-steps)"
        )
    if not args.data:
        raise ValueError("--data is required")
    if Path(args.out).is_dir():  # else an IsADirectoryError traceback when the finished file is renamed into place
        raise InputError(f"--out {args.out}: is a folder; give the path of the file to write")
    # 0 would silently mean "the paper's size" (--size) or fail later as "not enough images" (--max-steps)
    for flag, value in (("--size", args.size), ("--max-steps", args.max_steps)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    config = BaselineTrainConfig(
        name=args.name,
        data=args.data,
        out=args.out,
        epochs=1 if args.epochs is None else args.epochs,
        batch_size=4 if args.batch_size is None else args.batch_size,
        lr=2e-4 if args.lr is None else args.lr,
        size=args.size,
        seed=args.seed,
        labels=args.labels,
        max_steps=args.max_steps,
        options=dict(args.option),
    )
    result = train_baseline(config, progress=not args.quiet)
    if not args.quiet:
        first, last = result["losses"][0], result["losses"][-1]
        print(
            f"trained {args.name} for {result['steps']} steps (loss {first:.4f} -> {last:.4f}); "
            f"checkpoint {result['checkpoint']}"
        )
    return 0


def _run_scgan_trainer(args: argparse.Namespace) -> int:
    import os

    from baselines.train import train_with_scgan_trainer
    from scgan.commands.train import config_from_args
    from scgan.training.config import TrainConfig

    colour_only = [flag for dest, flag in COLOUR_ONLY.items() if getattr(args, dest) is not None]
    if colour_only:
        raise ValueError(
            f"{', '.join(colour_only)}: {args.name} trains with SCGAN's trainer, whose options are "
            "--stage1-epochs/--stage2-epochs, --lr-stage1/--lr-g/--lr-d, --stop-after-steps, and --preset for the "
            "image size (see `scgan train-baseline --help`)"
        )
    if args.no_global:
        raise ValueError(f"--no-global: {args.name} has no global feature network (nothing to ablate)")
    if args.batch_size is None:
        args.batch_size = TrainConfig().batch_size
    if args.resume:
        # The stored recipe wins (as `scgan train --resume`); only where to write and when to stop apply.
        config = TrainConfig(out=args.out, stop_after_steps=args.stop_after_steps, device=args.device,
                             workers=args.workers, data="-", saliency="-")  # fmt: skip
    else:
        config = config_from_args(args)
    result = train_with_scgan_trainer(
        args.name, config, options=dict(args.option), resume=args.resume, progress=not args.quiet
    )
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if result.finished else "stopped (resume with --resume)"
        losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_losses.items())
        print(
            f"train-baseline {args.name} (SCGAN trainer): {state} after {result.epoch} epoch(s), {result.step} "
            f"step(s); checkpoint {result.checkpoint}"
        )
        if losses:
            print(f"  last losses: {losses}")
    return 0
