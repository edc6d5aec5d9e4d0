"""Reading telemetry back, whichever process holds the database.

Every read is checked (``sinks.sql_guard.check_read_only``) and runs in a
read-only session: on the telemetry worker's query service (with the token from
its state file) when it holds the embedded database, else on a read-only
client of this process (``sinks.clickhouse.open_reader``).
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.errors import DatabaseLocked, TelemetryUnavailable
from sinks.clickhouse import ClickHouseError, database_of, is_embedded, open_reader
from sinks.query_service import check_read_only, query_remote
from streams.local.broker import pid_alive
from streams.local.environment import Environment
from streams.workers.telemetry import service_file


def run_query(
    env: Environment, sql: str, params: Mapping[str, Any] | None = None
) -> tuple[list[str], list[Any]]:
    """Run a read-only query with ``params`` bound by the engine: on the server, on the
    telemetry worker, or on the files."""
    check_read_only(sql)
    url = env.clickhouse_url
    if is_embedded(url):
        service = _live_service(env)
        if service is not None:
            service_url, token = service
            return query_remote(service_url, token, sql, dict(params or {}))
    try:
        reader = open_reader(url)
    except DatabaseLocked:
        raise TelemetryUnavailable(
            "the embedded telemetry database is held by a process that serves no queries"
        ) from None
    return reader.query(sql, params)


def _live_service(env: Environment) -> tuple[str, str] | None:
    """The running telemetry worker's query service: its URL and token."""
    try:
        state = orjson.loads(service_file(env.state_dir).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if not pid_alive(int(state["pid"])):
        return None
    return str(state["url"]), str(state.get("token", ""))


def telemetry_table(env: Environment, name: str) -> str:
    return f"{database_of(env.clickhouse_url)}.{name}"


def query_telemetry(
    env: Environment, sql: str, params: Mapping[str, Any] | None = None
) -> tuple[list[str], list[Any]]:
    """``run_query`` for commands: a database error becomes one readable line."""
    try:
        return run_query(env, sql, params)
    except ClickHouseError as exc:
        # A database no telemetry worker has migrated yet, typically.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TelemetryUnavailable(f"cannot read telemetry: {first}") from None


def since_sql(since: datetime) -> str:
    """A DateTime64 literal for ``since``."""
    # Built from a datetime, not from user text: nothing to inject.
    text = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"toDateTime64('{text}', 3, 'UTC')"
