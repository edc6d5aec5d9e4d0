"""Hourly rollups: what dashboards read instead of raw rows.

Each rollup is an AggregatingMergeTree table fed by a materialized view on its source
table, so every block the telemetry worker inserts is also summed into its hour. Sums
are ``SimpleAggregateFunction(sum, ...)``; latency is a t-digest state of the
p50/p95/p99 (``quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_ms)`` reads it back over
any grouping). Read them with ``sum()`` and ``...Merge`` over a GROUP BY: rows of one key
are merged in the background, at no fixed time.

``requests_hourly`` (from ``requests``) per hour, tenant, team, app, task, quality (the
tier), model, provider, strategy, route and config version:

- ``route``: ``cache`` (a cached answer), ``downgraded`` (served by a cheaper model over a
  rate limit or a soft budget), ``cascade`` (the cascade strategy chose), ``routed``.
- ``requests``; ``answered`` (status ok), ``errors`` (status error: no provider
  answered), ``refused`` (rejected or expired before any call).
- ``fallbacks``: answered or failed after more than one provider call, not counting a
  cascade's escalation, which ``escalations`` counts (a ``check_failed`` step).
- ``cache_hits``, ``downgrades``; ``input_tokens``, ``output_tokens``, ``cost_usd``.
- ``latency_ms``: quantile state of ``total_ms`` of answered requests.

``attempts_hourly`` (from ``attempts``) per hour, tenant, model and provider: ``calls``,
``failed_calls`` (outcome not ok) and the quantile state of each call's ``latency_ms``.

A view counts every block inserted into its source: ``TelemetrySink`` makes a repeated
block a no-op (see its docstring for what that covers).
"""

from dataclasses import dataclass
from typing import Any

QUANTILES = "quantilesTDigest(0.5, 0.95, 0.99)"
_SUM_U = "SimpleAggregateFunction(sum, UInt64)"
_DOWNGRADED = (
    'multiSearchAny(steps, [\'"kind":"rate_downgraded"\', \'"kind":"budget_downgraded"\'])'
)
_ESCALATED = 'position(steps, \'"kind":"check_failed"\') > 0'
# One definition of a fallback for every reader (rollups, report, drift): a request that
# took more than one provider call, a cascade's escalation aside.
FELL_BACK = f"attempts > 1 AND NOT ({_ESCALATED})"


@dataclass(frozen=True)
class Rollup:
    name: str
    source: str
    dimensions: tuple[tuple[str, str], ...]  # (column, expression over the source)
    measures: tuple[tuple[str, str, str], ...]  # (column, type, aggregate expression)
    order_by: str

    def create_table(self, db: str, window: int) -> str:
        columns = [
            "hour DateTime('UTC')",
            *(f"{name} LowCardinality(String)" for name, _ in self.dimensions[1:]),
            *(f"{name} {type_}" for name, type_, _ in self.measures),
        ]
        return (
            f"CREATE TABLE IF NOT EXISTS {db}.{self.name} ({', '.join(columns)}) "
            "ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(hour) "
            f"ORDER BY ({self.order_by}) "
            f"SETTINGS non_replicated_deduplication_window = {window}"
        )

    def select(self, db: str, final: bool) -> str:
        """The rollup's rows computed from its source (``FINAL``: deduplicated rows)."""
        names = [name for name, _ in self.dimensions]
        values = [f"{expr} AS {name}" for name, expr in self.dimensions]
        values += [f"{expr} AS {name}" for name, _, expr in self.measures]
        source = f"{db}.{self.source}{' FINAL' if final else ''}"
        # Names from this module and a checked database name: nothing from a user.
        return f"SELECT {', '.join(values)} FROM {source} GROUP BY {', '.join(names)}"  # noqa: S608


def _plain(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


HOUR = ("hour", "toDateTime(toStartOfHour(finished_at), 'UTC')")

REQUESTS_HOURLY = Rollup(
    name="requests_hourly",
    source="requests",
    dimensions=(
        HOUR,
        *_plain("tenant", "team", "app", "task", "quality", "model", "provider", "strategy"),
        (
            "route",
            f"multiIf(cache = 'hit', 'cache', {_DOWNGRADED}, 'downgraded', "
            "strategy = 'cascade', 'cascade', 'routed')",
        ),
        ("config_version", "config_version"),
    ),
    measures=(
        ("requests", _SUM_U, "count()"),
        ("answered", _SUM_U, "countIf(status = 'ok')"),
        ("errors", _SUM_U, "countIf(status = 'error')"),
        ("refused", _SUM_U, "countIf(status IN ('rejected', 'expired'))"),
        ("fallbacks", _SUM_U, f"countIf({FELL_BACK})"),
        ("escalations", _SUM_U, f"countIf({_ESCALATED})"),
        ("cache_hits", _SUM_U, "countIf(cache = 'hit')"),
        ("downgrades", _SUM_U, f"countIf({_DOWNGRADED})"),
        ("input_tokens", _SUM_U, "sum(toUInt64(input_tokens))"),
        ("output_tokens", _SUM_U, "sum(toUInt64(output_tokens))"),
        ("cost_usd", "SimpleAggregateFunction(sum, Float64)", "sum(cost_usd)"),
        (
            "latency_ms",
            f"AggregateFunction({QUANTILES}, Float64)",
            "quantilesTDigestStateIf(0.5, 0.95, 0.99)(total_ms, status = 'ok')",
        ),
    ),
    order_by="tenant, hour, model, team, app, task, quality, provider, strategy, route, "
    "config_version",
)

ATTEMPTS_HOURLY = Rollup(
    name="attempts_hourly",
    source="attempts",
    dimensions=(HOUR, *_plain("tenant", "model", "provider")),
    measures=(
        ("calls", _SUM_U, "count()"),
        ("failed_calls", _SUM_U, "countIf(outcome != 'ok')"),
        (
            "latency_ms",
            f"AggregateFunction({QUANTILES}, Float64)",
            "quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms)",
        ),
    ),
    order_by="tenant, hour, model, provider",
)

ROLLUPS = (REQUESTS_HOURLY, ATTEMPTS_HOURLY)


def create_rollup(client: Any, db: str, rollup: Rollup, window: int) -> None:
    """Create ``rollup``, fill it from its source's rows, then attach its view.

    The view comes last, so the backfill and the view never count a row both; a run cut
    short before the view exists starts the backfill again from empty. Migrations run
    before the telemetry worker inserts anything, so no row arrives in between.
    """
    view = f"{rollup.name}_mv"
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        parameters={"d": db, "t": view},
    ).result_rows[0][0]
    if exists:
        return
    client.command(rollup.create_table(db, window))
    client.command(f"TRUNCATE TABLE {db}.{rollup.name}")
    client.command(f"INSERT INTO {db}.{rollup.name} {rollup.select(db, final=True)}")
    client.command(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{view} TO {db}.{rollup.name} "
        f"AS {rollup.select(db, final=False)}"
    )
