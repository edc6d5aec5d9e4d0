"""Reading the report: the telemetry source's numbers, then each budget's burn-down."""

from datetime import datetime, timedelta

from commands.telemetry_reader import query_telemetry
from processors.report_math import budget_scopes, burn_downs, spend_window_start
from schemas.config import SwitchyardConfig
from schemas.errors import TelemetryUnavailable
from schemas.report import Report
from sinks.clickhouse import database_of
from sinks.report_source import ReportSource
from streams.local.environment import Environment

NO_TELEMETRY = (
    "no telemetry yet: the telemetry database has no requests table. Start the stack "
    "(`switchyard up`) and send jobs, or run `switchyard demo`, then ask again"
)


def build_report(
    env: Environment,
    config: SwitchyardConfig,
    window: timedelta,
    now: datetime,
    tenant: str | None = None,
) -> Report:
    """The report of the ``window`` up to ``now``; TelemetryUnavailable when there is no
    telemetry database yet (or it cannot be read)."""
    source = ReportSource(lambda sql: query_telemetry(env, sql), database_of(env.clickhouse_url))
    if not source.has_telemetry():
        raise TelemetryUnavailable(NO_TELEMETRY)
    scopes = budget_scopes(config, tenant)
    # No budget in play: no spend to read (a window of nothing, not all history).
    spend_since = spend_window_start(scopes, now) if scopes else now
    data = source.read(now - window, now, tenant, spend_since)
    return Report(generated_at=now, data=data, burn=burn_downs(config, data.spend, now, tenant))
