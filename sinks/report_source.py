"""``switchyard report``'s numbers, read from the telemetry tables with a few aggregate queries.

The only module that knows where the report's numbers live: each reader below
is one ``GROUP BY`` query over ``requests FINAL`` or ``attempts FINAL`` that
returns rows already shaped as a ``schemas.report`` model, so pointing the
report at rollup tables means editing these queries and nothing else.

Queries run through ``query`` (a read-only runner: ``TelemetryReader.query``,
or the CLI's ``query_telemetry``, which goes through the telemetry worker's
query service while it holds the embedded engine). Rows may come back as
tuples or JSON lists, datetimes as objects or ISO text: the models parse both.

Time series are in buckets of ``bucket_s`` seconds (``processors.report_math.
bucket_seconds`` of the data's span unless given); budget spend is hourly.
"""

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from processors.report_math import bucket_seconds, provider_totals
from schemas.errors import UsageError
from schemas.messages import ID_PATTERN
from schemas.report import (
    CostPoint,
    LatencyBin,
    MixPoint,
    ModelSummary,
    ProviderPoint,
    ReportData,
    SpendPoint,
    Totals,
)
from sinks.rollups import FELL_BACK

Query = Callable[[str], tuple[list[str], Sequence[Sequence[Any]]]]

# Calls that failed; circuit_open and throttled attempts were skipped, not calls.
FAILED_CALLS = "('error', 'timeout', 'unavailable', 'rate_limited')"
SKIPPED = "('circuit_open', 'throttled')"
# Latency histogram: this many log-spaced bins per decade of milliseconds.
BINS_PER_DECADE = 8
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ReportSource:
    """Reads one window of ``database``'s telemetry, for every tenant or one."""

    def __init__(self, query: Query, database: str) -> None:
        if not _IDENTIFIER.match(database):
            raise UsageError(f"database name {database!r} is not a plain identifier")
        self.query = query
        self.database = database

    def has_telemetry(self) -> bool:
        """Whether the ``requests`` table exists (a telemetry worker has migrated it)."""
        _, rows = self.query(f"EXISTS TABLE {self.database}.requests")
        return bool(rows and int(rows[0][0]))

    def read(
        self,
        since: datetime,
        until: datetime,
        tenant: str | None = None,
        spend_since: datetime | None = None,
        bucket_s: int | None = None,
    ) -> ReportData:
        """Everything of ``[since, until]``; budget spend from ``spend_since`` (None: all)."""
        if tenant is not None and not re.fullmatch(ID_PATTERN, tenant):
            raise UsageError(f"--tenant {tenant!r} is not a tenant name")
        where = _where(since, until, tenant)
        totals = self.totals(where)
        if bucket_s is None:
            first, last = totals.first_at, totals.last_at
            bucket_s = bucket_seconds(last - first if first and last else until - since)
        provider_series = self.provider_series(where, bucket_s)
        return ReportData(
            since=since,
            until=until,
            tenant=tenant,
            bucket_s=bucket_s,
            totals=totals,
            models=self.models(where),
            latency_bins=self.latency_bins(where),
            providers=provider_totals(provider_series),
            cost_series=self.cost_series(where, bucket_s),
            provider_series=provider_series,
            mix_series=self.mix_series(where, bucket_s),
            spend_since=spend_since,
            spend=self.spend(_where(spend_since, until, tenant)),
        )

    def _rows(self, model: type[BaseModel], sql: str) -> list[Any]:
        columns, rows = self.query(sql)
        return [model.model_validate(dict(zip(columns, row, strict=True))) for row in rows]

    def _table(self, name: str) -> str:
        return f"{self.database}.{name} FINAL"

    def totals(self, where: str) -> Totals:
        sql = (
            "SELECT count() AS requests, countIf(status = 'ok') AS ok, "  # noqa: S608
            "sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens, "
            "sum(output_tokens) AS output_tokens, uniqExact(tenant) AS tenants, "
            "min(finished_at) AS first_at, max(finished_at) AS last_at "
            f"FROM {self._table('requests')} WHERE {where}"
        )
        found: Totals = self._rows(Totals, sql)[0]
        if found.requests == 0:  # min() and max() of nothing are the epoch
            return Totals()
        return found

    def models(self, where: str) -> list[ModelSummary]:
        sql = (
            "SELECT model, count() AS requests, sum(cost_usd) AS cost_usd, "  # noqa: S608
            "quantiles(0.5, 0.95, 0.99)(total_ms) AS q, "
            "q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms "
            f"FROM {self._table('requests')} WHERE {where} "
            "GROUP BY model ORDER BY cost_usd DESC, model"
        )
        return self._rows(ModelSummary, sql)

    def latency_bins(self, where: str) -> list[LatencyBin]:
        # Under 1 ms counts in the first bin, [1 ms, 10^(1/8) ms).
        sql = (
            "SELECT model, "  # noqa: S608
            f"floor(log10(greatest(total_ms, 1)) * {BINS_PER_DECADE}) AS bin, "
            f"pow(10, bin / {BINS_PER_DECADE}) AS low_ms, "
            f"pow(10, (bin + 1) / {BINS_PER_DECADE}) AS high_ms, count() AS requests "
            f"FROM {self._table('requests')} WHERE {where} "
            "GROUP BY model, bin ORDER BY model, bin"
        )
        return self._rows(LatencyBin, sql)

    def cost_series(self, where: str, bucket_s: int) -> list[CostPoint]:
        sql = (
            f"SELECT {_bucket(bucket_s)} AS at, model, sum(cost_usd) AS cost_usd, "  # noqa: S608
            f"count() AS requests FROM {self._table('requests')} WHERE {where} "
            "GROUP BY at, model ORDER BY at, model"
        )
        return self._rows(CostPoint, sql)

    def mix_series(self, where: str, bucket_s: int) -> list[MixPoint]:
        sql = (
            f"SELECT {_bucket(bucket_s)} AS at, task, model, count() AS requests "  # noqa: S608
            f"FROM {self._table('requests')} WHERE {where} "
            "GROUP BY at, task, model ORDER BY at, task, model"
        )
        return self._rows(MixPoint, sql)

    def provider_series(self, where: str, bucket_s: int) -> list[ProviderPoint]:
        """Calls and failed calls (``attempts``) with answers and fallbacks (``requests``)."""
        bucket = _bucket(bucket_s)
        calls_sql = (
            f"SELECT {bucket} AS at, provider, "  # noqa: S608
            f"countIf(outcome NOT IN {SKIPPED}) AS calls, "
            f"countIf(outcome IN {FAILED_CALLS}) AS errors "
            f"FROM {self._table('attempts')} WHERE {where} AND provider NOT IN ('', '-') "
            "GROUP BY at, provider"
        )
        answers_sql = (
            f"SELECT {bucket} AS at, provider, countIf(status = 'ok') AS answered, "  # noqa: S608
            f"countIf(status = 'ok' AND {FELL_BACK}) AS fallbacks "
            f"FROM {self._table('requests')} WHERE {where} AND provider != '' "
            "GROUP BY at, provider"
        )
        merged: dict[tuple[datetime, str], ProviderPoint] = {}
        for sql in (calls_sql, answers_sql):
            for point in self._rows(ProviderPoint, sql):
                key = (point.at, point.provider)
                known = merged.setdefault(key, ProviderPoint(at=point.at, provider=point.provider))
                for field in ("calls", "errors", "answered", "fallbacks"):
                    setattr(known, field, getattr(known, field) + getattr(point, field))
        return [merged[key] for key in sorted(merged)]

    def spend(self, where: str) -> list[SpendPoint]:
        sql = (
            "SELECT toStartOfHour(finished_at) AS at, tenant, team, app, "  # noqa: S608
            f"sum(cost_usd) AS cost_usd FROM {self._table('requests')} WHERE {where} "
            "GROUP BY at, tenant, team, app ORDER BY at, tenant, team, app"
        )
        return self._rows(SpendPoint, sql)


def _bucket(seconds: int) -> str:
    return f"toStartOfInterval(finished_at, INTERVAL {int(seconds)} SECOND)"


def _time(at: datetime) -> str:
    # Built from a datetime, not from user text: nothing to inject.
    text = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"toDateTime64('{text}', 3, 'UTC')"


def _where(since: datetime | None, until: datetime, tenant: str | None) -> str:
    """The window's condition; ``tenant`` was checked against ID_PATTERN (no quotes)."""
    parts = [f"finished_at <= {_time(until)}"]
    if since is not None:
        parts.append(f"finished_at >= {_time(since)}")
    if tenant is not None:
        parts.append(f"tenant = '{tenant}'")
    return " AND ".join(parts)
