"""``switchyard whatif``: read logged requests and latencies, replay them, print the report.

The replay itself is pure (``processors.whatif``); this module only reads the
telemetry database (through ``run_query``, so it works whether the telemetry
worker holds the embedded database or not) and prints the result.
"""

from datetime import datetime, timedelta
from pathlib import Path

from commands.console import Column, print_table
from commands.telemetry_reader import query_telemetry, since_sql, telemetry_table
from processors.router import RoutingContext
from processors.strategies.learned import Learned
from processors.whatif import GroupReport, LoggedRequest, ObservedLatency, WhatIfReport, compare
from schemas.config import SwitchyardConfig
from streams.local.environment import Environment

_COLUMNS = ", ".join(LoggedRequest.model_fields)


def read_requests(env: Environment, since: datetime) -> list[LoggedRequest]:
    """Every request that finished at or after ``since``, once each (FINAL)."""
    sql = (
        f"SELECT {_COLUMNS} FROM {telemetry_table(env, 'requests')} FINAL "  # noqa: S608
        f"WHERE finished_at >= {since_sql(since)} ORDER BY finished_at, request_id"
    )
    columns, rows = query_telemetry(env, sql)
    return [LoggedRequest.model_validate(dict(zip(columns, row, strict=True))) for row in rows]


def read_latency(env: Environment, since: datetime) -> dict[str, ObservedLatency]:
    """Per model: successful calls since ``since`` and their mean latency."""
    sql = (
        "SELECT model, count(), avg(latency_ms) "  # noqa: S608
        f"FROM {telemetry_table(env, 'attempts')} FINAL "
        f"WHERE outcome = 'ok' AND finished_at >= {since_sql(since)} GROUP BY model"
    )
    _, rows = query_telemetry(env, sql)
    return {str(model): ObservedLatency(int(n), float(mean)) for model, n, mean in rows}


def run_whatif(
    env: Environment,
    current: SwitchyardConfig,
    new: SwitchyardConfig,
    window: timedelta,
    now: datetime,
) -> WhatIfReport:
    """Replay the requests of the last ``window`` under ``current`` and ``new``."""
    since = now - window
    rows = read_requests(env, since)
    latency = read_latency(env, since)
    before, after = learned_context(current), learned_context(new)
    return compare(rows, current, new, latency, now, before, after)


def with_router(config: SwitchyardConfig, router_dir: Path) -> SwitchyardConfig:
    """``config`` with its learned strategy using the trained router in ``router_dir``."""
    learned = config.routing.learned.model_copy(update={"artifact": str(router_dir)})
    routing = config.routing.model_copy(update={"learned": learned})
    return config.model_copy(update={"routing": routing})


def learned_context(config: SwitchyardConfig) -> RoutingContext | None:
    """The trained router ``config`` names, loaded as the router worker loads it; else None."""
    settings = config.routing.learned
    if settings.artifact is None:
        return None
    from sinks.router_artifact import load_router

    return RoutingContext(learned=Learned(load_router(Path(settings.artifact)), settings.aliases))


COLUMNS = (
    Column("tenant", 12),
    Column("task", 14),
    Column("n", 4, right=True),
    Column("changed", right=True),
    Column("cost before", right=True),
    Column("cost after", right=True),
    Column("change", 7, right=True),
    Column("quality", 12, right=True),
    Column("latency ms", 13, right=True),
    Column("rejected", 10, right=True),
)


def print_report(report: WhatIfReport) -> None:
    """The report as a table: one row per tenant and task, then the total; then the moves."""
    print_table(COLUMNS, [_row(g) for g in report.groups], [_row(report.total)])
    lines = [] if report.groups else ["no logged requests in the window"]
    moves = [f"  {g.tenant}/{g.task}: {m} x{k}" for g in report.groups for m, k in g.moves.items()]
    if moves:
        lines += ["", "model changes (current -> new):", *moves]
    if report.router_before or report.router_after:
        lines += ["", f"learned router: {report.router_before} -> {report.router_after}"]
    if lines:
        print("\n".join(lines))


def _row(g: GroupReport) -> tuple[str, ...]:
    return (
        g.tenant,
        g.task,
        str(g.n),
        f"{g.changed_share:.0%}",
        f"{g.cost_before_usd:.6f}",
        f"{g.cost_after_usd:.6f}",
        "n/a" if g.cost_change_pct is None else f"{g.cost_change_pct:+.1f}%",
        _pair(g.quality_before, g.quality_after, ".2f"),
        _pair(g.latency_before_ms, g.latency_after_ms, ".0f"),
        f"{g.rejected_before} -> {g.rejected_after}",
    )


def _pair(before: float | None, after: float | None, spec: str) -> str:
    if before is None or after is None:
        return "-"
    return f"{before:{spec}} -> {after:{spec}}"
