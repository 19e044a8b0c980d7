"""Leaderboard statistics against scipy, and the tables built from hand-made tidy rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bench import stats, tables


def test_bootstrap_mean_ci_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 3.0, size=40)
    ours = stats.bootstrap_mean_ci(values, n_resamples=20_000, seed=3)
    ref = scipy_stats.bootstrap(
        (values,), np.mean, n_resamples=20_000, method="percentile", confidence_level=0.95, rng=7
    ).confidence_interval
    assert ours.estimate == pytest.approx(values.mean(), rel=1e-12)
    # Two independent Monte-Carlo estimates of the same percentiles: agree to a small fraction of the standard error.
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert abs(ours.low - ref.low) < 0.1 * se
    assert abs(ours.high - ref.high) < 0.1 * se
    # The percentiles are numpy's linear ones on the resampled means.
    means = np.concatenate([values[i].mean(axis=1) for i in stats._index_chunks(values.size, 20_000, 3)])
    assert [ours.low, ours.high] == pytest.approx(np.percentile(means, [2.5, 97.5]), rel=1e-12)
    # Seeded: the same call gives the same interval.
    assert stats.bootstrap_mean_ci(values, n_resamples=20_000, seed=3) == ours


def test_bootstrap_degenerate_and_infinite():
    assert stats.bootstrap_mean_ci([5.0]) == stats.Interval(5.0, 5.0, 5.0, 1, "bootstrap-percentile")
    constant = stats.bootstrap_mean_ci([2.0, 2.0, 2.0])
    assert (constant.low, constant.high) == (2.0, 2.0)
    everything_inf = stats.bootstrap_mean_ci([math.inf] * 4)
    assert everything_inf.estimate == math.inf and everything_inf.low == math.inf
    # Some exact copies (PSNR inf) among finite values: the resampled means that drew one are inf, so the upper
    # bound is inf, and the lower one is a finite percentile (numpy's own percentile gives nan there).
    mixed = stats.bootstrap_mean_ci([math.inf] + [20.0, 22.0, 25.0, 30.0] * 3, n_resamples=2000)
    assert mixed.estimate == math.inf and mixed.high == math.inf and 20.0 < mixed.low < 30.0
    assert math.isnan(stats.bootstrap_mean_ci([]).estimate)
    with pytest.raises(ValueError, match="NaN"):
        stats.bootstrap_mean_ci([1.0, math.nan])


@pytest.mark.parametrize("k,n", [(0, 6), (3, 10), (6, 6), (17, 40), (1, 1)])
def test_wilson_matches_scipy(k, n):
    ours = stats.wilson_interval(k, n)
    ref = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours.estimate == k / n
    assert ours.low == pytest.approx(ref.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.high, abs=1e-12)


def test_paired_wilcoxon_matches_scipy_on_hand_made_rows():
    method = np.array([27.1, 25.3, 30.2, 22.8, 26.4, 29.9, 24.0, 28.8, 23.5, 26.6])
    best = np.array([28.0, 26.1, 30.0, 24.1, 27.9, 31.2, 24.5, 29.0, 25.1, 27.0])
    ours = stats.paired_wilcoxon(method, best)
    ref = scipy_stats.wilcoxon(method, best)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert ours.significant == (ref.pvalue < 0.05)
    assert ours.n_nonzero == 10


def test_paired_wilcoxon_ties_zeros_and_small_n():
    # Ties among |d| and zero differences: scipy's own handling (normal approximation, zeros dropped).
    method = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    best = np.array([2.0, 3.0, 3.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])  # nine differences of -1, one zero
    ours = stats.paired_wilcoxon(method, best)
    ref = scipy_stats.wilcoxon(method - best, zero_method="wilcox")
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert ours.n_nonzero == 9 and ours.significant
    # All differences zero: identical on these images.
    same = stats.paired_wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p_value == 1.0 and not same.significant and same.n_nonzero == 0
    # Five pairs, all worse: the smallest two-sided exact p is 2/32 > 0.05, so never significant.
    small = stats.paired_wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    assert small.p_value == pytest.approx(2 / 32) and not small.significant
    # Infinite PSNR on both sides is a zero difference, not nan.
    with_inf = stats.paired_wilcoxon([math.inf, 20.0, 21.0], [math.inf, 22.0, 23.0])
    assert with_inf.n_nonzero == 2 and not math.isnan(with_inf.p_value)


def test_delta_cf_and_paired_bootstrap():
    pred = np.array([10.0, 12.0, 30.0, 25.0])
    gt = np.array([20.0, 22.0, 35.0, 30.0])
    assert stats.delta_cf(pred, gt) == pytest.approx(7.5)
    interval = stats.delta_cf_ci(pred, gt, n_resamples=2000)
    assert interval.estimate == pytest.approx(7.5)
    assert interval.low <= 7.5 <= interval.high
    # A method equal to the best is not significantly different; a far worse one is.
    same = stats.paired_bootstrap_difference(
        lambda p, g: np.abs(p.mean(1) - g.mean(1)), [pred, gt], [pred, gt], n_resamples=500
    )
    assert not same.significant and same.p_value == 1.0
    rng = np.random.default_rng(0)
    gt_many = rng.uniform(20, 40, 60)
    close = gt_many + rng.normal(0, 1, 60)
    far = gt_many - 15 + rng.normal(0, 1, 60)
    worse = stats.paired_bootstrap_difference(
        lambda p, g: np.abs(p.mean(1) - g.mean(1)), [far, gt_many], [close, gt_many], n_resamples=2000
    )
    assert worse.significant and worse.p_value < 0.01


def _rows(values: dict[str, list[float]], column="psnr", extra=None) -> pd.DataFrame:
    records = []
    for method, vals in values.items():
        for i, v in enumerate(vals):
            record = {"method": method, "file": f"img{i}.png", "protocol": "p", "protocol_hash": "h", "error": "",
                      column: v}
            if extra:
                record.update(extra(method, i))
            records.append(record)
    return pd.DataFrame.from_records(records)


def test_summary_best_marks_and_anchor_rule():
    rng = np.random.default_rng(4)
    base = rng.uniform(20, 30, 30)
    rows = _rows({
        "gt": [math.inf] * 30,
        "gray": list(base - 5),
        "good": list(base),
        "close": list(base + rng.normal(0, 0.01, 30)),
        "bad": list(base - 2 + rng.normal(0, 0.1, 30)),
    })
    summary = tables.summarize(rows, n_resamples=500)
    assert summary.best["psnr"] in ("good", "close")  # anchors are not candidates
    best = summary.best["psnr"]
    other = "close" if best == "good" else "good"
    assert summary.cells[(best, "psnr")].best
    assert summary.cells[(other, "psnr")].not_significant
    assert not summary.cells[("bad", "psnr")].not_significant
    assert summary.cells[("gt", "psnr")].estimate == math.inf
    p_bad = summary.cells[("bad", "psnr")].p_value
    assert p_bad == pytest.approx(scipy_stats.wilcoxon(rows[rows.method == "bad"].psnr.to_numpy(),
                                                       rows[rows.method == best].psnr.to_numpy()).pvalue)
    header, body = tables.main_table(summary)
    assert header[:3] == ["method", "images", "PSNR (dB)"]
    text = tables.markdown_table(header, body)
    assert "**" in text and tables.NOT_SIGNIFICANT_MARK in text


def test_summary_common_subset_under_skip_bad():
    rows = _rows({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 3.0, 4.0, 5.0], "dead": [0.0, 0.0, 0.0, 0.0]},
                 column="delta_e00")
    rows.loc[(rows.method == "b") & (rows.file == "img1.png"), ["error", "delta_e00"]] = ["boom", np.nan]
    rows.loc[rows.method == "dead", ["error", "delta_e00"]] = ["failed", np.nan]
    summary = tables.summarize(rows, n_resamples=200)
    assert summary.methods == ["a", "b"] and summary.dropped_methods == ["dead"]
    assert summary.common_files == ["img0.png", "img2.png", "img3.png"]
    assert summary.cells[("a", "delta_e00")].estimate == pytest.approx((1 + 3 + 4) / 3)
    coverage = summary.coverage.set_index("method")
    assert coverage.loc["b", "images_ok"] == 3 and coverage.loc["b", "images_failed"] == 1
    assert any("3 images" in note for note in summary.notes)


def test_summary_cci_ratio_top1_and_delta_cf_from_rows():
    cci = {"m1": [15.9, 16.0, 20.0, 20.1, 18.0], "m2": [10.0, 11.0, 17.0, 25.0, 30.0]}

    def extra(method, i):
        return {"top1": float(i % 2 == 0), "cf_abs": cci[method][i] + 1.0, "gt_cf_abs": 20.0}

    rows = _rows(cci, column="cci", extra=extra)
    summary = tables.summarize(rows, n_resamples=200)
    ratio = summary.cells[("m1", "cci_ratio")]
    assert ratio.estimate == pytest.approx(3 / 5)  # 16.0, 20.0 and 18.0: bounds inclusive
    assert summary.cells[("m2", "cci_ratio")].estimate == pytest.approx(1 / 5)
    assert summary.cells[("m1", "top1")].estimate == pytest.approx(3 / 5)
    assert summary.cells[("m1", "delta_cf")].estimate == pytest.approx(abs(np.mean(cci["m1"]) + 1 - 20))
    frame = tables.leaderboard_frame(summary)
    assert {"cci_ratio", "cci_ratio_low", "cci_ratio_p_vs_best", "delta_cf_not_significant"} <= set(frame.columns)


def test_rows_with_mixed_protocols_are_refused():
    rows = _rows({"a": [1.0, 2.0]})
    rows.loc[1, "protocol_hash"] = "other"
    with pytest.raises(ValueError, match="protocol"):
        tables.summarize(rows)


def test_table_directions_follow_the_metrics_registry():
    import metrics

    for column in tables.TABLE_COLUMNS:
        if column.key == "cci":
            assert column.higher_is_better is None  # descriptive: the band, not "more", is the target
            continue
        assert column.higher_is_better == metrics.metric_info(column.key).higher_is_better, column.key


def test_dataset_values_match_the_metrics_package():
    from metrics.dataset import cci_ratio_from_values, delta_cf_from_values

    rng = np.random.default_rng(2)
    cci = rng.uniform(10, 25, 50)
    cf_pred, cf_gt = rng.uniform(10, 40, 50), rng.uniform(10, 40, 50)
    rows = _rows({"m": list(cci)}, column="cci",
                 extra=lambda m, i: {"cf_abs": cf_pred[i], "gt_cf_abs": cf_gt[i]})
    summary = tables.summarize(rows, n_resamples=200)
    assert summary.cells[("m", "cci_ratio")].estimate == cci_ratio_from_values(cci)
    assert summary.cells[("m", "delta_cf")].estimate == pytest.approx(delta_cf_from_values(cf_pred, cf_gt), rel=1e-12)


def test_candidate_worse_than_a_lower_anchor_is_not_bold():
    # The case of issue 11: one model at ~19.3 dB beside gray at ~22.7 dB must not be printed as the best PSNR;
    # on delta E00 (lower is better) the same model beats gray and is bold.
    rng = np.random.default_rng(7)
    base = rng.uniform(20, 25, 20)
    rows = _rows({"gt": [math.inf] * 20, "gray": list(base + 2.7), "model": list(base)})
    rows["delta_e00"] = np.where(rows["method"] == "gray", 12.0, 8.0) + rng.uniform(0, 1, len(rows))
    rows.loc[rows.method == "gt", "delta_e00"] = 0.0
    summary = tables.summarize(rows, n_resamples=200)
    assert summary.best["psnr"] == "model"  # still the reference of the ≈ tests
    assert not any(cell.best for (m, key), cell in summary.cells.items() if key == "psnr")
    assert any("PSNR (dB)" in note and "gray anchor" in note for note in summary.notes)
    assert summary.cells[("model", "delta_e00")].best
    header, body = tables.main_table(summary)
    psnr = header.index("PSNR (dB)")
    assert all("**" not in row[psnr] for row in body)
    assert "**" in body[[row[0] for row in body].index("model")][header.index("delta E00")]
    frame = tables.leaderboard_frame(summary).set_index("method")
    assert not frame.loc["model", "psnr_best"] and frame.loc["model", "delta_e00_best"]


def test_tint_is_an_anchor_of_the_tables():
    rng = np.random.default_rng(8)
    base = rng.uniform(20, 25, 20)
    rows = _rows({"gray": list(base), "tint": list(base + 1.0), "model": list(base + 0.5)})
    summary = tables.summarize(rows, n_resamples=200)
    assert summary.best["psnr"] == "model"  # tint is not a candidate
    assert not summary.cells[("model", "psnr")].best  # tint beats it
    assert any("tint anchor" in note for note in summary.notes)
