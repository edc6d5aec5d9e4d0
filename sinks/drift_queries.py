"""The aggregates a drift check reads: three GROUP BY queries over both windows at once.

Only sums and counts leave the database, never rows, and only columns every
version of the raw tables has (``requests``, ``attempts`` and the
``decision_feedback`` view), read with FINAL so a replayed event counts once.
``read_windows`` takes the function that runs a read (``run_query``: on the
telemetry worker's query service or in-process), so it works wherever the
database is. The windows must not overlap: each row is put in the recent window
if it falls in it, else in the baseline.
"""

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from processors.drift.windows import Window
from schemas.drift import Moments, ProviderWindow, TaskWindow, WindowStats
from schemas.errors import UsageError
from schemas.messages import ID_PATTERN
from sinks.rollups import FELL_BACK

Runner = Callable[[str], tuple[list[str], Sequence[Sequence[Any]]]]

# Cost is also summed as log1p of micro-dollars: what the cost test compares
# (processors.drift.significance). Predicted quality -1 means not predicted.
_REQUESTS = """
SELECT {period} AS period, task, model,
    count() AS requests,
    countIf(status != 'ok') AS failed,
    countIf(status = 'ok' AND {fell_back}) AS fell_back,
    sumIf(cost_usd, status = 'ok'),
    sumIf(cost_usd * cost_usd, status = 'ok'),
    sumIf(log1p(cost_usd * 1000000), status = 'ok'),
    sumIf(pow(log1p(cost_usd * 1000000), 2), status = 'ok'),
    countIf(status = 'ok' AND predicted_quality >= 0),
    sumIf(predicted_quality, status = 'ok' AND predicted_quality >= 0),
    sumIf(predicted_quality * predicted_quality, status = 'ok' AND predicted_quality >= 0)
FROM {db}.requests FINAL
WHERE {where}
GROUP BY period, task, model
"""
_ATTEMPTS = """
SELECT {period} AS period, provider, count(), countIf(outcome != 'ok')
FROM {db}.attempts FINAL
WHERE {where}
GROUP BY period, provider
"""
_FEEDBACK = """
SELECT {period} AS period, task, kind, count(), sum(value), sum(value * value)
FROM {db}.decision_feedback
WHERE {where}
GROUP BY period, task, kind
"""


def read_windows(
    run: Runner, database: str, baseline: Window, recent: Window, tenant: str | None = None
) -> tuple[WindowStats, WindowStats]:
    """Both windows' aggregates, for one tenant or all."""
    parts = _sql_parts(database, baseline, recent, tenant)
    tasks: dict[str, dict[str, TaskWindow]] = {"baseline": {}, "recent": {}}
    providers: dict[str, dict[str, ProviderWindow]] = {"baseline": {}, "recent": {}}
    for period, task, model, *sums in run(_REQUESTS.format(**parts, fell_back=FELL_BACK))[1]:
        seen = tasks[period].get(task, TaskWindow())
        tasks[period][task] = _add_requests(seen, str(model), sums)
    for period, provider, calls, errors in run(_ATTEMPTS.format(**parts))[1]:
        if provider:
            providers[period][provider] = ProviderWindow(attempts=calls, errors=errors)
    for period, task, kind, n, total, total_sq in run(_FEEDBACK.format(**parts))[1]:
        seen = tasks[period].get(task, TaskWindow())
        feedback = seen.feedback | {kind: Moments(n=n, total=total, total_sq=total_sq)}
        tasks[period][task] = seen.model_copy(update={"feedback": feedback})
    return (
        WindowStats(
            start=baseline.start,
            end=baseline.end,
            tasks=tasks["baseline"],
            providers=providers["baseline"],
        ),
        WindowStats(
            start=recent.start, end=recent.end, tasks=tasks["recent"], providers=providers["recent"]
        ),
    )


def _sql_parts(
    database: str, baseline: Window, recent: Window, tenant: str | None
) -> dict[str, str]:
    if tenant is not None and not re.fullmatch(ID_PATTERN, tenant):
        raise UsageError(f"--tenant: {tenant!r} is not a tenant id")
    in_recent = _between(recent)
    where = f"({_between(baseline)} OR {in_recent})"
    if tenant is not None:
        where += f" AND tenant = '{tenant}'"  # checked against ID_PATTERN above
    return {
        "db": database,
        "period": f"if({in_recent}, 'recent', 'baseline')",
        "where": where,
    }


def _between(window: Window) -> str:
    return f"(finished_at >= {_instant(window.start)} AND finished_at < {_instant(window.end)})"


def _instant(moment: datetime) -> str:
    # Built from a datetime, never from user text: nothing to inject.
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"toDateTime64('{text}', 3, 'UTC')"


def _add_requests(seen: TaskWindow, model: str, sums: Sequence[Any]) -> TaskWindow:
    """``seen`` plus one (task, model) group's row of ``_REQUESTS``."""
    requests, failed, fell_back, cost, cost_sq, log_cost, log_cost_sq, *predicted = sums
    answered = int(requests) - int(failed)
    answered_by = dict(seen.answered_by)
    if model and answered:
        answered_by[model] = answered_by.get(model, 0) + answered
    return TaskWindow(
        requests=seen.requests + int(requests),
        failed=seen.failed + int(failed),
        answered_by=answered_by,
        fell_back=seen.fell_back + int(fell_back),
        cost=seen.cost + Moments(n=answered, total=cost, total_sq=cost_sq),
        log_cost=seen.log_cost + Moments(n=answered, total=log_cost, total_sq=log_cost_sq),
        predicted_quality=seen.predicted_quality
        + Moments(n=predicted[0], total=predicted[1], total_sq=predicted[2]),
        feedback=seen.feedback,
    )
