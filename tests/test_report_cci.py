"""`scgan cci-report`: CCI distribution, ratio with its interval, outliers; CSV + Markdown + PNG."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from scgan.cli import main as cli_main


def _colourfulness(rgb: np.ndarray) -> float:
    rgb = rgb.astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def test_cci_report_cli(tmp_path):
    rng = np.random.default_rng(0)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    expected = {}
    for i in range(6):
        base = rng.integers(60, 200, (24, 32, 3))
        saturation = [0.0, 0.1, 0.2, 0.3, 0.6, 1.0][i]
        gray = base.mean(axis=2, keepdims=True)
        image = np.clip(gray + saturation * (base - gray) + [6 * i, 0, -3 * i], 0, 255).astype(np.uint8)
        Image.fromarray(image).save(pred / f"p{i}.png")
        Image.fromarray(base.astype(np.uint8)).save(gt / f"p{i}.png")
        expected[f"p{i}.png"] = _colourfulness(image)
    out = tmp_path / "out"
    assert cli_main(["cci-report", "--pred", str(pred), "--gt", str(gt), "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "cci.csv").set_index("file")
    for name, value in expected.items():
        assert table.loc[name, "cci"] == pytest.approx(value, rel=1e-9)
    values = np.array(list(expected.values()))
    inside = int(((values >= 16) & (values <= 20)).sum())
    summary = json.loads((out / "cci_summary.json").read_text())
    assert summary["pred"]["cci_ratio"] == pytest.approx(inside / 6)
    wilson = scipy_stats.binomtest(inside, 6).proportion_ci(method="wilson")
    assert summary["pred"]["cci_ratio_low"] == pytest.approx(wilson.low)
    assert summary["gt"]["images"] == 6
    assert summary["pred"]["below_band"] + summary["pred"]["in_band"] + summary["pred"]["above_band"] == 6
    for png in ("cci_hist.png", "cci_boxplot.png", "cci_outliers.png"):
        with Image.open(out / png) as image:
            image.verify()
    text = (out / "cci_report.md").read_text()
    assert "CCI ratio" in text and "Furthest outside [16, 20]" in text
    # Outliers are ordered by their distance from the band.
    furthest = table.sort_values("distance", ascending=False).index[0]
    assert furthest in text.split("Furthest outside")[1].splitlines()[4]


def test_cci_report_missing_pair_is_named(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 200
    Image.fromarray(image).save(pred / "a.png")
    Image.fromarray(image).save(gt / "a.png")
    Image.fromarray(image).save(gt / "b.png")
    assert cli_main(["cci-report", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2


def test_cci_report_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    # regression: --out naming an existing file ended in a FileExistsError traceback
    (tmp_path / "afile").write_text("x")
    assert cli_main(["cci-report", "--pred", "samples", "--out", str(tmp_path / "afile"), "--quiet"]) == 2
    assert "afile: exists and is not a folder" in capsys.readouterr().err
