"""Reading telemetry back, whichever process holds the database."""

from typing import Any

import orjson

from sinks.clickhouse import DatabaseLocked, TelemetrySink, database_of, is_embedded, open_client
from sinks.query_service import check_read_only, query_remote
from streams.broker import pid_alive
from streams.environment import Environment
from streams.telemetry_worker import service_file


def run_query(env: Environment, sql: str) -> tuple[list[str], list[Any]]:
    """Run a read-only query: on the server, on the telemetry worker, or on the files."""
    check_read_only(sql)
    url = env.clickhouse_url
    if is_embedded(url):
        service = _live_service(env)
        if service is not None:
            return query_remote(service, sql)
    try:
        client = open_client(url)
    except DatabaseLocked:
        raise RuntimeError(
            "the embedded telemetry database is held by a process that serves no queries"
        ) from None
    return TelemetrySink(client, database_of(url)).query(sql)


def _live_service(env: Environment) -> str | None:
    try:
        state = orjson.loads(service_file(env.state_dir).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return str(state["url"]) if pid_alive(int(state["pid"])) else None


def telemetry_table(env: Environment, name: str) -> str:
    return f"{database_of(env.clickhouse_url)}.{name}"
