"""The report's arithmetic: time buckets, budget periods and burn-down, rates, mixes.

Pure functions over ``schemas.report`` and the config; the clock is an argument.

Burn-down: a budget's daily rate is its spend over the last ``BURN_WINDOW`` (or
since the hour of its first spend in it, if later), the definition the shipped
``budget_burn`` question uses too; what is left of the current period's budget
at that rate gives the days to exhaustion, and the spend at the period's end.
The elapsed time counts at least ``MIN_ELAPSED`` so that a fresh window does not
extrapolate one request into a huge rate. A ``total`` budget's period starts at
its first spend.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from schemas.config import SwitchyardConfig
from schemas.report import (
    BudgetBurn,
    MixPoint,
    Period,
    ProviderPoint,
    ProviderSummary,
    SpendPoint,
)

# Bucket widths a time series may use, narrowest first; the report takes the
# narrowest that keeps a window within MAX_BUCKETS points.
BUCKET_LADDER_S = (1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
MAX_BUCKETS = 72
MIN_ELAPSED = timedelta(hours=1)
BURN_WINDOW = timedelta(days=7)  # the budget_burn question's default burn_days
DAY = timedelta(days=1)


def bucket_seconds(span: timedelta) -> int:
    """The narrowest ladder width that cuts ``span`` into at most ``MAX_BUCKETS`` buckets."""
    seconds = span.total_seconds()
    for width in BUCKET_LADDER_S:
        if seconds / width <= MAX_BUCKETS:
            return width
    return BUCKET_LADDER_S[-1]


def bucket_range(first: datetime, last: datetime, bucket_s: int) -> list[datetime]:
    """The starts of the buckets from ``first``'s to ``last``'s, aligned on the epoch as
    ClickHouse's ``toStartOfInterval`` aligns them."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=bucket_s)
    at = epoch + (first.astimezone(UTC) - epoch) // step * step
    starts = []
    while at <= last:
        starts.append(at)
        at += step
    return starts


def period_bounds(period: Period, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The current period's start and end in UTC (both None for ``total``: no bounds)."""
    now = now.astimezone(UTC)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + DAY
    if period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = start.replace(year=start.year + (start.month == 12),
                                  month=start.month % 12 + 1)  # fmt: skip
        return start, following
    return None, None


def rate(part: int | float, whole: int | float) -> float | None:
    """``part / whole``, None when there is no whole."""
    return part / whole if whole else None


Scope = tuple[str, str, Period, float]  # tenant, scope, period, budget USD


def budget_scopes(config: SwitchyardConfig, tenant: str | None = None) -> list[Scope]:
    """Every budget in the config (of ``tenant`` only, if given), tenants' own first."""
    found: list[Scope] = []
    for name, spec in sorted(config.tenants.items()):
        if tenant is not None and name != tenant:
            continue
        if spec.budget_usd is not None:
            found.append((name, "tenant", spec.budget_period, spec.budget_usd))
        for team, budget in sorted(spec.budgets.teams.items()):
            found.append((name, f"team:{team}", budget.period, budget.usd))
        for app, budget in sorted(spec.budgets.apps.items()):
            found.append((name, f"app:{app}", budget.period, budget.usd))
    return found


def spend_window_start(scopes: Iterable[Scope], now: datetime) -> datetime | None:
    """How far back spend must be read: the earliest period start or the burn window's
    (None: all history)."""
    starts = [period_bounds(period, now)[0] for _, _, period, _ in scopes]
    if not starts or any(start is None for start in starts):
        return None
    return min([*(s for s in starts if s is not None), now - BURN_WINDOW])


def _in_scope(point: SpendPoint, tenant: str, scope: str) -> bool:
    if point.tenant != tenant:
        return False
    kind, _, name = scope.partition(":")
    return kind == "tenant" or (point.team if kind == "team" else point.app) == name


def burn_down(scope: Scope, spend: Iterable[SpendPoint], now: datetime) -> BudgetBurn:
    """One budget's burn in its current period, from hourly spend points."""
    tenant, name, period, budget = scope
    start, end = period_bounds(period, now)
    scoped = [p for p in spend if _in_scope(p, tenant, name)]
    points = sorted((p for p in scoped if start is None or p.at >= start), key=lambda p: p.at)
    if start is None:  # a total budget: its period starts at its first spend
        start = points[0].at if points else now
    hourly: dict[datetime, float] = defaultdict(float)
    for point in points:
        hourly[min(point.at + timedelta(hours=1), now)] += point.cost_usd
    cumulative, spent = [(start, 0.0)], 0.0
    for at, cost in sorted(hourly.items()):
        spent += cost
        cumulative.append((at, spent))
    if cumulative[-1][0] < now:
        cumulative.append((now, spent))
    daily = burn_rate(scoped, now)
    left = max(budget - spent, 0.0)
    return BudgetBurn(
        tenant=tenant,
        scope=name,
        period=period,
        budget_usd=budget,
        period_start=start,
        period_end=end,
        spent_usd=spent,
        daily_rate_usd=daily,
        days_to_exhaustion=left / daily if daily > 0 else None,
        projected_usd=None if end is None else spent + daily * ((end - now) / DAY),
        cumulative=cumulative,
    )


def burn_rate(spend: Iterable[SpendPoint], now: datetime) -> float:
    """USD per day over the last ``BURN_WINDOW``, or since the first spend in it."""
    recent = [p for p in spend if now - BURN_WINDOW <= p.at <= now]
    if not recent:
        return 0.0
    since = min(p.at for p in recent)
    return sum(p.cost_usd for p in recent) / (max(now - since, MIN_ELAPSED) / DAY)


def burn_downs(
    config: SwitchyardConfig, spend: list[SpendPoint], now: datetime, tenant: str | None = None
) -> list[BudgetBurn]:
    """Every budget's burn-down (of ``tenant`` only, if given)."""
    return [burn_down(scope, spend, now) for scope in budget_scopes(config, tenant)]


def task_mix(points: Iterable[MixPoint]) -> dict[str, list[tuple[str, int]]]:
    """Per task, each model's requests, most first (ties by name)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for point in points:
        counts[point.task][point.model] += point.requests
    return {
        task: sorted(models.items(), key=lambda item: (-item[1], item[0]))
        for task, models in sorted(counts.items())
    }


def provider_totals(points: Iterable[ProviderPoint]) -> list[ProviderSummary]:
    """Each provider's counts over every bucket, busiest first (ties by name)."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for point in points:
        counts = sums[point.provider]
        for index, value in enumerate((point.calls, point.errors, point.answered, point.fallbacks)):
            counts[index] += value
    ordered = sorted(sums.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        ProviderSummary(provider=name, calls=c, errors=e, answered=a, fallbacks=f)
        for name, (c, e, a, f) in ordered
    ]
