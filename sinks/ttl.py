"""Per-table TTLs from ``observability.telemetry.ttl_days``, applied when the telemetry
worker migrates at start: a changed TTL takes effect on the next start.

A table's TTL is changed only when it differs from what the engine already has, since
``MODIFY TTL`` rewrites the table's parts to apply it. Rows past their TTL go in
background merges, not at once. 0 removes the TTL: rows are kept forever.
"""

from collections.abc import Mapping
from typing import Any

from schemas.errors import UsageError

# The time column each table's TTL counts from.
TTL_COLUMNS: dict[str, str] = {
    "requests": "finished_at",
    "attempts": "finished_at",
    "shadow": "finished_at",
    "feedback": "at",
    "audit": "at",
    "configs": "applied_at",
    "requests_hourly": "hour",
    "attempts_hourly": "hour",
}


def ttl_expression(table: str, days: int) -> str:
    """The TTL as the engine writes it back in ``system.tables.engine_full``."""
    return f"TTL toDateTime({TTL_COLUMNS[table]}) + toIntervalDay({days})"


def apply_ttls(client: Any, db: str, ttl_days: Mapping[str, int]) -> list[str]:
    """Set each table's TTL to ``ttl_days``; return the tables changed now."""
    changed = []
    for table, days in ttl_days.items():
        if table not in TTL_COLUMNS:
            raise UsageError(f"no TTL for unknown telemetry table {table!r}")
        rows = client.query(
            "SELECT engine_full FROM system.tables WHERE database = {d:String} "
            "AND name = {t:String}",
            parameters={"d": db, "t": table},
        ).result_rows
        engine = str(rows[0][0]) if rows else ""
        has_ttl = " TTL " in engine
        if days == 0 and has_ttl:
            client.command(f"ALTER TABLE {db}.{table} REMOVE TTL")
        elif days > 0 and ttl_expression(table, days) not in engine:
            column = TTL_COLUMNS[table]
            client.command(
                f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime({column}) + INTERVAL {days} DAY"
            )
        else:
            continue
        changed.append(table)
    return changed
