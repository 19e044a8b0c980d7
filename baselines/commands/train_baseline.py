"""`scgan train-baseline`: train a published baseline on photos (for methods without released PyTorch weights)."""

from __future__ import annotations

import argparse

from baselines.commands._options import add_option_argument

NAME = "train-baseline"
HELP = "train a published baseline (pix2pix, iizuka, zhang-eccv16, ...) on photos; writes a checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="baseline name (see `scgan baselines`)")
    parser.add_argument("--data", required=True, help="folder, list file or 'samples': the training photos")
    parser.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (atomically)")
    parser.add_argument("--labels", help="labels.csv (file,label) for iizuka's classification branch")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--size", type=int, default=None, help="training resolution (default: the paper's)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    add_option_argument(
        parser, "build option of the architecture (e.g. num_downs=5, ngf=16, widths=(16,32,64,64)); repeatable"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from baselines.registry import get_architecture
    from baselines.train import BaselineTrainConfig, train_baseline

    get_architecture(args.name)
    config = BaselineTrainConfig(
        name=args.name,
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
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
