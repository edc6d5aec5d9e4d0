"""Baseline window against recent window: every comparison of one drift check.

``detect_drift`` is pure: it takes the two windows' aggregates (``WindowStats``,
read by ``sinks.drift_queries``) and ``DriftSettings``, and returns a
``DriftReport``. Per task it compares the model mix, the cost per answered
request, the failure and fallback rates, the mean predicted quality and each kind
of feedback; per provider, the share of calls that failed. A comparison with fewer
than ``min_count`` values in either window is listed as skipped, not tested.
Every tested p-value then goes through Holm's correction together, and a
comparison is significant when its adjusted p-value is below alpha and its effect
reaches the metric's minimum (so huge volumes do not flag trivial moves).
"""

from collections.abc import Iterator

from processors.drift.significance import Tested, holm, mean_test, mix_test, rate_test
from schemas.drift import (
    Comparison,
    DriftReport,
    DriftSettings,
    Metric,
    Moments,
    TaskWindow,
    WindowStats,
)

_EMPTY = TaskWindow()


def detect_drift(
    baseline: WindowStats, recent: WindowStats, settings: DriftSettings | None = None
) -> DriftReport:
    """Compare ``recent`` with ``baseline``; see the module docstring."""
    settings = settings or DriftSettings()
    comparisons = list(_comparisons(baseline, recent, settings.min_count))
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    adjusted = holm([comparisons[i].p_value or 0.0 for i in tested])
    for index, p_adjusted in zip(tested, adjusted, strict=True):
        c = comparisons[index]
        big_enough = (c.effect or 0.0) >= settings.min_effect.get(c.metric, 0.0)
        comparisons[index] = c.model_copy(
            update={
                "p_adjusted": p_adjusted,
                "significant": p_adjusted < settings.alpha and big_enough,
            }
        )
    return DriftReport(
        baseline_start=baseline.start,
        baseline_end=baseline.end,
        recent_start=recent.start,
        recent_end=recent.end,
        baseline_requests=baseline.requests,
        recent_requests=recent.requests,
        alpha=settings.alpha,
        min_count=settings.min_count,
        comparisons=comparisons,
    )


def _comparisons(
    baseline: WindowStats, recent: WindowStats, min_count: int
) -> Iterator[Comparison]:
    for task in sorted(set(baseline.tasks) | set(recent.tasks)):
        b, r = baseline.tasks.get(task, _EMPTY), recent.tasks.get(task, _EMPTY)
        scope = f"task={task}"
        yield _mix(scope, b, r, min_count)
        yield _mean("cost_per_request", scope, b.cost, r.cost, min_count, (b.log_cost, r.log_cost))
        yield _rate(
            "failure_rate", scope, (b.failed, b.requests), (r.failed, r.requests), min_count
        )
        yield _rate(
            "fallback_rate", scope, (b.fell_back, b.answered), (r.fell_back, r.answered), min_count
        )
        if b.predicted_quality.n or r.predicted_quality.n:
            yield _mean(
                "predicted_quality", scope, b.predicted_quality, r.predicted_quality, min_count
            )
        for kind in sorted(set(b.feedback) | set(r.feedback)):
            fb, fr = b.feedback.get(kind, Moments()), r.feedback.get(kind, Moments())
            yield _mean("feedback", f"{scope} kind={kind}", fb, fr, min_count)
    for provider in sorted(set(baseline.providers) | set(recent.providers)):
        pb = baseline.providers.get(provider)
        pr = recent.providers.get(provider)
        yield _rate(
            "provider_error_rate",
            f"provider={provider}",
            (pb.errors, pb.attempts) if pb else (0, 0),
            (pr.errors, pr.attempts) if pr else (0, 0),
            min_count,
        )


def _too_few(n_b: int, n_r: int, min_count: int, what: str) -> str:
    if min(n_b, n_r) >= min_count:
        return ""
    return f"too little data: {n_b} and {n_r} {what} (each window needs {min_count})"


def _with_test(c: Comparison, tested: Tested) -> Comparison:
    return c.model_copy(
        update={"test": tested.test, "statistic": tested.statistic, "p_value": tested.p_value}
    )


def _mix(scope: str, b: TaskWindow, r: TaskWindow, min_count: int) -> Comparison:
    n_b, n_r = b.answered, r.answered
    models = sorted(set(b.answered_by) | set(r.answered_by))
    share_b = {m: b.answered_by.get(m, 0) / n_b if n_b else 0.0 for m in models}
    moves = {m: (r.answered_by.get(m, 0) / n_r if n_r else 0.0) - share_b[m] for m in models}
    # Where the traffic went: the model whose share grew most (if none did, the largest).
    grew = max(models, key=lambda m: (moves[m], share_b[m], m), default="")
    c = Comparison(
        metric="model_mix",
        scope=scope,
        subject=grew,
        moves=moves,
        baseline=share_b.get(grew),
        recent=share_b[grew] + moves[grew] if grew else None,
        change=moves.get(grew),
        # Total variation distance: the share of the task's traffic that changed model.
        effect=sum(abs(v) for v in moves.values()) / 2,
        n_baseline=n_b,
        n_recent=n_r,
    )
    skipped = _too_few(n_b, n_r, min_count, "answered requests")
    if skipped:
        return c.model_copy(update={"skipped": skipped})
    tested = mix_test(b.answered_by, r.answered_by)
    if tested is None:
        return c.model_copy(update={"skipped": "one model only: no mix to compare"})
    return _with_test(c, tested)


def _mean(
    metric: Metric,
    scope: str,
    b: Moments,
    r: Moments,
    min_count: int,
    tested_on: tuple[Moments, Moments] | None = None,
) -> Comparison:
    """Means of ``b`` and ``r``; tested on ``tested_on`` if given (costs: their logs), with
    the effect relative to the baseline then; 0/1 values compared as rates."""
    change = r.mean - b.mean if b.n and r.n else None
    effect = None
    if change is not None:
        effect = abs(change) / abs(b.mean) if tested_on and b.mean else abs(change)
    c = Comparison(
        metric=metric,
        scope=scope,
        baseline=b.mean if b.n else None,
        recent=r.mean if r.n else None,
        change=change,
        effect=effect,
        n_baseline=b.n,
        n_recent=r.n,
    )
    skipped = _too_few(b.n, r.n, min_count, "values")
    if skipped:
        return c.model_copy(update={"skipped": skipped})
    if b.is_binary() and r.is_binary():
        return _with_test(c, rate_test(round(b.total), b.n, round(r.total), r.n))
    return _with_test(c, mean_test(*(tested_on or (b, r))))


def _rate(
    metric: Metric,
    scope: str,
    baseline: tuple[int, int],
    recent: tuple[int, int],
    min_count: int,
) -> Comparison:
    (e_b, n_b), (e_r, n_r) = baseline, recent
    rate_b = e_b / n_b if n_b else None
    rate_r = e_r / n_r if n_r else None
    change = rate_r - rate_b if rate_b is not None and rate_r is not None else None
    c = Comparison(
        metric=metric,
        scope=scope,
        baseline=rate_b,
        recent=rate_r,
        change=change,
        effect=abs(change) if change is not None else None,
        n_baseline=n_b,
        n_recent=n_r,
    )
    skipped = _too_few(
        n_b, n_r, min_count, "requests" if metric != "provider_error_rate" else "calls"
    )
    return (
        c.model_copy(update={"skipped": skipped})
        if skipped
        else _with_test(c, rate_test(e_b, n_b, e_r, n_r))
    )
