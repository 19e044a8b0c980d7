"""`scgan leaderboard`: put colorizers through one evaluation protocol and write the tables, plots and report."""

from __future__ import annotations

NAME = "leaderboard"
HELP = "compare colorizers under one protocol: tables with CIs and significance, plots, HTML report"
DESCRIPTION = (
    "Evaluate every method on the same images under a named protocol and write rows.csv, leaderboard.csv/.md, "
    "cci_boxplot.png, samples.png, report.html and run.json into --out. With no arguments: the embedded sample photos, "
    "every method available on a fresh install (the gt, gray and tint anchors and the shipped colorizers: "
    "`scgan baselines`) under the luminance-keeping protocol `wang`, output in ./leaderboard-out."
)


def _protocol_name(text: str) -> str:
    """A known protocol's name (checked against ``bench.protocols.PROTOCOLS`` when the arguments are parsed, so that
    building the CLI's parser imports nothing heavy)."""
    import argparse

    from bench.protocols import get_protocol

    try:
        return get_protocol(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--protocol: ")) from None


def add_arguments(parser) -> None:
    parser.add_argument("--data", default="samples",
                        help="image folder or list file (default: 'samples', the embedded sample photos)")
    parser.add_argument("--labels", default=None, help="labels CSV (file,label) for Top-1/Top-5 and per-class tables")
    parser.add_argument("--methods", default=None,
                        help="comma-separated specs: gt,gray,tint,scgan:mini (a shipped name),onnx:PATH[=NAME],"
                             "scgan:CKPT[=NAME],BASELINE[:WEIGHTS] (default: the anchors gt, gray, tint and every "
                             "shipped colorizer)")
    parser.add_argument("--out", default="leaderboard-out", help="output folder (default: ./leaderboard-out)")
    # "wang" is bench.protocols.DEFAULT_PROTOCOL, spelt out so that building the parser imports nothing heavy
    parser.add_argument("--protocol", default="wang", type=_protocol_name,
                        help="evaluation protocol, a name of bench.protocols.PROTOCOLS (default: wang, "
                             "luminance-keeping: the method's chroma on the input's full-resolution luminance; "
                             "scgan-paper: the paper's Table I protocol, raw RGB at 256x256; docs/leaderboard.md)")
    parser.add_argument("--metrics", default=None, help="comma-separated subset of the protocol's metrics")
    parser.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip unreadable images and images a method fails on (listed in the report) instead of "
                             "stopping; methods are then compared on the images they all cover")
    parser.add_argument("--saliency", default=None, metavar="DIR",
                        help="folder of ground-truth saliency maps (scgan saliency output) for saliency-aware metrics")
    parser.add_argument("--saliency-model", default=None, metavar="MODEL",
                        help="compute saliency maps with scgan.saliency: an ONNX salient-object model or 'spectral'")
    parser.add_argument("--classifier", default=None,
                        help="classifier spec for Top-1/FID (default: the protocol's, efficientnet-lite0)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write OUT/cache")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no table on the terminal")


def run(args) -> int:
    from pathlib import Path

    from bench import report
    from bench.leaderboard import LeaderboardConfig, run_leaderboard
    from bench.methods import parse_method_list
    from scgan.errors import InputError

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    from metrics.engine import use_image_workers

    use_image_workers()  # threads set once for the run: one intra-op thread, images spread over the cores
    if Path(args.out).exists() and not Path(args.out).is_dir():  # else a FileExistsError traceback from mkdir
        raise InputError(f"--out {args.out}: exists and is not a folder")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no usable CUDA device on this machine")
    config = LeaderboardConfig(
        data=args.data,
        labels=args.labels,
        methods=parse_method_list(args.methods) if args.methods else [],
        out=Path(args.out),
        protocol=args.protocol,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None,
        batch_size=args.batch_size,
        device=args.device,
        skip_bad=args.skip_bad,
        saliency=args.saliency,
        saliency_model=args.saliency_model,
        quiet=args.quiet,
        cache=not args.no_cache,
        classifier=args.classifier,
    )
    result = run_leaderboard(config)
    if result and not args.quiet:
        print(report.print_table(result["summary"]))
        # Say on the terminal (as `scgan eval` does) which images the table leaves out; run.json lists them too.
        run_info = result.get("run", {})
        if run_info.get("gray_excluded"):
            print(f"gray ground truth excluded ({len(run_info['gray_excluded'])}): "
                  f"{_shortened(run_info['gray_excluded'])}")
        if run_info.get("bad"):
            print(f"unreadable files skipped ({len(run_info['bad'])}): "
                  f"{_shortened([item['file'] for item in run_info['bad']])}")
        print(f"\nwritten to {result['out']} (report.html, leaderboard.md, rows.csv, run.json)")
    return 0


def _shortened(names: list[str], shown: int = 10) -> str:
    """The first ``shown`` names, comma-separated, and how many more (run.json has them all)."""
    more = f", ... ({len(names) - shown} more; see run.json)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
