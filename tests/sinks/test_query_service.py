"""The query service over HTTP on loopback, with a real read-only reader behind it."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from schemas.access import bearer
from schemas.errors import AccessDenied, QueryRejected
from sinks.clickhouse import TelemetryReader, open_reader
from sinks.query_service import build_query_app, query_remote

pytestmark = pytest.mark.asyncio
TOKEN = "t0ken-for-tests"  # noqa: S105 - a test value


@pytest.fixture
def reader(chdb_path: Path) -> TelemetryReader:
    return open_reader(f"chdb://{chdb_path}")


@pytest_asyncio.fixture
async def url(reader: TelemetryReader) -> AsyncIterator[str]:
    runner = web.AppRunner(build_query_app(reader.query, TOKEN), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/query"
    finally:
        await runner.cleanup()


async def test_a_select_with_the_token_and_a_json_body_is_served(url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json={"sql": "SELECT 41 + 1 AS n"}, headers=bearer(TOKEN))
    assert response.status_code == 200
    assert response.json() == {"columns": ["n"], "rows": [[42]]}


@pytest.mark.parametrize(
    "headers", [{}, bearer("wrong"), bearer(TOKEN[:-1]), {"Authorization": TOKEN}]
)
async def test_a_missing_or_wrong_token_is_refused(url: str, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json={"sql": "SELECT 1"}, headers=headers)
    assert response.status_code == 401
    assert "rows" not in response.json()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_bodies_a_browser_may_send_cross_origin_are_refused(
    url: str, content_type: str
) -> None:
    headers = {**bearer(TOKEN), "Content-Type": content_type}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, content=b'{"sql": "SELECT 1"}', headers=headers)
    assert response.status_code == 415


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT file('/proc/self/environ')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
        "SELECT 1 INTO OUTFILE '/tmp/never-written-by-switchyard'",
        "SELECT sleepEachRow(3) FROM system.one",
        "SELECT 1 SETTINGS readonly=0",
        "SELECT name FROM {db:Identifier}.settings",  # with params {"db": "system"}
    ],
)
async def test_refused_queries_are_a_400_with_the_reason(url: str, sql: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json={"sql": sql}, headers=bearer(TOKEN))
    assert response.status_code == 400
    assert "refused" in response.json()["error"]


async def test_a_body_without_sql_is_a_400(url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=["SELECT 1"], headers=bearer(TOKEN))
        not_json = await http.post(
            url, content=b"{", headers={**bearer(TOKEN), "Content-Type": "application/json"}
        )
    assert (response.status_code, not_json.status_code) == (400, 400)


async def test_query_remote_sends_the_token_and_names_refusals(url: str) -> None:
    # query_remote blocks: run it off the loop that serves the app.
    assert await asyncio.to_thread(query_remote, url, TOKEN, "SELECT 1 AS one") == (
        ["one"],
        [[1]],
    )
    with pytest.raises(AccessDenied):
        await asyncio.to_thread(query_remote, url, "wrong", "SELECT 1")
    with pytest.raises(QueryRejected):
        await asyncio.to_thread(query_remote, url, TOKEN, "SELECT file('/etc/hostname')")


async def test_parameters_are_bound_by_the_engine(url: str) -> None:
    sql = "SELECT {tenant:String} AS tenant, {n:UInt32} + 1 AS n, length({xs:Array(String)}) AS k"
    params = {"tenant": "o'brien; DROP TABLE x", "n": 41, "xs": ["a", "b"]}
    columns, rows = await asyncio.to_thread(query_remote, url, TOKEN, sql, params)
    assert (columns, rows) == (["tenant", "n", "k"], [["o'brien; DROP TABLE x", 42, 2]])
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url, json={"sql": "SELECT 1", "params": ["not", "a", "dict"]}, headers=bearer(TOKEN)
        )
    assert response.status_code == 400
