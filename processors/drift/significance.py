"""The statistical tests drift detection uses, and Holm's correction over a run.

- A model mix (counts per model in two windows): Pearson's chi-square test of
  homogeneity on the 2 x K table. Its approximation needs every expected count to
  be at least 5 (Cochran's rule), so rarer models are pooled into one column first,
  and that column into the smallest kept one if it is still too small.
- A mean (n, sum, sum of squares per window): Welch's t-test, which does not
  assume equal variances (a costlier model widens the spread of costs). Costs are
  tested on a log scale (``log_cost``): a task's costs mix models 40 times apart in
  price, and on dollars the test flagged 7 times too often at p < 5e-4 with 200
  recent requests (3,000 synthetic draws); on log1p(micro-dollars) it is on target.
- A rate (events out of trials per window), and the mean of a 0/1 feedback kind:
  Fisher's exact test. The two-proportion z-test flags twice as often as it should
  in the far tail Holm's correction looks at when events are few (3% of 200
  requests); Fisher's test is exact at any count, conservative, and takes about a
  millisecond even for a million requests.
- Holm-Bonferroni over every p-value of a run: the chance that a run with no real
  shift flags anything at all stays below alpha, however many comparisons it makes.

Every test returns ``Tested``: the test's name, its statistic and its p-value.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import isfinite

from scipy import stats

from schemas.drift import Moments, TestName

MIN_EXPECTED = 5.0  # Cochran's rule for the chi-square approximation


@dataclass(frozen=True)
class Tested:
    test: TestName
    statistic: float
    p_value: float


def pooled_columns(baseline: Mapping[str, int], recent: Mapping[str, int]) -> list[tuple[int, int]]:
    """The 2 x K table's columns (baseline, recent) with every expected count >= 5.

    Models are taken largest first; those whose smaller expected count is below 5 are
    pooled into one column, which joins the smallest kept column if still too small.
    """
    n_b, n_r = sum(baseline.values()), sum(recent.values())
    total = n_b + n_r
    if not total:
        return []
    share = min(n_b, n_r) / total
    models = sorted(
        set(baseline) | set(recent), key=lambda m: -(baseline.get(m, 0) + recent.get(m, 0))
    )
    kept: list[tuple[int, int]] = []
    rest_b = rest_r = 0
    for model in models:
        b, r = baseline.get(model, 0), recent.get(model, 0)
        if (b + r) * share >= MIN_EXPECTED:
            kept.append((b, r))
        else:
            rest_b, rest_r = rest_b + b, rest_r + r
    if rest_b + rest_r:
        if (rest_b + rest_r) * share >= MIN_EXPECTED or not kept:
            kept.append((rest_b, rest_r))
        else:
            b, r = kept.pop()
            kept.append((b + rest_b, r + rest_r))
    return kept


def mix_test(baseline: Mapping[str, int], recent: Mapping[str, int]) -> Tested | None:
    """Chi-square test of homogeneity of two model mixes; None if under two columns remain."""
    columns = pooled_columns(baseline, recent)
    if len(columns) < 2:
        return None
    table = [[b for b, _ in columns], [r for _, r in columns]]
    # No Yates correction: every expected count is at least 5 after pooling.
    result = stats.chi2_contingency(table, correction=False)
    return Tested("chi-square", float(result.statistic), float(result.pvalue))


def mean_test(baseline: Moments, recent: Moments) -> Tested:
    """Welch's t-test of two means from their moments."""
    sb, sr = baseline.std, recent.std
    if sb == 0 and sr == 0:
        # Constant values in both windows: equal means cannot differ, unequal ones do.
        same = baseline.mean == recent.mean
        return Tested("welch-t", 0.0 if same else float("inf"), 1.0 if same else 0.0)
    result = stats.ttest_ind_from_stats(
        recent.mean, sr, recent.n, baseline.mean, sb, baseline.n, equal_var=False
    )
    return Tested("welch-t", float(result.statistic), float(result.pvalue))


def rate_test(events_b: int, trials_b: int, events_r: int, trials_r: int) -> Tested:
    """Fisher's exact test of two rates (two-sided); its statistic is the odds ratio."""
    table = [[events_r, trials_r - events_r], [events_b, trials_b - events_b]]
    result = stats.fisher_exact(table)
    odds = float(result.statistic)
    return Tested("fisher-exact", odds if isfinite(odds) else float("inf"), float(result.pvalue))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    The i-th smallest of m p-values is multiplied by (m - i + 1), kept monotone and
    capped at 1; rejecting where the adjusted value is below alpha controls the
    family-wise error rate at alpha.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
