"""The operator report's data: what ``switchyard report`` prints and plots, already aggregated.

``ReportData`` is what the telemetry source (``sinks.report_source``) reads: totals,
per-model and per-provider tables, and time series in buckets of ``bucket_s``
seconds. ``Report`` adds what is computed from it and the config
(``processors.report_math``): each budget's burn-down. Renderers
(``commands.report``) read only these models, so where the numbers come from
(raw rows or rollup tables) can change without touching them.

Datetimes are UTC; a naive one (as the engine returns them) is taken as UTC.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Period = Literal["day", "month", "total"]


class Totals(BaseModel):
    """Every request of the window, once each."""

    requests: int = 0
    ok: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tenants: int = 0
    first_at: UtcDatetime | None = None
    last_at: UtcDatetime | None = None


class ModelSummary(BaseModel):
    """One answering model: its requests, spend and end-to-end latency quantiles (total_ms)."""

    model: str
    requests: int
    cost_usd: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


class LatencyBin(BaseModel):
    """How many of a model's requests took from ``low_ms`` up to ``high_ms``."""

    model: str
    low_ms: float
    high_ms: float
    requests: int


class ProviderSummary(BaseModel):
    """One provider's calls and the requests it answered.

    ``calls``: attempts that reached it (skipped ones, circuit open or throttled, are not
    calls); ``errors``: calls that failed (error, timeout, unavailable, rate limited).
    ``answered``: requests it answered; ``fallbacks``: of those, answered after an earlier
    attempt failed or was skipped (more than one attempt).
    """

    provider: str
    calls: int
    errors: int
    answered: int
    fallbacks: int


class CostPoint(BaseModel):
    at: UtcDatetime
    model: str
    cost_usd: float
    requests: int


class ProviderPoint(BaseModel):
    """A provider in one bucket: ``ProviderSummary``'s counts."""

    at: UtcDatetime
    provider: str
    calls: int = 0
    errors: int = 0
    answered: int = 0
    fallbacks: int = 0


class MixPoint(BaseModel):
    """Requests of one task that one model answered in one bucket."""

    at: UtcDatetime
    task: str
    model: str
    requests: int


class SpendPoint(BaseModel):
    """Spend of one tenant's team and app in one hour (for budget burn-down)."""

    at: UtcDatetime
    tenant: str
    team: str
    app: str
    cost_usd: float


class ReportData(BaseModel):
    """What the telemetry source reads for a window ``[since, until]``.

    ``spend`` reaches back to the start of the earliest budget period in play
    (``spend_since``; None = all history), not only to ``since``.
    """

    since: UtcDatetime
    until: UtcDatetime
    tenant: str | None = None
    bucket_s: int = Field(gt=0)
    totals: Totals
    models: list[ModelSummary] = Field(default_factory=list)
    latency_bins: list[LatencyBin] = Field(default_factory=list)
    providers: list[ProviderSummary] = Field(default_factory=list)
    cost_series: list[CostPoint] = Field(default_factory=list)
    provider_series: list[ProviderPoint] = Field(default_factory=list)
    mix_series: list[MixPoint] = Field(default_factory=list)
    spend_since: UtcDatetime | None = None
    spend: list[SpendPoint] = Field(default_factory=list)


class BudgetBurn(BaseModel):
    """One budget (a tenant's, or one of its team's or app's) in its current period.

    ``daily_rate_usd`` is the spend so far over the days elapsed in the period;
    ``days_to_exhaustion`` what is left at that rate (None: nothing spent yet;
    0: already exhausted); ``projected_usd`` the spend at the period's end at that
    rate (None for a ``total`` budget, which has no end).
    """

    tenant: str
    scope: str  # "tenant", "team:<name>" or "app:<name>"
    period: Period
    budget_usd: float
    period_start: UtcDatetime
    period_end: UtcDatetime | None
    spent_usd: float
    daily_rate_usd: float
    days_to_exhaustion: float | None
    projected_usd: float | None
    cumulative: list[tuple[UtcDatetime, float]] = Field(default_factory=list)


class Report(BaseModel):
    """The whole report: the data read and every budget's burn-down."""

    generated_at: UtcDatetime
    data: ReportData
    burn: list[BudgetBurn] = Field(default_factory=list)
