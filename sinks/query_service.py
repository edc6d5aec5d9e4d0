"""Read-only SQL over HTTP for the embedded telemetry database.

The embedded engine can be opened by one process only, and the telemetry
worker holds it while it runs. It serves ``POST /query`` on loopback and writes
its address and a token it made at start to ``<state_dir>/telemetry.json``
(mode 0600); ``switchyard query`` and the demo use it when they cannot open the
database themselves.

A request must carry ``Authorization: Bearer <token>`` (401 otherwise) and a
``Content-Type: application/json`` body ``{"sql": "..."}`` (415 otherwise: a
browser's cross-origin ``text/plain`` post never runs), optionally with
``"params": {"name": value}`` for the query's ``{name:Type}`` placeholders, which the
engine binds (never spliced into the text). The query then goes
through ``TelemetryReader`` (``sinks.sql_guard``: one read-only statement, a
read-only session, time and result limits); a refused query is a 400, a
failed one a 422.
"""

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import orjson
from aiohttp import web

from schemas.access import AUTHORIZATION, bearer, token_matches
from schemas.errors import AccessDenied, QueryRejected, TelemetryUnavailable
from sinks.sql_guard import check_read_only

Params = dict[str, Any]
Runner = Callable[[str, Params], tuple[list[str], list[tuple[Any, ...]]]]

__all__ = ["build_query_app", "check_read_only", "query_remote"]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _sql_of(request: web.Request, token: str) -> tuple[str, Params] | web.Response:
    """The request's SQL and parameters, or the response refusing them."""
    if not token_matches(request.headers.get(AUTHORIZATION), token):
        return _error("a valid bearer token is required (see telemetry.json)", 401)
    if request.content_type != "application/json":
        return _error("the body must be application/json", 415)
    try:
        body = await request.json()
    except ValueError:  # not JSON, or not UTF-8
        return _error("the body is not JSON", 400)
    sql = body.get("sql") if isinstance(body, dict) else None
    params = body.get("params", {}) if isinstance(body, dict) else None
    if not isinstance(sql, str) or not isinstance(params, dict):
        return _error('the body must be {"sql": "<query>", "params": {...}}', 400)
    return sql, params


def build_query_app(run: Runner, token: str) -> web.Application:
    """The service's app: ``run`` executes an accepted query (a ``TelemetryReader.query``)."""

    async def query(request: web.Request) -> web.Response:
        asked = await _sql_of(request, token)
        if isinstance(asked, web.Response):
            return asked
        sql, params = asked
        try:
            check_read_only(sql)
            columns, rows = await asyncio.to_thread(run, sql, params)
        except QueryRejected as exc:
            return _error(str(exc), 400)
        except Exception as exc:
            return _error(str(exc)[:2000], 422)
        payload = orjson.dumps({"columns": columns, "rows": rows}, default=_json_default)
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_post("/query", query)
    return app


def query_remote(
    url: str, token: str, sql: str, params: Params | None = None, timeout_s: float = 60
) -> tuple[list[str], list[list[Any]]]:
    """Run ``sql`` with ``params`` on the telemetry worker's service; AccessDenied for a
    refused token, QueryRejected for a refused query, TelemetryUnavailable for a failed one."""
    body = {"sql": sql, "params": params or {}}
    response = httpx.post(url, json=body, headers=bearer(token), timeout=timeout_s)
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = {"error": response.text}
    if response.status_code == 401:
        raise AccessDenied(f"the telemetry query service refused the token: {data['error']}")
    if response.status_code == 400:
        raise QueryRejected(data.get("error", response.text))
    if response.status_code != 200:
        raise TelemetryUnavailable(data.get("error", response.text))
    return data["columns"], data["rows"]
