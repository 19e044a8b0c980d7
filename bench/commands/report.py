"""`scgan report`: rebuild the leaderboard tables and plots from rows.csv alone."""

from __future__ import annotations

NAME = "report"
HELP = "rebuild leaderboard tables, plots and report.html from a rows.csv"


def add_arguments(parser) -> None:
    parser.add_argument("--rows", required=True, help="rows.csv written by `scgan leaderboard`")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")


def run(args) -> int:
    import json
    from pathlib import Path

    from bench import figures, report
    from scgan.errors import InputError

    rows_path = Path(args.rows)
    if Path(args.out).exists() and not Path(args.out).is_dir():  # else a FileExistsError traceback from mkdir
        raise InputError(f"--out {args.out}: exists and is not a folder")
    if rows_path.is_dir():
        raise ValueError(f"--rows {rows_path}: a folder; give the rows.csv file in it ({rows_path / 'rows.csv'})")
    rows = report.read_rows(rows_path)
    # name the file here: the table builder's own check only knows the data, not where it came from
    missing = [column for column in ("method", "file") if column not in rows.columns]
    if missing:
        raise ValueError(f"--rows {rows_path}: missing column(s) {missing}; expected the rows.csv written by "
                         "`scgan leaderboard`")
    folder = rows_path.parent
    dataset_path = folder / "dataset_metrics.csv"
    dataset = report.read_rows(dataset_path) if dataset_path.is_file() else None
    run_info = None
    if (folder / "run.json").is_file():
        try:
            run_info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{folder / 'run.json'}: not valid JSON ({exc})") from exc
        # run.json supplies the protocol's parameters (the CCI band) and the run description: only when it describes
        # the protocol these rows were measured under.
        recorded = (run_info.get("protocol") or {}).get("hash")
        hashes = set(rows["protocol_hash"].dropna().astype(str)) if "protocol_hash" in rows.columns else set()
        if recorded and hashes and hashes != {recorded}:
            raise ValueError(f"--rows {rows_path}: protocol hash {sorted(hashes)} differs from {folder / 'run.json'} "
                             f"({recorded}); move the rows away from that run.json or restore the matching one")
    out = Path(args.out)
    figures = figures.existing_figures(folder)
    from scgan import paths

    # The output-safety rule: everything read here stays untouched (so --out is never the rows' own folder).
    read = [rows_path, *figures, *(p for p in (dataset_path, folder / "run.json") if p.is_file())]
    paths.check_outputs_apart({"--out": out}, {"--rows": read})
    paths.prepare_output_dir("--out", out)
    from scgan.atomic import write_bytes

    copied = [write_bytes(out / figure.name, figure.read_bytes()) for figure in figures]
    summary = report.build_report(rows, dataset, out, run_info=run_info, extra_images=copied)
    if not args.quiet:
        print(report.print_table(summary))
        print(f"\nwritten to {out}")
    return 0
