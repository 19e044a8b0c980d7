"""`scgan bench`: run the pytest-benchmark suites of bench/ and report speed-ups against their peers."""

from __future__ import annotations

NAME = "bench"
HELP = "run the bench/ pytest-benchmark suites; tidy rows, speed-ups vs peers (Markdown), run metadata"


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder (bench.json, bench_rows.csv, bench_ratios.csv, "
                                                     "bench.md, run.json)")
    parser.add_argument("--quick", action="store_true",
                        help="few rounds, short max time, suites use their small subsets (SCGAN_BENCH_QUICK=1)")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression to select benchmarks")
    parser.add_argument("--suite", action="append", default=None,
                        help="a bench/test_*.py file name to run (repeatable; default: every suite)")


def run(args) -> int:
    import datetime as dt
    import os
    import subprocess
    import sys
    from pathlib import Path

    import bench
    from bench import benchjson, report
    from bench.provenance import device_description, git_commit, versions
    from scgan import paths
    from scgan.errors import InputError

    out = paths.prepare_output_dir("--out", Path(args.out)).resolve()  # writable before the suites run
    bench_dir = Path(bench.__file__).resolve().parent
    root = bench_dir.parent
    # Paths relative to the project root (pytest runs there), so that the command recorded in run.json names no
    # folder of a particular machine.
    targets = ["bench"]
    if args.suite:
        targets = []
        for name in args.suite:
            path = bench_dir / Path(name).name
            if not path.is_file():
                raise InputError(f"--suite: {name} not found in {bench_dir}")
            targets.append(f"bench/{path.name}")
    json_path = out / "bench.json"
    json_arg = json_path.relative_to(root) if json_path.is_relative_to(root) else json_path
    command = ["-m", "pytest", *targets, "-q", "-p", "no:cacheprovider", "--benchmark-only",
               f"--benchmark-json={json_arg}", "--benchmark-warmup=on"]
    if args.quick:
        command += ["--benchmark-min-rounds=2", "--benchmark-max-time=0.2", "--benchmark-warmup-iterations=1"]
    if args.keyword:
        command += ["-k", args.keyword]
    env = dict(os.environ)
    if args.quick:
        env["SCGAN_BENCH_QUICK"] = "1"
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    completed = subprocess.run([sys.executable, *command], cwd=root, env=env)
    if not json_path.is_file():
        raise InputError(f"pytest wrote no benchmark JSON (exit status {completed.returncode}); command: python "
                         + " ".join(command))
    payload = benchjson.load_benchmark_json(json_path)
    rows = benchjson.benchmark_rows(payload)
    ratios = benchjson.ratio_rows(rows)
    import torch

    metadata = {
        "command": "scgan bench" + (" --quick" if args.quick else ""),
        "datetime": started,
        "git_commit": git_commit(root),
        "device": device_description("cuda" if torch.cuda.is_available() else "cpu"),
        "threads": torch.get_num_threads(),
        "quick": bool(args.quick),
        "versions": versions(),
        "pytest_exit_status": completed.returncode,
        "pytest_command": ["python", *command],
        "machine_info": payload.get("machine_info"),
        "commit_info": payload.get("commit_info"),
    }
    report.write_rows(rows, out / "bench_rows.csv")
    report.write_rows(ratios, out / "bench_ratios.csv")
    from scgan.atomic import write_text

    write_text(out / "bench.md", benchjson.markdown(rows, ratios, metadata))
    report.write_json(metadata, out / "run.json")
    print(benchjson.markdown(rows, ratios, metadata))
    return completed.returncode
