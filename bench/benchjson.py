"""pytest-benchmark JSON -> tidy rows -> speed ratios against peers -> Markdown (``scgan bench``).

Peer convention (docs/leaderboard.md; every suite in ``bench/`` follows it):

- a benchmark declares what it is compared with by its **group** (``benchmark.group = "..."`` or
  ``@pytest.mark.benchmark(group=...)``): measurements are compared only inside one group, so put the shape/size in
  the group name when a suite is parametrized (``"ssim-256x256-batch32"``);
- ``benchmark.extra_info["role"]`` is ``"candidate"`` (this project's implementation) or ``"peer"`` (the reference it
  is judged against: skimage loop, pure-PyTorch reference, ...); a benchmark without a role is reported but not
  ratioed;
- ``benchmark.extra_info["items"]`` (optional) is how many items (images) one call processes, giving items/s;
- ``benchmark.extra_info["label"]`` (optional) is a short display name (default: the test name).

Speed-up of a candidate over a peer in the same group and the same run: ``peer time per item / candidate time per
item`` from the **medians** (per call when ``items`` is missing on either side). > 1 means the candidate is faster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.tables import markdown_table

ROW_COLUMNS = ("suite", "test", "label", "group", "role", "items", "params", "median_s", "iqr_s", "mean_s",
               "stddev_s", "min_s", "max_s", "rounds", "items_per_s")


def load_benchmark_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark JSON not found: {path}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(payload, dict) or "benchmarks" not in payload:
        raise ValueError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks' list)")
    return payload


def benchmark_rows(payload: dict) -> pd.DataFrame:
    """One tidy row per benchmark (times in seconds per call, from pytest-benchmark's ``stats``)."""
    records = []
    for bench in payload.get("benchmarks", []):
        stats = bench.get("stats") or {}
        extra = bench.get("extra_info") or {}
        fullname = bench.get("fullname", bench.get("name", ""))
        items = extra.get("items")
        median = stats.get("median")
        records.append({
            "suite": fullname.split("::")[0],
            "test": bench.get("name", ""),
            "label": extra.get("label") or bench.get("name", ""),
            "group": bench.get("group"),
            "role": extra.get("role"),
            "items": items,
            "params": json.dumps(bench.get("params"), sort_keys=True) if bench.get("params") else "",
            "median_s": median,
            "iqr_s": stats.get("iqr"),
            "mean_s": stats.get("mean"),
            "stddev_s": stats.get("stddev"),
            "min_s": stats.get("min"),
            "max_s": stats.get("max"),
            "rounds": stats.get("rounds"),
            "items_per_s": (items / median) if items and median else None,
        })
    return pd.DataFrame.from_records(records, columns=list(ROW_COLUMNS))


def ratio_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every (candidate, peer) pair of the same group: speed-up = peer time per item / candidate time per item."""
    records = []
    for group, sub in rows.groupby("group", sort=True, dropna=True):
        candidates = sub[sub["role"] == "candidate"]
        peers = sub[sub["role"] == "peer"]
        for _, cand in candidates.iterrows():
            for _, peer in peers.iterrows():
                per_item = bool(cand["items"]) and bool(peer["items"]) and not pd.isna(cand["items"]) \
                    and not pd.isna(peer["items"])
                cand_time = cand["median_s"] / cand["items"] if per_item else cand["median_s"]
                peer_time = peer["median_s"] / peer["items"] if per_item else peer["median_s"]
                records.append({
                    "group": group, "candidate": cand["label"], "peer": peer["label"],
                    "candidate_median_s": cand["median_s"], "peer_median_s": peer["median_s"],
                    "basis": "per item" if per_item else "per call",
                    "speedup": peer_time / cand_time if cand_time else float("nan"),
                })
    return pd.DataFrame.from_records(records, columns=["group", "candidate", "peer", "candidate_median_s",
                                                       "peer_median_s", "basis", "speedup"])


def _fmt_seconds(value) -> str:
    if value is None or pd.isna(value):
        return ""
    if value >= 1:
        return f"{value:.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3f} ms"
    return f"{value * 1e6:.1f} us"


def markdown(rows: pd.DataFrame, ratios: pd.DataFrame, metadata: dict) -> str:
    """The benchmark report: run metadata, speed-ups against peers, then every measurement."""
    lines = ["# Benchmarks", ""]
    for key in ("git_commit", "datetime", "device", "threads", "quick"):
        if metadata.get(key) is not None:
            lines.append(f"- {key}: `{metadata[key]}`")
    if metadata.get("versions"):
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in metadata["versions"].items()))
    lines += ["", "## Speed-ups against peers (same run; median; > 1 = candidate faster)", ""]
    if ratios.empty:
        lines.append("No group has both a candidate and a peer.")
    else:
        lines.append(markdown_table(
            ["group", "candidate", "peer", "candidate median", "peer median", "basis", "speed-up"],
            [[r.group, r.candidate, r.peer, _fmt_seconds(r.candidate_median_s), _fmt_seconds(r.peer_median_s),
              r.basis, f"{r.speedup:.2f}x"] for r in ratios.itertuples()],
        ))
    lines += ["", "## All measurements", ""]
    lines.append(markdown_table(
        ["suite", "test", "group", "role", "median", "IQR", "rounds", "items/s"],
        [[r.suite, r.test, r.group or "", r.role or "", _fmt_seconds(r.median_s), _fmt_seconds(r.iqr_s),
          "" if pd.isna(r.rounds) else int(r.rounds), "" if pd.isna(r.items_per_s) else f"{r.items_per_s:.1f}"]
         for r in rows.itertuples()],
    ))
    lines.append("")
    return "\n".join(lines)
