"""`scgan ship-weights`: turn a training checkpoint into a shipped weights file and its registry entry."""

from __future__ import annotations

import argparse

NAME = "ship-weights"
HELP = "make a training checkpoint a shipped model loaded by name (scgan:mini, pix2pix:mini, ...)"
DESCRIPTION = (
    "Write CHECKPOINT's generator (a `scgan train` or `scgan train-baseline` run) as the shipped model --name: fp16 "
    "tensors (SCGAN without the frozen EfficientNet-Lite0 backbone, which comes from the installed package) in "
    "--weights-dir, and its registry entry there (registry.json): sha256, data, recipe, commit, budget, images seen, "
    "input size, build options and the probe output that every load checks. Limits: 12 MiB per file, 25 MiB in all."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="RUN_DIR/checkpoint.pt of a finished training run")
    parser.add_argument("--name", required=True, help="the name it loads by: METHOD:TAG, e.g. scgan:mini")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="where to write (default: $SCGAN_WEIGHTS_DIR, else the package's scgan/weights)")
    parser.add_argument("--recipe", default="", help="how the run was made (e.g. 'bench/recipes/recipe.sh scgan')")
    parser.add_argument("--budget", default="", help="the training budget of its comparison (e.g. '25480 images')")
    parser.add_argument("--replace", action="store_true", help="overwrite a model already shipped under --name")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from baselines.shipped import ship_checkpoint
    from scgan import shipped

    folder = Path(args.weights_dir) if args.weights_dir else shipped.weights_dir()
    entry = ship_checkpoint(args.checkpoint, args.name, folder, recipe=args.recipe, budget=args.budget,
                            replace=args.replace)
    if not args.quiet:
        print(f"shipped {args.name}: {folder / entry['file']} (sha256 {entry['sha256'][:16]}..., "
              f"{entry['images_seen']} images seen, input {entry['input_size']})")
    return 0
