"""Migrations 6 and 7: the telemetry model shaped for analysts' questions.

- ``requests`` is re-keyed ``ORDER BY (tenant, toDate(finished_at), model, request_id)``:
  what analysts filter on leads (a tenant, a time range, a model), so a query reads only
  the granules of its tenant and days. ``request_id`` last keeps ReplacingMergeTree's
  promise: a replayed telemetry message (same content, so same tenant, day, model and id)
  collapses to one row under ``FINAL``. A sorting key cannot be changed in place, so the
  step copies the table (``FINAL``: v5's collapsed rows stay one) into a new one and swaps
  the two with ``EXCHANGE TABLES`` (atomic on the Atomic database engine, the default).
- Hourly rollups (``sinks.rollups``) fed by materialized views, so dashboards never scan
  raw rows; backfilled from the rows already there.

Both are Python steps rather than plain statements because their statements are not each
safe to repeat (a second copy, a second exchange): each step looks at what is there first,
so a migration cut short anywhere reruns to the same end.
"""

from typing import Any

from sinks.rollups import ROLLUPS, create_rollup

REQUESTS_ORDER_BY = "tenant, toDate(finished_at), model, request_id"
# How many recent insert blocks a table remembers to refuse an identical one (or one with
# the same insert_deduplication_token): ``TelemetrySink`` relies on it, see its docstring.
DEDUP_WINDOW = 1000

# The new table takes its columns from the one it replaces (``AS``): only the key changes.
REQUESTS_V6 = """
CREATE TABLE IF NOT EXISTS {db}.requests_v6 AS {db}.requests
ENGINE = ReplacingMergeTree(finished_at)
PARTITION BY toYYYYMM(finished_at)
ORDER BY ({order_by})
SETTINGS non_replicated_deduplication_window = {window}
"""


def sorting_key(client: Any, database: str, table: str) -> str | None:
    """The table's sorting key as the engine reports it; None if there is no such table."""
    rows = client.query(
        "SELECT sorting_key FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        parameters={"d": database, "t": table},
    ).result_rows
    return str(rows[0][0]) if rows else None


def rekey_requests(client: Any, db: str) -> None:
    """Copy ``requests`` into the new key and swap; a rerun finishes what a cut-short run
    began (the copy restarts from empty; a finished swap only drops the old table)."""
    if sorting_key(client, db, "requests") == REQUESTS_ORDER_BY:
        client.command(f"DROP TABLE IF EXISTS {db}.requests_v6")  # the old table, swapped out
        return
    client.command(REQUESTS_V6.format(db=db, order_by=REQUESTS_ORDER_BY, window=DEDUP_WINDOW))
    client.command(f"TRUNCATE TABLE {db}.requests_v6")
    columns = ", ".join(_columns(client, db, "requests_v6"))
    client.command(
        f"INSERT INTO {db}.requests_v6 ({columns}) SELECT {columns} FROM {db}.requests FINAL"  # noqa: S608
    )
    client.command(f"EXCHANGE TABLES {db}.requests AND {db}.requests_v6")
    client.command(f"DROP TABLE {db}.requests_v6")


def _columns(client: Any, db: str, table: str) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String} "
        "ORDER BY position",
        parameters={"d": db, "t": table},
    ).result_rows
    return [str(r[0]) for r in rows]


def dedup_windows(client: Any, db: str) -> None:
    """Let ``attempts`` refuse a repeated insert block too, as ``requests`` does."""
    client.command(
        f"ALTER TABLE {db}.attempts MODIFY SETTING non_replicated_deduplication_window = "
        f"{DEDUP_WINDOW}"
    )


def create_rollups(client: Any, db: str) -> None:
    for rollup in ROLLUPS:
        create_rollup(client, db, rollup, DEDUP_WINDOW)


MODEL_MIGRATIONS: list[tuple[int, str, list[Any]]] = [
    (6, "requests keyed for analysts: tenant, day, model", [rekey_requests, dedup_windows]),
    (7, "hourly rollups of requests and attempts, fed by materialized views", [create_rollups]),
]
