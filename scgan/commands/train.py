"""`scgan train`: the two-stage SCGAN trainer (see `scgan.train` for the recipe and the runbook)."""

from __future__ import annotations

NAME = "train"
HELP = "train SCGAN (stage 1: L1 + attention; stage 2: + WGAN-GP on two critics + perceptual); torchrun for multi-GPU"
DESCRIPTION = (
    "Train SCGAN on a folder of colour photos paired with saliency maps (scgan saliency). Defaults are the paper's "
    "recipe; each Table II ablation is one flag. Under torchrun, --batch-size is the global batch. "
    "Writes RUN_DIR/checkpoint.pt, losses.csv, train_config.json and samples/."
)


def add_arguments(parser) -> None:
    add_trainer_arguments(parser)
    _show_defaults(parser)


def add_trainer_arguments(parser, skip: frozenset[str] = frozenset()) -> dict[str, object]:
    """Add the trainer's options to ``parser``, except the flags in ``skip`` (``scgan train-baseline`` shares them and
    defines a few itself); returns ``{dest: default}`` of the options added."""
    from scgan.training.config import TrainConfig

    d = TrainConfig()
    added: dict[str, object] = {}

    def add(group, flag: str, **kwargs) -> None:
        if flag not in skip:
            action = group.add_argument(flag, **kwargs)
            added[action.dest] = action.default

    data = parser.add_argument_group("data")
    add(data, "--data", help="image folder, list file, or 'samples' (required unless --resume)")
    add(data, "--saliency", help="folder of saliency PNGs from `scgan saliency` (not needed with --resume or "
                      "--no-attention)")
    add(data, "--out", required=True, help="run folder (checkpoint, losses.csv, samples)")
    add(data, "--policy", default=d.policy, help=f"resize policy of the training crop (default {d.policy})")
    add(data, "--skip-bad", action="store_true", help="skip unreadable images (listed) instead of stopping")

    model = parser.add_argument_group("model")
    add(model, "--preset", default=d.preset, help=f"model preset (default {d.preset}, the paper)")
    add(model,
        "--global-init", default=None,
        help="global features: CKPT from `scgan pretrain-global` (the paper) or 'none' (random init); "
             "required unless --resume, --no-global or --random-global",
    )  # fmt: skip

    sched = parser.add_argument_group("schedule (paper defaults)")
    add(sched, "--stage1-epochs", type=int, default=d.stage1_epochs, help="stage 1 (L1 + attention) epochs")
    add(sched, "--stage2-epochs", type=int, default=d.stage2_epochs, help="stage 2 (+ GAN, perceptual) epochs")
    add(sched, "--batch-size", type=int, default=d.batch_size, help="global batch (split over processes)")
    add(sched, "--lr-stage1", type=float, default=d.lr_stage1, help="stage-1 generator learning rate")
    add(sched, "--lr-g", type=float, default=d.lr_g, help="stage-2 generator learning rate")
    add(sched, "--lr-d", type=float, default=d.lr_d, help="stage-2 critics' learning rate")
    add(sched, "--beta1", type=float, default=d.betas[0], help="Adam beta1")
    add(sched, "--beta2", type=float, default=d.betas[1], help="Adam beta2")
    add(sched, "--lr-decay-every", type=int, default=d.lr_decay_every, help="stage-2 epochs per lr decay")
    add(sched, "--lr-decay-factor", type=float, default=d.lr_decay_factor,
                       help="stage-2 lr multiplier at each decay (0.5: halved)")
    add(sched, "--d-steps", type=int, default=d.d_steps, help="critic steps per generator step")
    add(sched, "--w-reconstruction", type=float, default=d.w_reconstruction, help="weight of the L1/L2 term")
    add(sched, "--w-attention", type=float, default=d.w_attention, help="weight of the attention loss")
    add(sched, "--w-gan", type=float, default=d.w_gan, help="weight of the adversarial loss (stage 2)")
    add(sched, "--w-perceptual", type=float, default=d.w_perceptual, help="perceptual loss weight (stage 2)")
    add(sched, "--gp-weight", type=float, default=d.gp_weight, help="WGAN-GP penalty weight")
    add(sched, "--input-noise", type=float, default=d.input_noise, help="gray input noise std ([-1,1] scale)")

    abl = parser.add_argument_group("ablations (paper Table II)")
    add(abl, "--no-attention", action="store_true", help="no attention loss, no saliency branch, no D_a")
    add(abl, "--no-gan", action="store_true", help="no adversarial loss (no critics)")
    add(abl, "--no-perceptual", action="store_true", help="no perceptual loss")
    add(abl, "--lsgan", action="store_true", help="LSGAN instead of WGAN-GP")
    add(abl, "--l2", action="store_true", help="L2 instead of L1 reconstruction loss")
    add(abl, "--no-global", action="store_true", help="no global feature network")
    add(abl, "--random-global", action="store_true", help="randomly initialised global features")
    add(abl,
        "--perceptual", default=d.perceptual,
        help="perceptual network: efficientnet-lite0 (default, packaged ImageNet weights) or vgg16:PATH.pth",
    )  # fmt: skip

    run = parser.add_argument_group("execution")
    add(run, "--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add(run, "--seed", type=int, default=d.seed, help="seed of weights, data order, noise")
    add(run, "--kernels", choices=["auto", "triton", "reference"], default=d.kernels,
        help="fused attention-loss/GP kernels: Triton, the PyTorch reference, or auto (Triton where it can run)")
    add(run, "--device", default=d.device, help="auto (default), cpu, cuda, cuda:N")
    add(run, "--amp", choices=["none", "bf16"], default=d.amp, help="autocast dtype (GPU)")
    add(run, "--channels-last", action="store_true", help="channels_last memory format (GPU)")
    add(run, "--batchnorm", choices=["train", "eval"], default=d.batchnorm,
                     help="train (paper) or eval (running statistics: batch-size independent)")
    add(run, "--workers", type=int, default=d.workers, help="DataLoader worker processes")
    add(run, "--checkpoint-every", type=int, default=d.checkpoint_every, help="also checkpoint every N steps")
    add(run, "--stop-after-steps", type=int, default=0, help="stop (resumably) after N global steps")
    add(run, "--sample-count", type=int, default=d.sample_count, help="images on the per-epoch sample grid")
    add(run, "--quiet", action="store_true", help="no progress bar")
    return added


def _show_defaults(parser) -> None:
    """Append the default value to each option's help (the CLI's shared parser uses the plain help formatter)."""
    import argparse

    for action in parser._actions:
        if action.default in (None, False, "", argparse.SUPPRESS) or action.help is None or "default" in action.help:
            continue
        action.help = f"{action.help} (default: %(default)s)" if action.help else "(default: %(default)s)"


def config_from_args(args):
    """The :class:`scgan.train.TrainConfig` an argparse namespace asks for."""
    from scgan.errors import InputError
    from scgan.training.config import TrainConfig

    if args.lsgan and args.no_gan:
        raise InputError("--lsgan and --no-gan contradict each other")
    if (args.random_global or args.no_global) and args.global_init not in (None, "none"):
        raise InputError(f"--{'random' if args.random_global else 'no'}-global contradicts --global-init CKPT")
    if not args.resume:
        if not args.data:
            raise InputError("--data is required (unless --resume)")
        if not args.saliency and not args.no_attention:
            raise InputError("--saliency is required (unless --resume or --no-attention, which uses no maps)")
    global_init = args.global_init or ""
    if args.random_global:
        global_init = "none"
    if args.no_global:
        global_init = global_init or "none"
    return TrainConfig(
        data=args.data or "",
        saliency=args.saliency or "",
        out=args.out,
        policy=args.policy,
        skip_bad=args.skip_bad,
        preset=args.preset,
        global_init=global_init,
        stage1_epochs=args.stage1_epochs,
        stage2_epochs=args.stage2_epochs,
        batch_size=args.batch_size,
        lr_stage1=args.lr_stage1,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        betas=(args.beta1, args.beta2),
        lr_decay_every=args.lr_decay_every,
        lr_decay_factor=args.lr_decay_factor,
        d_steps=args.d_steps,
        w_reconstruction=args.w_reconstruction,
        w_attention=args.w_attention,
        w_gan=args.w_gan,
        w_perceptual=args.w_perceptual,
        gp_weight=args.gp_weight,
        input_noise=args.input_noise,
        attention=not args.no_attention,
        gan="none" if args.no_gan else ("lsgan" if args.lsgan else "wgan-gp"),
        perceptual="none" if args.no_perceptual else args.perceptual,
        reconstruction="l2" if args.l2 else "l1",
        global_features=not args.no_global,
        seed=args.seed,
        kernels=args.kernels,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        batchnorm=args.batchnorm,
        workers=args.workers,
        checkpoint_every=args.checkpoint_every,
        stop_after_steps=args.stop_after_steps,
        sample_count=args.sample_count,
    )


def run(args) -> int:
    import os
    import sys

    from scgan.train import train

    config = config_from_args(args) if not args.resume else _resume_config(args)
    if args.resume and int(os.environ.get("RANK", "0")) == 0:
        ignored = ignored_on_resume(args)
        if ignored:
            print("scgan train: note: --resume continues with the run's stored settings; "
                  f"ignored: {', '.join(ignored)}", file=sys.stderr)
    result = train(config, resume=args.resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if result.finished else "stopped (resume with --resume)"
        losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_losses.items())
        print(f"train: {state} after {result.epoch} epoch(s), {result.step} step(s); checkpoint {result.checkpoint}")
        if losses:
            print(f"  last losses: {losses}")
    return 0


# The options --resume takes from the command line (see _resume_config); every other trainer option comes from the
# checkpoint, so a changed value would be silently dropped without the note printed by run().
RESUME_OPTIONS = frozenset({"out", "resume", "stop_after_steps", "device", "workers", "quiet"})


def ignored_on_resume(args) -> list[str]:
    """``--flag`` names of the trainer options given with a non-default value that --resume does not use."""
    import argparse

    defaults = add_trainer_arguments(argparse.ArgumentParser())
    return ["--" + dest.replace("_", "-") for dest, default in defaults.items()
            if dest not in RESUME_OPTIONS and getattr(args, dest, default) != default]


def _resume_config(args):
    """On --resume the stored TrainConfig is used; only where to write and when to stop come from the command line."""
    from scgan.training.config import TrainConfig

    return TrainConfig(out=args.out, stop_after_steps=args.stop_after_steps, device=args.device, workers=args.workers,
                       data="-", saliency="-", global_init="none")
