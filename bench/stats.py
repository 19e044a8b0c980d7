"""Statistics of a leaderboard: confidence intervals of means and proportions, paired tests against the best method.

Everything here works on plain per-image values (numpy arrays taken from the tidy rows), so tables can be rebuilt
from ``rows.csv`` alone. The definitions (also in docs/leaderboard.md):

- **Mean with a 95% bootstrap interval** (``bootstrap_mean_ci``): percentile method, ``N_BOOTSTRAP = 10000``
  resamples of the images with replacement, seeded (``SEED = 0``) so that a report is reproducible. Infinite values
  (PSNR of an exact copy) are kept: a mean containing ``inf`` is ``inf``.
- **Proportions** (``cci_ratio``, ``top1``, ``top5``, ``top1_agree``): the Wilson score interval, which unlike the
  percentile bootstrap does not collapse to ``[0, 0]`` or ``[1, 1]`` on small sets.
- **Paired statistics that are not means of per-image values** (``delta_cf``): the same percentile bootstrap, with
  the images resampled jointly for the prediction and the ground truth (``paired_bootstrap_ci``).
- **Not significantly different from the best** (``paired_wilcoxon``): two-sided Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, ``zero_method="wilcox"``, ``method="auto"``) of the per-image values of a method against
  those of the best method on the same images, alpha 0.05. Pairs with equal values (including both ``inf``) are zero
  differences and are dropped, as ``zero_method="wilcox"`` does; when every difference is zero the methods are
  identical on these images (p = 1). With fewer than 6 non-zero differences a two-sided signed-rank test cannot reach
  p < 0.05 (the smallest exact p-value with 5 pairs is 2/32), so such a method is always marked as not significantly
  different; ``n_nonzero`` is reported so the reader can see why. Ties among the absolute differences make scipy use
  the normal approximation with its tie correction (``method="auto"``).
- ``delta_cf`` has no per-image decomposition, so its comparison with the best uses the paired bootstrap of the
  difference (``paired_bootstrap_difference``): not significantly different when the 95% interval of
  ``delta_cf(method) - delta_cf(best)`` contains 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

N_BOOTSTRAP = 10_000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 0
# Resample indices are drawn in chunks so that 10k resamples of a large set never need one huge index array.
_CHUNK_ELEMENTS = 4_000_000
# Index matrices up to this many entries (int32: 64 MB) are kept for reuse across the statistics of a report.
_CACHE_ELEMENTS = 16_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval; ``method`` says how the interval was made."""

    estimate: float
    low: float
    high: float
    n: int
    method: str


@dataclass(frozen=True)
class PairedTest:
    """Result of comparing a method with the best one on the same images.

    ``p_value`` is nan when there is nothing to compare (no images); ``significant`` is False then.
    """

    p_value: float
    n_pairs: int
    n_nonzero: int
    significant: bool
    test: str


def _as_1d_float(values, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D array of per-image values, got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"{what}: contains NaN (compute statistics on the images every method covers)")
    return array


def _index_chunks(n: int, n_resamples: int, seed: int):
    """The seeded resample indices of ``range(n)``: ``n_resamples`` rows in all, drawn in chunks (size, n) so that 10k
    resamples of a large set never need one huge index array."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n_resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_resamples - start), n))


@functools.lru_cache(maxsize=2)
def _cached_index_chunks(n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    """``_index_chunks`` kept (int32, read-only): every statistic of a report uses the same seed and image count."""
    chunks = tuple(c.astype(np.int32) for c in _index_chunks(n, n_resamples, seed))
    for c in chunks:
        c.setflags(write=False)
    return chunks


def _bootstrap_statistics(n: int, statistic: Callable[[np.ndarray], np.ndarray], n_resamples: int, seed: int):
    """Evaluate ``statistic(indices (B, n)) -> (B,)`` on ``n_resamples`` seeded resamples of ``range(n)``.

    Index matrices up to ``_CACHE_ELEMENTS`` entries are drawn once and reused; larger ones are drawn chunk by chunk
    each time (the same values either way).
    """
    if n * n_resamples <= _CACHE_ELEMENTS:
        chunks = _cached_index_chunks(n, n_resamples, seed)
    else:
        chunks = _index_chunks(n, n_resamples, seed)
    return np.concatenate([statistic(indices) for indices in chunks])


def _percentile(sorted_samples: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation (numpy's default ``method="linear"``), except that an
    infinite neighbour gives that infinity: numpy computes ``inf - inf`` there and returns nan (PSNR of exact copies
    makes some resampled means infinite)."""
    position = q / 100.0 * (sorted_samples.size - 1)
    below = int(math.floor(position))
    above = min(below + 1, sorted_samples.size - 1)
    fraction = position - below
    low, high = float(sorted_samples[below]), float(sorted_samples[above])
    if fraction == 0.0 or low == high:
        return low
    if math.isinf(low):
        return low
    if math.isinf(high):
        return high
    return low + (high - low) * fraction


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    ordered = np.sort(samples)
    return _percentile(ordered, tail), _percentile(ordered, 100.0 - tail)


def bootstrap_mean_ci(
    values, n_resamples: int = N_BOOTSTRAP, confidence: float = CONFIDENCE, seed: int = SEED
) -> Interval:
    """Mean of per-image ``values`` (1-D) with a percentile-bootstrap confidence interval.

    One value gives the degenerate interval [v, v]; an empty array gives nan.
    """
    array = _as_1d_float(values, "bootstrap_mean_ci")
    n = array.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "bootstrap-percentile")
    estimate = float(array.mean())
    if n == 1 or np.all(array == array[0]):
        return Interval(estimate, estimate, estimate, n, "bootstrap-percentile")
    # Sums of +inf and finite values are +inf (of +inf and -inf nan, silenced here); percentiles of resampled means
    # that mix inf with finite values are still the right order statistics, so inf needs no other special case.
    with np.errstate(invalid="ignore"):
        samples = _bootstrap_statistics(n, lambda idx: array[idx].mean(axis=1), n_resamples, seed)
    low, high = _percentile_interval(samples, confidence)
    return Interval(estimate, low, high, n, "bootstrap-percentile")


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Proportion ``successes / n`` with the Wilson score interval (no continuity correction)."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "wilson")
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson")


def proportion_ci(indicators, confidence: float = CONFIDENCE) -> Interval:
    """Wilson interval of the fraction of true values in a 1-D array of 0/1 (or bool) per-image indicators."""
    array = _as_1d_float(indicators, "proportion_ci")
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError("proportion_ci: indicators must be 0 or 1")
    return wilson_interval(int(array.sum()), int(array.size), confidence)


def delta_cf(cf_pred, cf_gt) -> float:
    """``|mean(cf_pred) - mean(cf_gt)|`` over the same images (docs/metrics.md)."""
    from metrics.dataset import delta_cf_from_values

    pred = _as_1d_float(cf_pred, "delta_cf pred")
    gt = _as_1d_float(cf_gt, "delta_cf gt")
    if pred.size == 0 and gt.size == 0:
        return math.nan
    return delta_cf_from_values(pred, gt)


def paired_bootstrap_ci(
    statistic: Callable[..., np.ndarray],
    arrays: list,
    n_resamples: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Interval:
    """Percentile-bootstrap interval of ``statistic(*arrays)``, resampling the images jointly in every array.

    ``statistic`` takes arrays of shape (B, n) (one row per resample) and returns (B,); it is also called once on the
    original arrays reshaped to (1, n) for the estimate.
    """
    columns = [_as_1d_float(a, "paired_bootstrap_ci") for a in arrays]
    n = columns[0].size
    if any(c.size != n for c in columns):
        raise ValueError("paired_bootstrap_ci: arrays must have the same length (the same images)")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "paired-bootstrap-percentile")
    estimate = float(statistic(*[c[None, :] for c in columns])[0])
    samples = _bootstrap_statistics(n, lambda idx: statistic(*[c[idx] for c in columns]), n_resamples, seed)
    low, high = _percentile_interval(samples, confidence)
    return Interval(estimate, low, high, n, "paired-bootstrap-percentile")


def delta_cf_ci(cf_pred, cf_gt, n_resamples: int = N_BOOTSTRAP, confidence: float = CONFIDENCE, seed: int = SEED):
    """``delta_cf`` with its paired percentile-bootstrap interval."""
    return paired_bootstrap_ci(
        lambda p, g: np.abs(p.mean(axis=1) - g.mean(axis=1)), [cf_pred, cf_gt], n_resamples, confidence, seed
    )


def paired_bootstrap_difference(
    statistic: Callable[..., np.ndarray],
    arrays_method: list,
    arrays_best: list,
    n_resamples: int = N_BOOTSTRAP,
    alpha: float = ALPHA,
    seed: int = SEED,
) -> PairedTest:
    """Compare ``statistic`` of a method with that of the best method by the paired bootstrap of their difference.

    Significant when the (1 - alpha) percentile interval of ``statistic(method) - statistic(best)`` excludes 0; the
    p-value is the two-sided bootstrap p-value ``2 * min(P(diff <= 0), P(diff >= 0))`` (capped at 1).
    """
    columns = [_as_1d_float(a, "paired_bootstrap_difference") for a in list(arrays_method) + list(arrays_best)]
    k = len(arrays_method)
    n = columns[0].size
    if any(c.size != n for c in columns):
        raise ValueError("paired_bootstrap_difference: arrays must have the same length (the same images)")
    if n == 0:
        return PairedTest(math.nan, 0, 0, False, "paired-bootstrap")

    def difference(*cols):
        return statistic(*cols[:k]) - statistic(*cols[k:])

    diffs = _bootstrap_statistics(n, lambda idx: difference(*[c[idx] for c in columns]), n_resamples, seed)
    if np.all(diffs == 0.0):
        return PairedTest(1.0, n, 0, False, "paired-bootstrap")
    low, high = _percentile_interval(diffs, 1.0 - alpha)
    p_value = min(1.0, 2.0 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))))
    significant = not (low <= 0.0 <= high)
    return PairedTest(p_value, n, n, significant, "paired-bootstrap")


def paired_wilcoxon(values_method, values_best, alpha: float = ALPHA) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of per-image values of a method against the best, on the same images.

    Both arrays hold one value per image in the same image order. Equal pairs (also ``inf == inf``) count as zero
    differences and are dropped (``zero_method="wilcox"``). See the module docstring for the small-n rule.
    """
    x = _as_1d_float(values_method, "paired_wilcoxon method")
    y = _as_1d_float(values_best, "paired_wilcoxon best")
    if x.shape != y.shape:
        raise ValueError(f"paired_wilcoxon: {x.size} vs {y.size} values (the methods must cover the same images)")
    n = x.size
    if n == 0:
        return PairedTest(math.nan, 0, 0, False, "wilcoxon")
    equal = x == y
    with np.errstate(invalid="ignore"):
        differences = np.where(equal, 0.0, x - y)
    nonzero = int(np.count_nonzero(differences))
    if nonzero == 0:
        return PairedTest(1.0, n, 0, False, "wilcoxon")
    result = scipy_stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided", method="auto")
    p_value = float(result.pvalue)
    return PairedTest(p_value, n, nonzero, bool(p_value < alpha), "wilcoxon")
