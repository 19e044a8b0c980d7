"""`scgan baselines`: the registry of methods (name, paper, input size, where the weights come from), then the shipped
models loaded by name."""

from __future__ import annotations

import argparse

NAME = "baselines"
HELP = "list the methods a leaderboard can compare (anchors, published baselines, SCGAN, shipped models)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")


def format_table(rows) -> str:
    """A plain-text table of registry rows (name, input size, weights, paper)."""
    header = ("name", "input", "weights", "paper")
    cells = [(r.name, str(r.input_size) if r.input_size else "any", r.weights, r.paper) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header[:3])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:3], widths)) + "  " + header[3]]
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 5)
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c[:3], widths)) + "  " + c[3])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import csv
    import dataclasses
    import json
    import sys

    from baselines.registry import list_methods

    rows = list_methods()
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow([f.name for f in dataclasses.fields(rows[0])])
        for r in rows:
            writer.writerow(dataclasses.astuple(r))
    else:
        print(format_table(rows))
    return 0
