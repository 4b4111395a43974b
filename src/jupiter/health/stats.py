"""The statistical tests the health judge runs, on plain arrays and counts.

Each returns a :class:`Comparison`: the test, both sample sizes, the
estimate with its confidence interval, an effect size, the p-value and
whether the change is both significant and at least the gate. Tests come
from scipy; the code here only prepares the data and reads the results.

Latency is compared on the log scale, so a shift is a ratio: a
Hodges-Lehmann shift of log(1.2) means "typically 20% slower".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

FloatArray = NDArray[np.float64]
#: Cap on values per side fed to the rank test and the pairwise estimate
#: (a fixed-seed subsample beyond it): enough for power, bounded cost.
MAX_VALUES = 10_000
_PAIRS = 50_000


@dataclass
class Comparison:
    test: str
    against: str
    n_changed: int
    n_reference: int
    estimate: float
    interval: tuple[float, float]
    effect_size: float
    p_value: float | None
    alpha: float
    gate: float
    significant: bool
    over_gate: bool
    note: str = ""

    @property
    def failing(self) -> bool:
        return self.significant and self.over_gate

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = [_round(v) for v in self.interval]
        for key in ("estimate", "effect_size", "p_value", "gate"):
            data[key] = _round(data[key])
        data["failing"] = self.failing
        return data


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha)


def cap(values: FloatArray, seed: int) -> FloatArray:
    """At most ``MAX_VALUES`` of ``values`` (a fixed-seed subsample)."""
    return _cap(values, MAX_VALUES, seed)


def _cap(values: FloatArray, limit: int, seed: int) -> FloatArray:
    if values.size <= limit:
        return values
    rng = np.random.default_rng(seed)
    return rng.choice(values, size=limit, replace=False)


def latency_shift(
    changed: FloatArray,
    reference: FloatArray,
    *,
    against: str,
    alpha: float,
    gate: float,
    tolerated: float = 1.0,
) -> Comparison:
    """Mann-Whitney U, one-sided: is the changed group slower than the
    reference by more than the ``tolerated`` ratio (the null hypothesis is a
    slowdown of at most that much)? With the Hodges-Lehmann ratio and its
    distribution-free (Moses) interval at 1 - 2·alpha; failing when
    significant at ``alpha`` and the ratio is at least ``gate``."""
    x = np.log(_cap(changed, MAX_VALUES, 1))
    y = np.log(_cap(reference, MAX_VALUES, 2))
    m, n = x.size, y.size
    if m * n <= _PAIRS:
        diffs = np.subtract.outer(x, y).ravel()
    else:
        # The median of a large random subset of the m·n pairwise
        # differences: the same estimate as all pairs, up to a tiny error.
        rng = np.random.default_rng(5)
        diffs = x[rng.integers(0, m, _PAIRS)] - y[rng.integers(0, n, _PAIRS)]
    z = _z(alpha)
    # Moses: the interval runs from the k-th smallest to the k-th largest
    # pairwise difference, k from the normal approximation of U (scaled to
    # the pairs drawn).
    k_all = m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)
    k = min(max(math.floor(k_all / (m * n) * diffs.size), 0), diffs.size - 1)
    mid = diffs.size // 2
    picks = sorted({k, mid, diffs.size - 1 - k} | ({mid - 1} if diffs.size % 2 == 0 else set()))
    part = np.partition(diffs, picks)
    shift = float(part[mid]) if diffs.size % 2 else float((part[mid - 1] + part[mid]) / 2)
    low, high = math.exp(part[k]), math.exp(part[diffs.size - 1 - k])
    ratio = math.exp(shift)
    over = ratio >= gate
    p: float | None = None
    auc = math.nan
    note = ""
    if over:
        shifted = x - math.log(tolerated)
        result = stats.mannwhitneyu(shifted, y, alternative="greater", method="asymptotic")
        p = float(result.pvalue)
        auc = float(result.statistic) / (x.size * y.size)
    else:
        note = "rank test not run: the estimate is below the gate"
    return Comparison(
        test="mann-whitney-u",
        against=against,
        n_changed=int(changed.size),
        n_reference=int(reference.size),
        estimate=ratio,
        interval=(low, high),
        effect_size=auc,
        p_value=p,
        alpha=alpha,
        gate=gate,
        significant=p is not None and p < alpha,
        over_gate=over,
        note=note,
    )


def latency_tail(
    changed: FloatArray,
    reference: FloatArray,
    *,
    against: str,
    alpha: float,
    gate: float,
    tolerated: float = 1.0,
    q: float = 0.95,
) -> Comparison:
    """Does the changed group exceed ``tolerated`` times the reference's
    ``q`` quantile more often than the reference exceeds its own (Fisher's
    exact test on the counts)? The estimate is the ratio of the two ``q``
    quantiles; the effect size the changed share above the reference
    quantile."""
    threshold = float(np.quantile(reference, q))
    changed_q = float(np.quantile(changed, q))
    ratio = changed_q / threshold if threshold > 0 else math.inf
    over = ratio >= gate
    above_c = int(np.count_nonzero(changed > threshold * tolerated))
    above_r = int(np.count_nonzero(reference > threshold))
    share = above_c / changed.size
    p: float | None = None
    note = ""
    if over:
        p = _fisher_greater(above_c, int(changed.size), above_r, int(reference.size))
    else:
        note = "exact test not run: the estimate is below the gate"
    low, high = _quantile_ratio_interval(changed, threshold, q, alpha)
    return Comparison(
        test=f"fisher-exact p{int(q * 100)} exceedance",
        against=against,
        n_changed=int(changed.size),
        n_reference=int(reference.size),
        estimate=ratio,
        interval=(low, high),
        effect_size=share,
        p_value=p,
        alpha=alpha,
        gate=gate,
        significant=p is not None and p < alpha,
        over_gate=over,
        note=note,
    )


def _quantile_ratio_interval(
    values: FloatArray, threshold: float, q: float, alpha: float
) -> tuple[float, float]:
    """Distribution-free interval of the changed ``q`` quantile (order
    statistics from the binomial), over the reference quantile."""
    n = values.size
    ordered = np.sort(values)
    lo_i = int(stats.binom.ppf(alpha, n, q))
    hi_i = int(stats.binom.ppf(1 - alpha, n, q))
    lo_i, hi_i = min(max(lo_i, 0), n - 1), min(max(hi_i, 0), n - 1)
    if threshold <= 0:
        return (math.inf, math.inf)
    return (float(ordered[lo_i]) / threshold, float(ordered[hi_i]) / threshold)


def error_rate(
    errors: int,
    total: int,
    ref_errors: int,
    ref_total: int,
    *,
    against: str,
    alpha: float,
    gate: float,
) -> Comparison:
    """Fisher's exact test (one-sided) of a higher error share in the changed
    group; the estimate is the rise in error rate (a share) with a Wald
    interval at 1 - 2·alpha (Agresti-Caffo: one pseudo-count per cell, so
    zero-error groups work); effect size is the rate ratio."""
    rate = errors / total
    ref_rate = ref_errors / ref_total
    diff = rate - ref_rate
    a1, a2 = (errors + 1) / (total + 2), (ref_errors + 1) / (ref_total + 2)
    se = math.sqrt(a1 * (1 - a1) / (total + 2) + a2 * (1 - a2) / (ref_total + 2))
    z = _z(alpha)
    centre = a1 - a2
    ratio = (rate / ref_rate) if ref_rate > 0 else (math.inf if rate > 0 else 1.0)
    over = diff >= gate and errors > 0
    p: float | None = None
    note = ""
    if over:
        p = _fisher_greater(errors, total, ref_errors, ref_total)
    else:
        note = "exact test not run: the rise is below the gate"
    return Comparison(
        test="fisher-exact errors",
        against=against,
        n_changed=total,
        n_reference=ref_total,
        estimate=diff,
        interval=(centre - z * se, centre + z * se),
        effect_size=ratio,
        p_value=p,
        alpha=alpha,
        gate=gate,
        significant=p is not None and p < alpha,
        over_gate=over,
        note=note,
    )


def _fisher_greater(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided Fisher exact p-value that group 1's share exceeds group 2's."""
    # The hypergeometric tail is Fisher's one-sided test, without the
    # 2x2-table bookkeeping of scipy.stats.fisher_exact.
    return float(stats.hypergeom.sf(k1 - 1, n1 + n2, k1 + k2, n1))
