"""The report's queries on the real embedded engine, checked against sums computed in Python.

Rows are generated (seeded), written through the real ``TelemetrySink`` (each
event twice, as a replay would, so ``FINAL`` matters) and read back through a
read-only ``TelemetryReader`` as the CLI reads them.
"""

import asyncio
import math
import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from schemas.errors import UsageError
from schemas.report import ReportData
from schemas.telemetry import AttemptRow, TelemetryEvent
from sinks.clickhouse import TelemetrySink, migrate, open_reader
from sinks.query_service import build_query_app, query_remote
from sinks.report_source import ReportSource
from tests.helpers import request_row

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MODELS = {"sim-small": "sim", "sim-medium": "sim", "sim-local": "onprem"}
OUTCOMES = ["ok", "error", "timeout", "rate_limited", "circuit_open", "rejected"]


def generated(n: int, seed: int = 3, start: datetime = START) -> list[TelemetryEvent]:
    """``n`` requests over the three hours from ``start``, two tenants, one to three
    attempts each."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        at = start + timedelta(seconds=rng.uniform(0, 3 * 3600))
        model = rng.choice(list(MODELS))
        tries = rng.choice([1, 1, 1, 2, 3])
        attempts = [
            AttemptRow(request_id=f"r-{i}", attempt=k, tenant="acme", model=model,
                       provider="-" if outcome == "circuit_open" else MODELS[model],
                       outcome=outcome, error_code="", latency_ms=10.0, finished_at=at)
            for k, outcome in enumerate([*(rng.choice(OUTCOMES) for _ in range(tries - 1)), "ok"])
        ]  # fmt: skip
        status = "ok" if rng.random() < 0.9 else "error"
        tenant = rng.choice(["acme", "globex"])
        for attempt in attempts:
            attempt.tenant = tenant
        row = request_row(
            f"r-{i}", at, tenant=tenant, team=rng.choice(["", "search"]), model=model,
            provider=MODELS[model], task=rng.choice(["chat", "code", "math"]), status=status,
            attempts=tries, cost_usd=round(rng.uniform(0, 0.01), 6),
            total_ms=rng.lognormvariate(4.5, 0.6), input_tokens=rng.randint(10, 500),
        )  # fmt: skip
        events.append(TelemetryEvent(request=row, attempts=attempts))
    return events


@pytest.fixture(scope="module")
def written(chdb_client: Any) -> tuple[str, list[TelemetryEvent]]:
    database = f"t_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, database)
    sink = TelemetrySink(chdb_client, database, max_buffered=5000)
    events = generated(1500)
    for _ in range(2):  # a replay writes every row again
        for item in events:
            sink.add(item)
        sink.flush()
    return database, events


@pytest.fixture(scope="module")
def source(chdb_path: Path, written: tuple[str, list[TelemetryEvent]]) -> ReportSource:
    return ReportSource(open_reader(f"chdb://{chdb_path}").query, written[0])


def _read(source: ReportSource, tenant: str | None = None) -> ReportData:
    until = START + timedelta(hours=2)  # the last hour is outside the window
    return source.read(START, until, tenant, spend_since=START, bucket_s=3600)


def _requests(events: list[TelemetryEvent], tenant: str | None = None) -> list[Any]:
    rows = [e.request for e in events if e.request is not None]
    end = START + timedelta(hours=2)
    return [r for r in rows if r.finished_at <= end and tenant in (None, r.tenant)]


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("tenant", [None, "globex"])
def test_totals_and_models_match_the_rows(
    source: ReportSource, written: tuple[str, list[TelemetryEvent]], tenant: str | None
) -> None:
    data = _read(source, tenant)
    rows = _requests(written[1], tenant)
    assert 500 < len(rows) < 1500  # the window and the tenant both cut
    assert data.totals.requests == len(rows)
    assert data.totals.ok == sum(r.status == "ok" for r in rows)
    assert data.totals.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))
    assert data.totals.input_tokens == sum(r.input_tokens for r in rows)
    first = min(r.finished_at for r in rows)
    assert data.totals.first_at is not None
    assert abs(data.totals.first_at - first) < timedelta(milliseconds=1)
    by_model = {m.model: m for m in data.models}
    assert set(by_model) == {r.model for r in rows}
    for model, summary in by_model.items():
        mine = [r for r in rows if r.model == model]
        assert summary.requests == len(mine)
        assert summary.cost_usd == pytest.approx(sum(r.cost_usd for r in mine))
        p50, p95, p99 = np.percentile([r.total_ms for r in mine], [50, 95, 99])
        assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == pytest.approx(
            (p50, p95, p99), rel=1e-6
        )


def test_latency_bins_count_every_request(
    source: ReportSource, written: tuple[str, list[TelemetryEvent]]
) -> None:
    data = _read(source)
    expected = Counter(
        (r.model, math.floor(math.log10(max(r.total_ms, 1)) * 8)) for r in _requests(written[1])
    )
    got = {(b.model, round(math.log10(b.low_ms) * 8)): b.requests for b in data.latency_bins}
    assert got == dict(expected)
    for b in data.latency_bins:
        assert b.high_ms == pytest.approx(b.low_ms * 10 ** (1 / 8))


def test_cost_and_mix_series_by_hour(
    source: ReportSource, written: tuple[str, list[TelemetryEvent]]
) -> None:
    data = _read(source)
    rows = _requests(written[1])
    cost: dict[tuple[datetime, str], float] = defaultdict(float)
    for r in rows:
        cost[(_hour(r.finished_at), r.model)] += r.cost_usd
    assert {(p.at, p.model): p.cost_usd for p in data.cost_series} == pytest.approx(dict(cost))
    mix = Counter((_hour(r.finished_at), r.task, r.model) for r in rows)
    assert {(p.at, p.task, p.model): p.requests for p in data.mix_series} == dict(mix)
    assert data.bucket_s == 3600


def test_provider_counts(source: ReportSource, written: tuple[str, list[TelemetryEvent]]) -> None:
    data = _read(source)
    end = START + timedelta(hours=2)
    attempts = [a for e in written[1] for a in e.attempts if a.finished_at <= end]
    rows = _requests(written[1])
    for summary in data.providers:
        mine = [a for a in attempts if a.provider == summary.provider]
        assert summary.calls == sum(a.outcome != "circuit_open" for a in mine)
        assert summary.errors == sum(
            a.outcome in ("error", "timeout", "rate_limited") for a in mine
        )
        answered = [r for r in rows if r.provider == summary.provider and r.status == "ok"]
        assert summary.answered == len(answered)
        assert summary.fallbacks == sum(r.attempts > 1 for r in answered)
    assert {s.provider for s in data.providers} == {"sim", "onprem"}  # "-" was skipped
    assert sum(p.calls for p in data.provider_series) == sum(s.calls for s in data.providers)


def test_spend_by_hour_tenant_team_and_app(
    source: ReportSource, written: tuple[str, list[TelemetryEvent]]
) -> None:
    data = _read(source, "acme")
    spend: dict[tuple[datetime, str, str], float] = defaultdict(float)
    for r in _requests(written[1], "acme"):
        spend[(_hour(r.finished_at), r.team, r.app)] += r.cost_usd
    got = {(p.at, p.team, p.app): p.cost_usd for p in data.spend}
    assert got == pytest.approx(dict(spend))
    assert {p.tenant for p in data.spend} == {"acme"}


def test_the_bucket_follows_the_data_span(source: ReportSource) -> None:
    # Three hours of data: 10800 s / 300 = 36 buckets, / 60 = 180 would be too many.
    data = source.read(START - timedelta(days=7), START + timedelta(days=1))
    assert data.bucket_s == 300
    assert len({p.at for p in data.cost_series}) == 36


def test_an_empty_window_reads_as_empty(source: ReportSource) -> None:
    data = source.read(START - timedelta(days=2), START - timedelta(days=1))
    assert data.totals.requests == 0 and data.totals.first_at is None
    assert data.models == [] and data.cost_series == [] and data.providers == []


def test_a_tenant_that_is_not_a_name_is_refused(source: ReportSource) -> None:
    with pytest.raises(UsageError):
        source.read(START, START + timedelta(hours=1), tenant="x' OR 1=1 --")


def test_has_telemetry(chdb_path: Path, source: ReportSource) -> None:
    assert source.has_telemetry()
    missing = ReportSource(open_reader(f"chdb://{chdb_path}").query, "never_migrated")
    assert not missing.has_telemetry()


@pytest.mark.asyncio
async def test_through_the_query_service_the_report_is_the_same(
    chdb_path: Path, source: ReportSource
) -> None:
    """While the telemetry worker holds the database, rows arrive as JSON (datetimes as
    text): the models read them back to the same report."""
    reader = open_reader(f"chdb://{chdb_path}")
    runner = web.AppRunner(build_query_app(reader.query, "t0ken"), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/query"
        remote = ReportSource(lambda sql: query_remote(url, "t0ken", sql), source.database)
        served = await asyncio.to_thread(_read, remote)
    finally:
        await runner.cleanup()
    direct = _read(source)
    assert served.totals.requests > 0
    assert served == direct
