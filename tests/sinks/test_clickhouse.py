import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.errors import SinkBackpressure
from schemas.telemetry import AttemptRow, TelemetryEvent
from sinks.clickhouse import TelemetrySink, migrate
from tests.helpers import request_row


def event(request_id: str, tenant: str = "acme", cost: float = 0.001) -> TelemetryEvent:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    row = request_row(request_id, now, tenant=tenant, cost_usd=cost)
    attempt = AttemptRow(
        request_id=request_id,
        attempt=0,
        tenant=tenant,
        model="sim-small",
        provider="sim",
        outcome="ok",
        error_code="",
        latency_ms=40,
        finished_at=now,
    )
    return TelemetryEvent(request=row, attempts=[attempt])


@pytest.fixture
def sink(chdb_client: Any) -> TelemetrySink:
    database = f"t_{uuid.uuid4().hex[:10]}"
    assert migrate(chdb_client, database) == [1, 2, 3, 4, 5, 6, 7]
    return TelemetrySink(chdb_client, database, max_buffered=100)


def test_migrations_apply_once(chdb_client: Any, sink: TelemetrySink) -> None:
    assert migrate(chdb_client, sink.database) == []


def test_replayed_batch_counts_once(sink: TelemetrySink) -> None:
    for i in range(50):
        sink.add(event(f"r-{i}"))
    assert sink.flush() == 50
    for i in range(50):  # the same telemetry delivered again, as after a crash
        sink.add(event(f"r-{i}"))
    sink.flush()
    _, rows = sink.query(f"SELECT count(), sum(cost_usd) FROM {sink.database}.requests FINAL")
    assert rows[0][0] == 50
    assert rows[0][1] == pytest.approx(0.05)
    _, attempts = sink.query(f"SELECT count() FROM {sink.database}.attempts FINAL")
    assert attempts[0][0] == 50


def test_same_request_id_in_two_tenants_is_two_rows(sink: TelemetrySink) -> None:
    sink.add(event("shared", tenant="acme"))
    sink.add(event("shared", tenant="globex"))
    sink.flush()
    _, rows = sink.query(f"SELECT count() FROM {sink.database}.requests FINAL")
    assert rows[0][0] == 2


def test_full_buffer_pushes_back(sink: TelemetrySink) -> None:
    for i in range(100):
        sink.add(event(f"r-{i}"))
    with pytest.raises(SinkBackpressure):
        sink.add(event("one-too-many"))
    assert sink.flush() == 100
    sink.add(event("fits-again"))
