"""Telemetry in ClickHouse, through clickhouse-connect only.

``CLICKHOUSE_URL`` picks the target: ``http(s)://user:pass@host:port/db`` for a
server, ``chdb:///absolute/path`` for the embedded engine. The embedded engine
allows one open path per process and one process per path, so on the default
the telemetry worker owns the database and serves reads for everyone else
(see ``sinks.query_service``). Every read goes through ``TelemetryReader``, on
a read-only client of its own (``sinks.sql_guard``); the writer's client only
migrates and inserts.
"""

import hashlib
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError, ProgrammingError
from pydantic import BaseModel

from schemas.errors import DatabaseLocked, UsageError
from schemas.feedback import Feedback
from schemas.telemetry import (
    AttemptRow,
    AuditRow,
    ConfigRow,
    RequestRow,
    ShadowRow,
    TelemetryEvent,
)
from sinks.base import BatchSink
from sinks.migrations import MIGRATIONS
from sinks.sql_guard import READ_ONLY_SETTINGS, check_read_only
from sinks.ttl import apply_ttls

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
REQUEST_COLUMNS = list(RequestRow.model_fields)
ATTEMPT_COLUMNS = list(AttemptRow.model_fields)
SHADOW_COLUMNS = list(ShadowRow.model_fields)
FEEDBACK_COLUMNS = list(Feedback.model_fields)
CONFIG_COLUMNS = list(ConfigRow.model_fields)
AUDIT_COLUMNS = list(AuditRow.model_fields)

Row = list[Any]


def is_embedded(url: str) -> bool:
    return url.startswith("chdb://")


def open_client(url: str, settings: dict[str, Any] | None = None) -> Any:
    """A clickhouse-connect client for ``url`` with these session ``settings``; raises
    ``DatabaseLocked`` for a held chdb path."""
    if is_embedded(url):
        path = url.removeprefix("chdb://")
        try:
            return clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=settings)
        except ProgrammingError as exc:
            if "lock" in str(exc).lower() or "already running" in str(exc).lower():
                raise DatabaseLocked(f"{path} is held by another process") from exc
            raise
    parts = urlparse(url)
    return clickhouse_connect.get_client(
        host=parts.hostname or "localhost",
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=parts.username or "default",
        password=parts.password or "",
        secure=parts.scheme == "https",
        settings=settings,
    )


def open_reader(url: str) -> "TelemetryReader":
    """A reader on a client of its own, with ``READ_ONLY_SETTINGS``: on the embedded engine a
    separate handle (settings are per handle), so a long read never blocks an insert."""
    return TelemetryReader(open_client(url, READ_ONLY_SETTINGS))


def database_of(url: str) -> str:
    """The database named in a server URL's path, ``switchyard`` otherwise."""
    if is_embedded(url):
        return "switchyard"
    return urlparse(url).path.strip("/") or "switchyard"


def migrate(client: Any, database: str, ttl_days: Mapping[str, int] | None = None) -> list[int]:
    """Apply pending migrations, then set each table's TTL to ``ttl_days`` (None: leave
    TTLs as they are); return the versions applied now.

    A migration step is a statement (``{db}`` filled in) or a function of the client and
    the database; either must be safe to run again."""
    if not _IDENTIFIER.match(database):
        raise UsageError(f"database name {database!r} is not a plain identifier")
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    versions = f"SELECT version FROM {database}.schema_migrations"  # noqa: S608 - checked name
    done = {row[0] for row in client.query(versions).result_rows}
    applied = []
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        for step in statements:
            if callable(step):
                step(client, database)
            else:
                client.command(step.format(db=database))
        client.insert(
            "schema_migrations",
            [[version, name]],
            column_names=["version", "name"],
            database=database,
        )
        applied.append(version)
    if ttl_days is not None:
        apply_ttls(client, database, ttl_days)
    return applied


Written = TelemetryEvent | Feedback | ConfigRow


class TelemetrySink(BatchSink[Written]):
    """Telemetry events into ``requests``, ``attempts``, ``shadow`` and ``audit``; feedback
    into ``feedback``; config versions into ``configs``.

    A flush makes at most one insert per table. Safe to repeat: every table
    replaces rows with the same key, so a batch written twice (flush retried,
    or topic replayed) counts once under FINAL. Feedback must carry its ``at``
    (``Feedback.received``): it is the row's version, so a replay keeps it.

    The hourly rollups (``sinks.rollups``) have no FINAL: their views count every
    block inserted. So each insert carries a deduplication token made from its rows'
    content, in any order, and ``requests``, ``attempts`` and the rollups remember
    their last ``telemetry_model.DEDUP_WINDOW`` blocks: a block whose rows were all
    inserted before, as one block, is dropped whole, views included. That covers a
    flush retried after a failed insert, and a batch re-read after a crash that holds
    the same records. A re-read batch that holds other records too is a new block:
    its rows inserted before count again in the rollups (never in ``requests FINAL``).
    """

    def __init__(self, client: Any, database: str, max_buffered: int = 10_000) -> None:
        super().__init__(max_buffered)
        self.client = client
        self.database = database
        # chdb's client is not safe across threads; inserts and reads share it.
        self.lock = threading.Lock()
        self.last_rows: dict[str, int] = {}  # table -> rows the last successful write inserted

    def add(self, item: Written) -> None:
        if isinstance(item, Feedback) and item.at is None:
            raise UsageError("feedback without `at`: stamp it with Feedback.received first")
        super().add(item)

    def write(self, batch: list[Written]) -> None:
        tables: dict[str, tuple[list[str], list[Row]]] = {
            "requests": (REQUEST_COLUMNS, []),
            "attempts": (ATTEMPT_COLUMNS, []),
            "shadow": (SHADOW_COLUMNS, []),
            "feedback": (FEEDBACK_COLUMNS, []),
            "configs": (CONFIG_COLUMNS, []),
            "audit": (AUDIT_COLUMNS, []),
        }
        for item in batch:
            if isinstance(item, Feedback):
                tables["feedback"][1].append(_row(item, FEEDBACK_COLUMNS))
                continue
            if isinstance(item, ConfigRow):
                tables["configs"][1].append(_row(item, CONFIG_COLUMNS))
                continue
            if item.request is not None:
                tables["requests"][1].append(_row(item.request, REQUEST_COLUMNS))
            tables["attempts"][1].extend(_row(a, ATTEMPT_COLUMNS) for a in item.attempts)
            tables["shadow"][1].extend(_row(s, SHADOW_COLUMNS) for s in item.shadow)
            tables["audit"][1].extend(_row(a, AUDIT_COLUMNS) for a in item.audit)
        written: dict[str, int] = {}
        with self.lock:
            for table, (columns, found) in tables.items():
                # A message delivered twice within one batch is one row: a view would
                # count both copies, FINAL only one.
                rows = [list(r) for r in dict.fromkeys(tuple(r) for r in found)]
                if rows:
                    self.client.insert(
                        table,
                        rows,
                        column_names=columns,
                        database=self.database,
                        settings=dedup_settings(table, rows),
                    )
                    written[table] = len(rows)
        self.last_rows = written

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Any statement, on the writer's client: for tests and migrations, never for
        what a user typed (``TelemetryReader`` is for that)."""
        with self.lock:
            result = self.client.query(sql)
        return list(result.column_names), [tuple(r) for r in result.result_rows]


class TelemetryReader:
    """Reads for users and commands: ``check_read_only`` first, then the query on a
    read-only client (``open_reader``). Raises QueryRejected before running anything
    refused, and the engine's error for a query over its time or result limits."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()  # one query at a time on a chdb handle

    def query(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql`` with ``params`` bound by the engine (``{name:Type}`` placeholders)."""
        check_read_only(sql)
        with self.lock:
            result = self.client.query(sql, parameters=dict(params or {}))
        return list(result.column_names), [tuple(r) for r in result.result_rows]


def dedup_settings(table: str, rows: list[Row]) -> dict[str, Any]:
    """An insert's settings: a token of its rows' content (order aside), and views
    deduplicated with the block that feeds them."""
    digest = hashlib.sha256()
    for text in sorted(repr(row) for row in rows):
        digest.update(text.encode())
    return {
        "insert_deduplication_token": f"{table}-{digest.hexdigest()}",
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


def _row(model: BaseModel, columns: list[str]) -> Row:
    return [getattr(model, c) for c in columns]


__all__ = [
    "ClickHouseError",
    "DatabaseLocked",
    "TelemetryReader",
    "TelemetrySink",
    "database_of",
    "migrate",
    "open_client",
    "open_reader",
]
