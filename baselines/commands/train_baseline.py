"""`scgan train-baseline`: train a published baseline with the shared trainer (the one `scgan train` uses).

Every baseline trains through ``scgan.training`` with the same flags as `scgan train` (generated from TrainConfig),
starting from its own recipe (``baselines.recipes.RECIPES``, listed by ``--help``); ``--out`` is a run folder.
"""

from __future__ import annotations

import argparse

from baselines.commands._options import add_option_argument, check_build_options

NAME = "train-baseline"
HELP = "train a published baseline (pix2pix, zhang-eccv16, iizuka, pix2pix-sal, ...) with the shared trainer"
DESCRIPTION = (
    "Train a published baseline on photos with the shared trainer (streamed data, --device, torchrun, checkpoints "
    "with --resume, lr schedule, --amp, --channels-last, losses.csv, sample grids). Each starts from its recipe "
    "(below); the flags override it. pix2pix-sal and uresnet-sal train with SCGAN's two-stage recipe and --saliency "
    "maps; the others have one stage, set by the stage-2 flags (--stage2-epochs, --lr-g, --lr-decay-*). --preset "
    "gives the image size. Writes RUN_DIR/checkpoint.pt (for `scgan export --baseline NAME --weights` and "
    "load_method('NAME:RUN_DIR/checkpoint.pt')), losses.csv, train_config.json and samples/."
)
#: Flags of TrainConfig fields some recipe changes: their help says the default is the method's.
PER_METHOD_NOTE = "the method's recipe, below"


def _epilog() -> str:
    from baselines.recipes import RECIPES

    lines = ["recipes (TrainConfig values each baseline starts from; the paper's unless listed as deviations):"]
    for name, recipe in RECIPES.items():
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in recipe.settings.items())
        lines += [f"  {name}: {settings}", f"    paper: {recipe.paper}", f"    deviations: {recipe.deviations}"]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from baselines.recipes import RECIPES
    from scgan.commands.train import add_run_arguments
    from scgan.training.config import TrainConfig
    from scgan.training.flags import add_config_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _epilog()
    parser.add_argument("name", help="baseline name (see `scgan baselines`)")
    add_option_argument(
        parser, "build option of the architecture (e.g. num_downs=5, ngf=16, widths=(16,32,64,64)); repeatable"
    )
    per_method = frozenset(key for recipe in RECIPES.values() for key in recipe.settings)
    add_config_arguments(parser, TrainConfig(), per_method=per_method, per_method_note=PER_METHOD_NOTE)
    add_run_arguments(parser)


def config_from_args(args: argparse.Namespace):
    """The TrainConfig of a fresh run: the baseline's recipe with the given flags applied; InputError for a flag
    the method does not read (naming it) and for missing inputs."""
    from baselines.recipes import RECIPES, recipe_config
    from scgan.errors import InputError
    from scgan.training.flags import config_from_args as from_flags
    from scgan.training.flags import given_fields

    recipe = RECIPES[args.name]
    if recipe.applies is not None:
        foreign = [flag for flag, field in given_fields(args) if field not in recipe.applies]
        if foreign:
            raise InputError(f"{', '.join(foreign)}: not an option of {args.name} (its loss and schedule do not "
                             "read it; see `scgan train-baseline --help`)")
    config = from_flags(args, recipe_config(args.name))
    if not config.global_features:
        raise InputError(f"--no-global: {args.name} has no global feature network (nothing to ablate)")
    if not config.data:
        raise InputError("--data is required (unless --resume)")
    if recipe.applies is None and config.attention and not config.saliency:
        raise InputError("--saliency is required (unless --resume or --no-attention, which uses no maps)")
    return config


def run(args: argparse.Namespace) -> int:
    from baselines.registry import get_architecture
    from baselines.train import train_baseline
    from scgan.commands.train import note_ignored, report, resume_config

    arch = get_architecture(args.name)
    options = dict(args.option)
    check_build_options(arch, options)  # before any photo is read
    if args.resume:
        note_ignored("scgan train-baseline", args)
        config = resume_config(args)
    else:
        config = config_from_args(args)
    result = train_baseline(args.name, config, options=options, resume=args.resume, progress=not args.quiet)
    report(f"train-baseline {args.name}", result)
    return 0
