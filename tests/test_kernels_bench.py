"""bench/gpu_kernels.py without a GPU: its byte formulas, its table building on fake timings, its files, its exit."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import kernels
from bench import gpu_kernels
from kernels import reference


def test_byte_formulas_count_what_each_op_must_move():
    shape, s = (8, 3, 256, 256), 4
    e, p = 8 * 3 * 256 * 256, 8 * 256 * 256
    assert gpu_kernels.op_bytes("attention_l1", "forward+backward", shape, s) == (5 * e + 5 * p) * s
    assert gpu_kernels.op_bytes("attention_l1", "forward", shape, s) == (2 * e + 2 * p) * s
    assert gpu_kernels.op_bytes("weighted_image", "forward+backward", shape, 2) == (5 * e + 3 * p) * 2
    assert gpu_kernels.op_bytes("interpolate", "forward", shape, s) == 3 * e * s
    assert gpu_kernels.op_bytes("gradient_penalty", "forward+backward", shape, s) == 3 * e * s
    for op, formulas in gpu_kernels.BYTE_FORMULAS.items():
        assert set(formulas) == set(gpu_kernels.MODES), op
    # the report's formulas are rendered from the same counts
    assert gpu_kernels.BYTE_FORMULAS["weighted_image"] == {"forward": "(2E + P) s", "forward+backward": "(5E + 3P) s"}
    assert gpu_kernels.BYTE_FORMULAS["gradient_penalty"] == {"forward": "E s", "forward+backward": "3E s"}


FAKE_MS = {"triton": 1.0, "eager": 2.5, "compiled": 1.2}


def test_tables_from_fake_timings(tmp_path):
    calls = []

    def fake_timer(call, key):
        result = call()  # the closures must run: forward, or forward and backward
        assert result is not None
        calls.append(key)
        return FAKE_MS[key["impl"]]

    triton_ops = kernels.get_ops("triton") if kernels.triton_can_run(torch.zeros(1)) else reference
    rows = gpu_kernels.collect_rows(
        fake_timer,
        shapes=[(2, 3, 4, 5)],
        dtypes=["float32", "bfloat16"],
        device="cpu",
        implementations={
            "triton": lambda op: getattr(triton_ops, op),
            "eager": lambda op: getattr(reference, op),
            "compiled": lambda op: getattr(reference, op),  # stands in for torch.compile: timings are fake
        },
    )
    assert len(rows) == len(gpu_kernels.CASES) * 2 * len(gpu_kernels.MODES) * 3 == len(calls)
    first = rows.iloc[0]
    assert first["gbps"] == pytest.approx(first["bytes"] / (first["median_ms"] * 1e-3) / 1e9)

    copy_gbps = 1e-3  # fake: tiny, so that every GB/s fraction is far above 80%
    summary = gpu_kernels.summarize(rows, copy_gbps)
    assert len(summary) == len(gpu_kernels.CASES) * 2 * len(gpu_kernels.MODES)
    assert summary["speedup_vs_eager"].tolist() == pytest.approx([2.5] * len(summary))
    assert summary["speedup_vs_compiled"].tolist() == pytest.approx([1.2] * len(summary))
    attention = summary[(summary["op"] == "attention_l1") & (summary["mode"] == "forward+backward")]
    assert set(attention["target_met"]) == {"yes"}  # 2.5x >= 2x and fraction >= 80%
    assert set(summary[summary["op"] == "weighted_image"]["target"]) == {""}

    slow = gpu_kernels.summarize(rows.assign(median_ms=rows["median_ms"].where(rows["impl"] != "triton", 2.0)), 1e-3)
    penalty = slow[(slow["op"] == "gradient_penalty") & (slow["mode"] == "forward+backward")]
    assert set(penalty["target_met"]) == {"NO"}  # 2.5/2.0 = 1.25x < 1.5x

    meta = gpu_kernels.metadata("Fake GPU 80GB", copy_gbps, [(2, 3, 4, 5)], ["float32"])
    paths = gpu_kernels.save_results(tmp_path, gpu_kernels.device_stem("Fake GPU 80GB"), rows, summary, meta)
    assert [p.name for p in paths] == [f"gpu_kernels_fake-gpu-80gb.{ext}" for ext in ("csv", "json", "md")]
    assert len(pd.read_csv(paths[0])) == len(rows)
    payload = json.loads(paths[1].read_text())
    assert payload["metadata"]["device"] == "Fake GPU 80GB" and len(payload["summary"]) == len(summary)
    text = paths[2].read_text()
    for op in gpu_kernels.BYTE_FORMULAS:
        assert f"## {op}" in text
    assert "(5E + 5P) s" in text and "copy bandwidth" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message printed when no GPU is present")
def test_script_exits_clearly_without_cuda(capsys):
    assert gpu_kernels.main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_shape_argument_parsing():
    assert gpu_kernels._parse_shape("8x3x256x256") == (8, 3, 256, 256)
    with pytest.raises(Exception, match="NxCxHxW"):
        gpu_kernels._parse_shape("8x3x256")
