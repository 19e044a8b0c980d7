"""pytest-benchmark JSON -> tidy rows -> speed-ups against peers -> Markdown, on a hand-made JSON."""

from __future__ import annotations

import json

import pytest

from bench import benchjson


def _bench(name, group, role, median, items=None, label=None):
    extra = {}
    if role:
        extra["role"] = role
    if items:
        extra["items"] = items
    if label:
        extra["label"] = label
    return {
        "name": name, "fullname": f"bench/test_x_speed.py::{name}", "group": group, "params": None,
        "extra_info": extra,
        "stats": {"median": median, "iqr": median / 10, "mean": median * 1.01, "stddev": median / 20,
                  "min": median * 0.9, "max": median * 1.2, "rounds": 5},
    }


PAYLOAD = {
    "machine_info": {"node": "x"},
    "benchmarks": [
        _bench("test_ours", "ssim-256", "candidate", 0.5, items=32, label="batched torch"),
        _bench("test_skimage", "ssim-256", "peer", 2.0, items=16, label="skimage loop"),
        _bench("test_reference", "ssim-256", "peer", 1.0, items=32),
        _bench("test_kernel", "gp", "candidate", 0.002),
        _bench("test_torch_ref", "gp", "peer", 0.006),
        _bench("test_alone", "other", None, 0.1),
    ],
}


def test_rows_ratios_and_markdown(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(PAYLOAD))
    rows = benchjson.benchmark_rows(benchjson.load_benchmark_json(path))
    assert list(rows.columns) == list(benchjson.ROW_COLUMNS)
    assert len(rows) == 6
    ours = rows.set_index("test").loc["test_ours"]
    assert ours["suite"] == "bench/test_x_speed.py" and ours["role"] == "candidate"
    assert ours["items_per_s"] == pytest.approx(64.0)
    ratios = benchjson.ratio_rows(rows).set_index(["candidate", "peer"])
    # per item: the skimage loop takes 2.0/16 s per image, ours 0.5/32 -> 8x
    assert ratios.loc[("batched torch", "skimage loop"), "speedup"] == pytest.approx(8.0)
    assert ratios.loc[("batched torch", "test_reference"), "speedup"] == pytest.approx(2.0)
    # no items: per call
    assert ratios.loc[("test_kernel", "test_torch_ref"), "speedup"] == pytest.approx(3.0)
    assert ratios.loc[("test_kernel", "test_torch_ref"), "basis"] == "per call"
    assert len(ratios) == 3  # the benchmark without a role is not ratioed
    text = benchjson.markdown(rows, benchjson.ratio_rows(rows), {"git_commit": "abc-dirty", "threads": 2})
    assert "| ssim-256 | batched torch | skimage loop |" in text and "8.00x" in text and "3.00x" in text
    assert "abc-dirty" in text and "test_alone" in text


def test_bad_json_is_a_clear_error(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        benchjson.load_benchmark_json(path)
    path.write_text(json.dumps({"x": 1}))
    with pytest.raises(ValueError, match="benchmarks"):
        benchjson.load_benchmark_json(path)
    with pytest.raises(FileNotFoundError):
        benchjson.load_benchmark_json(tmp_path / "none.json")
    empty = benchjson.benchmark_rows({"benchmarks": []})
    assert empty.empty and benchjson.ratio_rows(empty).empty
