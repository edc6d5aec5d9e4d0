"""Read-only SQL over HTTP for the embedded telemetry database.

The embedded engine can be opened by one process only, and the telemetry
worker holds it while it runs. It serves ``POST /query`` on loopback and writes
its address to ``<state_dir>/telemetry.json``; ``switchyard query`` and the demo
use it when they cannot open the database themselves.
"""

import asyncio
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import orjson
from aiohttp import web

from schemas.errors import QueryRejected, TelemetryUnavailable

_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.I)

Runner = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


def check_read_only(sql: str) -> None:
    if not _READ_ONLY.match(sql) or ";" in sql.strip().rstrip(";"):
        raise QueryRejected("only a single SELECT, WITH, SHOW, DESCRIBE or EXPLAIN is served")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def build_query_app(run: Runner) -> web.Application:
    async def query(request: web.Request) -> web.Response:
        body = await request.json()
        sql = str(body.get("sql", ""))
        try:
            check_read_only(sql)
            columns, rows = await asyncio.to_thread(run, sql)
        except QueryRejected as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except Exception as exc:
            return web.json_response({"error": str(exc)[:2000]}, status=422)
        payload = orjson.dumps({"columns": columns, "rows": rows}, default=_json_default)
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_post("/query", query)
    return app


def query_remote(url: str, sql: str, timeout_s: float = 60) -> tuple[list[str], list[list[Any]]]:
    """Run ``sql`` on the telemetry worker's service; TelemetryUnavailable with its message."""
    response = httpx.post(url, json={"sql": sql}, timeout=timeout_s)
    data = orjson.loads(response.content)
    if response.status_code != 200:
        raise TelemetryUnavailable(data.get("error", response.text))
    return data["columns"], data["rows"]
