"""`scgan train`: the two-stage SCGAN trainer (see `scgan.training.trainer` for the recipe and the runbook).

The flags are generated from TrainConfig's field metadata (`scgan.training.flags`), shared with `scgan
train-baseline`; this module adds only what is SCGAN's: `--resume`, `--quiet` and the global-feature rules.
"""

from __future__ import annotations

NAME = "train"
HELP = "train SCGAN (stage 1: L1 + attention; stage 2: + WGAN-GP on two critics + perceptual); torchrun for multi-GPU"
DESCRIPTION = (
    "Train SCGAN on a folder of colour photos paired with saliency maps (scgan saliency). Defaults are the paper's "
    "recipe (a flag whose default is not says so); each Table II ablation is one flag. Under torchrun, --batch-size "
    "is the global batch. Writes RUN_DIR/checkpoint.pt, losses.csv, train_config.json and samples/."
)

# The options --resume takes from the command line (see resume_config); every other trainer option comes from the
# checkpoint, so a changed value would be silently dropped without the note printed by run().
RESUME_FLAGS = ("--out", "--stop-after-steps", "--device", "--workers")


def add_arguments(parser) -> None:
    from scgan.training.config import TrainConfig
    from scgan.training.flags import add_config_arguments

    add_config_arguments(parser, TrainConfig())
    add_run_arguments(parser)


def add_run_arguments(parser) -> None:
    """--resume and --quiet (shared with `scgan train-baseline`)."""
    run = parser.add_argument_group("run control")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args):
    """The :class:`scgan.training.TrainConfig` an argparse namespace of `scgan train` asks for."""
    from scgan.errors import InputError
    from scgan.training.config import TrainConfig
    from scgan.training.flags import config_from_args as from_flags

    config = from_flags(args, TrainConfig())
    if not config.global_features and config.global_init not in ("", "none"):
        raise InputError("--no-global contradicts --global-init CKPT")
    if not config.global_features and not config.global_init:
        config.global_init = "none"
    if not getattr(args, "resume", False):
        if not config.data:
            raise InputError("--data is required (unless --resume)")
        if not config.saliency and config.attention:
            raise InputError("--saliency is required (unless --resume or --no-attention, which uses no maps)")
    return config


def ignored_on_resume(args) -> list[str]:
    """``--flag`` names given on the command line that --resume does not use (the stored recipe wins)."""
    from scgan.training.flags import given_flags

    return [flag for flag in given_flags(args) if flag not in RESUME_FLAGS]


def resume_config(args):
    """On --resume the stored TrainConfig is used; only where to write and when to stop come from the command line."""
    from scgan.training.config import TrainConfig

    base = TrainConfig()
    return TrainConfig(out=args.out, stop_after_steps=getattr(args, "stop_after_steps", base.stop_after_steps),
                       device=getattr(args, "device", base.device), workers=getattr(args, "workers", base.workers),
                       data="-", saliency="-")  # fmt: skip


def note_ignored(command: str, args) -> None:
    """On --resume (rank 0): say which given flags the stored recipe overrides."""
    import os
    import sys

    ignored = ignored_on_resume(args)
    if ignored and int(os.environ.get("RANK", "0")) == 0:
        print(f"{command}: note: --resume continues with the run's stored settings; ignored: {', '.join(ignored)}",
              file=sys.stderr)


def report(what: str, result) -> None:
    """Rank 0 prints how far the run got and its last losses."""
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    state = "finished" if result.finished else "stopped (resume with --resume)"
    print(f"{what}: {state} after {result.epoch} epoch(s), {result.step} step(s); checkpoint {result.checkpoint}")
    losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_losses.items())
    if losses:
        print(f"  last losses: {losses}")


def run(args) -> int:
    from scgan.training.trainer import train

    if args.resume:
        note_ignored("scgan train", args)
        config = resume_config(args)
    else:
        config = config_from_args(args)
    report("train", train(config, resume=args.resume, progress=not args.quiet))
    return 0
