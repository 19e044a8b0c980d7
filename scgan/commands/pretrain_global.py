"""`scgan pretrain-global`: pretrain SCGAN's VGG-16-Gray global feature network (see `scgan.pretrain`)."""

from __future__ import annotations

NAME = "pretrain-global"
HELP = "pretrain the global feature network: classification with --labels, else distillation from EfficientNet-Lite0"
DESCRIPTION = (
    "Train the preset's VGG-16-Gray global feature network on gray photos: cross-entropy against --labels (the paper) "
    "or, without labels, KL distillation from the EfficientNet-Lite0 teacher that sees the colour photo. Reports top-1 "
    "(or agreement with the teacher) on a seeded held-out split and writes a file `scgan train --global-init` loads."
)


def add_arguments(parser) -> None:
    from scgan.training.config import PretrainConfig

    d = PretrainConfig()
    parser.add_argument("--data", required=True, help="image folder, list file, or 'samples'")
    parser.add_argument("--labels", default=None, help="labels CSV (file,label; 0..999); absent: distillation")
    parser.add_argument("--out", required=True, help="output file (.pt)")
    parser.add_argument("--preset", default=d.preset, help=f"model preset (default {d.preset})")
    parser.add_argument("--policy", default=d.policy, help=f"resize policy (default {d.policy})")
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    parser.add_argument("--temperature", type=float, default=d.temperature,
                        help=f"distillation temperature (default {d.temperature})")
    parser.add_argument("--val-fraction", type=float, default=d.val_fraction,
                        help=f"held-out share, seeded (default {d.val_fraction})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"seed of split, order, weights (default {d.seed})")
    parser.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images")
    parser.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from pathlib import Path

    from scgan import paths
    from scgan.errors import InputError
    from scgan.pretrain import pretrain_global
    from scgan.training.config import PretrainConfig

    if Path(args.out).is_dir():  # else an IsADirectoryError traceback when the finished file is renamed into place
        raise InputError(f"--out {args.out}: is a folder; give the path of the file to write")
    paths.check_suffix("--out", args.out, (".pt", ".pth", ".ckpt"), "the global-feature weights (torch.save)")
    paths.check_outputs_apart({"--out": args.out}, {"--data": args.data, "--labels": args.labels})
    paths.prepare_output_file("--out", args.out)

    config = PretrainConfig(
        data=args.data, out=args.out, labels=args.labels, preset=args.preset, policy=args.policy, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, temperature=args.temperature, val_fraction=args.val_fraction,
        seed=args.seed, device=args.device, skip_bad=args.skip_bad, workers=args.workers,
    )  # fmt: skip
    result = pretrain_global(config, progress=not args.quiet)
    for row in result.history:
        print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, held-out {result.metric} {row['val']:.4f}")
    print(
        f"pretrain-global ({result.source}): held-out {result.metric} = {result.value:.4f} "
        f"on {result.val_images} image(s) ({result.train_images} trained on) -> {result.path}"
    )
    return 0
