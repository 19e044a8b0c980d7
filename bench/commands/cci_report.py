"""`scgan cci-report`: CCI distribution and ratio of a folder of colorizations (and of its ground truth)."""

from __future__ import annotations

NAME = "cci-report"
HELP = "CCI distribution, CCI ratio with its interval, outlier thumbnails of a folder of colorizations"


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, help="folder (or list file) of colorizations")
    parser.add_argument("--gt", default=None, help="folder of the ground truth, paired by name")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable files (listed) instead of stopping")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary on the terminal")


def run(args) -> int:
    from pathlib import Path

    from bench.cci_report import run_cci_report
    from scgan.errors import InputError

    if Path(args.out).exists() and not Path(args.out).is_dir():  # else a FileExistsError traceback from mkdir
        raise InputError(f"--out {args.out}: exists and is not a folder")
    from metrics.engine import use_image_workers

    use_image_workers()  # threads set once for the run: one intra-op thread, images spread over the cores
    summary = run_cci_report(args.pred, Path(args.out), gt=args.gt, skip_bad=args.skip_bad, quiet=args.quiet)
    if not args.quiet:
        print((Path(args.out) / "cci_report.md").read_text(encoding="utf-8"))
    return 0 if summary else 1
