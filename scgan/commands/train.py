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
    from scgan.training.config import TrainConfig

    d = TrainConfig()
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="image folder, list file, or 'samples' (required unless --resume)")
    data.add_argument("--saliency", help="folder of saliency PNGs from `scgan saliency` (not needed with --resume or "
                      "--no-attention)")
    data.add_argument("--out", required=True, help="run folder (checkpoint, losses.csv, samples)")
    data.add_argument("--policy", default=d.policy, help=f"resize policy of the training crop (default {d.policy})")
    data.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed) instead of stopping")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default=d.preset, help=f"model preset (default {d.preset}, the paper)")
    model.add_argument(
        "--global-init", default=None,
        help="global features: CKPT from `scgan pretrain-global` (the paper) or 'none' (random init)",
    )  # fmt: skip

    sched = parser.add_argument_group("schedule (paper defaults)")
    sched.add_argument("--stage1-epochs", type=int, default=d.stage1_epochs, help="stage 1 (L1 + attention) epochs")
    sched.add_argument("--stage2-epochs", type=int, default=d.stage2_epochs, help="stage 2 (+ GAN, perceptual) epochs")
    sched.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch (split over processes)")
    sched.add_argument("--lr-stage1", type=float, default=d.lr_stage1, help="stage-1 generator learning rate")
    sched.add_argument("--lr-g", type=float, default=d.lr_g, help="stage-2 generator learning rate")
    sched.add_argument("--lr-d", type=float, default=d.lr_d, help="stage-2 critics' learning rate")
    sched.add_argument("--beta1", type=float, default=d.betas[0], help="Adam beta1")
    sched.add_argument("--beta2", type=float, default=d.betas[1], help="Adam beta2")
    sched.add_argument("--lr-decay-every", type=int, default=d.lr_decay_every, help="stage-2 epochs per lr decay")
    sched.add_argument("--lr-decay-factor", type=float, default=d.lr_decay_factor,
                       help="stage-2 lr multiplier at each decay (0.5: halved)")
    sched.add_argument("--d-steps", type=int, default=d.d_steps, help="critic steps per generator step")
    sched.add_argument("--w-reconstruction", type=float, default=d.w_reconstruction, help="weight of the L1/L2 term")
    sched.add_argument("--w-attention", type=float, default=d.w_attention, help="weight of the attention loss")
    sched.add_argument("--w-gan", type=float, default=d.w_gan, help="weight of the adversarial loss (stage 2)")
    sched.add_argument("--w-perceptual", type=float, default=d.w_perceptual, help="perceptual loss weight (stage 2)")
    sched.add_argument("--gp-weight", type=float, default=d.gp_weight, help="WGAN-GP penalty weight")
    sched.add_argument("--input-noise", type=float, default=d.input_noise, help="gray input noise std ([-1,1] scale)")

    abl = parser.add_argument_group("ablations (paper Table II)")
    abl.add_argument("--no-attention", action="store_true", help="no attention loss, no saliency branch, no D_a")
    abl.add_argument("--no-gan", action="store_true", help="no adversarial loss (no critics)")
    abl.add_argument("--no-perceptual", action="store_true", help="no perceptual loss")
    abl.add_argument("--lsgan", action="store_true", help="LSGAN instead of WGAN-GP")
    abl.add_argument("--l2", action="store_true", help="L2 instead of L1 reconstruction loss")
    abl.add_argument("--no-global", action="store_true", help="no global feature network")
    abl.add_argument("--random-global", action="store_true", help="randomly initialised global features")
    abl.add_argument(
        "--perceptual", default=d.perceptual,
        help="perceptual network: efficientnet-lite0 (default, packaged ImageNet weights) or vgg16:PATH.pth",
    )  # fmt: skip

    run = parser.add_argument_group("execution")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    run.add_argument("--seed", type=int, default=d.seed, help="seed of weights, data order, noise")
    run.add_argument("--kernels", choices=["auto", "triton", "reference"], default=d.kernels)
    run.add_argument("--device", default=d.device, help="auto (default), cpu, cuda, cuda:N")
    run.add_argument("--amp", choices=["none", "bf16"], default=d.amp, help="autocast dtype (GPU)")
    run.add_argument("--channels-last", action="store_true", help="channels_last memory format (GPU)")
    run.add_argument("--batchnorm", choices=["train", "eval"], default=d.batchnorm,
                     help="train (paper) or eval (running statistics: batch-size independent)")
    run.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes")
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="also checkpoint every N steps")
    run.add_argument("--stop-after-steps", type=int, default=0, help="stop (resumably) after N global steps")
    run.add_argument("--sample-count", type=int, default=d.sample_count, help="images on the per-epoch sample grid")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    _show_defaults(parser)


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

    from scgan.train import train

    config = config_from_args(args) if not args.resume else _resume_config(args)
    result = train(config, resume=args.resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if result.finished else "stopped (resume with --resume)"
        losses = ", ".join(f"{k}={v:.4g}" for k, v in result.last_losses.items())
        print(f"train: {state} after {result.epoch} epoch(s), {result.step} step(s); checkpoint {result.checkpoint}")
        if losses:
            print(f"  last losses: {losses}")
    return 0


def _resume_config(args):
    """On --resume the stored TrainConfig is used; only where to write and when to stop come from the command line."""
    from scgan.training.config import TrainConfig

    return TrainConfig(out=args.out, stop_after_steps=args.stop_after_steps, device=args.device, workers=args.workers,
                       data="-", saliency="-", global_init="none")
