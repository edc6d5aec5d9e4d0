"""The analysts' model (migrations 6-7) on the embedded engine: a fresh database, a v5
database upgraded in place, migrations cut short, rollup deduplication, TTLs."""

import uuid
from datetime import timedelta
from typing import Any

import pytest

from schemas.feedback import Feedback
from sinks import clickhouse
from sinks.clickhouse import TelemetrySink, migrate
from sinks.migrations import MIGRATIONS
from sinks.telemetry_model import REQUESTS_ORDER_BY, REQUESTS_V6, sorting_key
from sinks.ttl import apply_ttls
from tests.telemetry_data import AS_OF, generate

ALL = [1, 2, 3, 4, 5, 6, 7]


def _database() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def _one(sink: TelemetrySink, sql: str) -> Any:
    return sink.query(sql.format(db=sink.database))[1][0]


def _rollup_totals(sink: TelemetrySink) -> tuple[int, float, int]:
    return _one(  # type: ignore[no-any-return]
        sink,
        "SELECT sum(requests), round(sum(cost_usd), 9), "
        "(SELECT sum(calls) FROM {db}.attempts_hourly) FROM {db}.requests_hourly",
    )


def _raw_totals(sink: TelemetrySink) -> tuple[int, float, int]:
    return _one(  # type: ignore[no-any-return]
        sink,
        "SELECT count(), round(sum(cost_usd), 9), "
        "(SELECT count() FROM {db}.attempts FINAL) FROM {db}.requests FINAL",
    )


def _fill(sink: TelemetrySink, events: list[Any], size: int = 50) -> None:
    for i in range(0, len(events), size):
        for event in events[i : i + size]:
            sink.add(event)
        sink.flush()


def test_a_fresh_database_gets_the_model(chdb_client: Any) -> None:
    database = _database()
    assert migrate(chdb_client, database) == ALL
    assert migrate(chdb_client, database) == []
    assert sorting_key(chdb_client, database, "requests") == REQUESTS_ORDER_BY
    tables = {
        r[0]
        for r in chdb_client.query(
            f"SELECT name FROM system.tables WHERE database = '{database}'"
        ).result_rows
    }
    assert {
        "requests_hourly",
        "requests_hourly_mv",
        "attempts_hourly",
        "attempts_hourly_mv",
    } <= tables
    assert "requests_v6" not in tables


def test_a_v5_database_is_upgraded_in_place(
    chdb_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = _database()
    with monkeypatch.context() as v5:
        v5.setattr(clickhouse, "MIGRATIONS", MIGRATIONS[:5])
        assert migrate(chdb_client, database) == [1, 2, 3, 4, 5]
    assert sorting_key(chdb_client, database, "requests") == "tenant, request_id"
    sink = TelemetrySink(chdb_client, database)
    events = generate(300, seed=11).events
    _fill(sink, events)
    _fill(sink, events[:40])  # a replay: FINAL collapses it on the old key as on the new
    row = events[0].request
    assert row is not None
    sink.add(Feedback(request_id=row.request_id, tenant=row.tenant, kind="thumbs", value=1.0,
                      source="app", at=AS_OF))  # fmt: skip
    sink.flush()
    before = sink.query(f"SELECT * FROM {database}.requests FINAL ORDER BY tenant, request_id")

    assert migrate(chdb_client, database) == [6, 7]

    assert sorting_key(chdb_client, database, "requests") == REQUESTS_ORDER_BY
    after = sink.query(f"SELECT * FROM {database}.requests FINAL ORDER BY tenant, request_id")
    assert after == before and len(after[1]) == 300
    assert _rollup_totals(sink) == _raw_totals(sink)  # backfilled from the v5 rows
    (joined,) = sink.query(f"SELECT request_id FROM {database}.decision_feedback")[1]
    assert joined == (row.request_id,)
    _fill(sink, generate(50, seed=12).events)  # new rows reach the rollups through the views
    assert _rollup_totals(sink) == _raw_totals(sink)
    assert _rollup_totals(sink)[0] == 350


def test_a_rekey_cut_short_anywhere_finishes_on_the_next_run(
    chdb_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = _database()
    with monkeypatch.context() as v5:
        v5.setattr(clickhouse, "MIGRATIONS", MIGRATIONS[:5])
        migrate(chdb_client, database)
    sink = TelemetrySink(chdb_client, database)
    _fill(sink, generate(120, seed=3).events)
    # Cut short after a partial copy: the rerun starts the copy again from empty.
    chdb_client.command(REQUESTS_V6.format(db=database, order_by=REQUESTS_ORDER_BY, window=1000))
    chdb_client.command(
        f"INSERT INTO {database}.requests_v6 SELECT * FROM {database}.requests LIMIT 30"
    )
    assert migrate(chdb_client, database) == [6, 7]
    assert _one(sink, "SELECT count() FROM {db}.requests")[0] == 120  # raw rows: no copy twice
    # Cut short after the swap: the rerun only drops the old table.
    chdb_client.command(REQUESTS_V6.format(db=database, order_by="tenant, request_id", window=1000))
    chdb_client.command(f"DELETE FROM {database}.schema_migrations WHERE version >= 6")
    assert migrate(chdb_client, database) == [6, 7]
    assert _one(sink, "SELECT count() FROM {db}.requests")[0] == 120
    assert not _one(sink, "SELECT count() FROM system.tables WHERE database = '{db}' "
                    "AND name = 'requests_v6'")[0]  # fmt: skip
    assert _rollup_totals(sink) == _raw_totals(sink)


@pytest.fixture
def sink(chdb_client: Any) -> TelemetrySink:
    database = _database()
    migrate(chdb_client, database)
    return TelemetrySink(chdb_client, database)


def test_a_batch_inserted_again_counts_once_in_the_rollups(sink: TelemetrySink) -> None:
    events = generate(200, seed=5).events
    _fill(sink, events, size=100)
    for event in reversed(events[:100]):  # re-read after a crash, in another order
        sink.add(event)
    sink.flush()
    _fill(sink, events[100:], size=100)  # a flush retried as it was
    assert _rollup_totals(sink) == _raw_totals(sink)
    assert _one(sink, "SELECT count() FROM {db}.requests")[0] == 200  # refused at insert


def test_a_batch_re_read_with_other_records_counts_its_old_ones_again(
    sink: TelemetrySink,
) -> None:
    """The documented limit: a re-read batch that is not the inserted one is a new block."""
    events = generate(60, seed=6).events
    _fill(sink, events[:40], size=40)
    _fill(sink, events[30:], size=30)  # 10 records inserted before, 20 new
    requests, _, _ = _rollup_totals(sink)
    assert _raw_totals(sink)[0] == 60
    assert requests == 70


def test_ttls_follow_the_config(sink: TelemetrySink, chdb_client: Any) -> None:
    def engine(table: str) -> str:
        return str(_one(sink, f"SELECT engine_full FROM system.tables WHERE database = "
                              f"'{{db}}' AND name = '{table}'")[0])  # fmt: skip

    db = sink.database
    assert " TTL " not in engine("requests")
    assert sorted(apply_ttls(chdb_client, db, {"requests": 30, "requests_hourly": 400})) == [
        "requests",
        "requests_hourly",
    ]
    assert "TTL toDateTime(finished_at) + toIntervalDay(30)" in engine("requests")
    assert "TTL toDateTime(hour) + toIntervalDay(400)" in engine("requests_hourly")
    assert apply_ttls(chdb_client, db, {"requests": 30, "requests_hourly": 400}) == []
    assert apply_ttls(chdb_client, db, {"requests": 0, "requests_hourly": 200}) == [
        "requests",
        "requests_hourly",
    ]
    assert " TTL " not in engine("requests")
    assert migrate(chdb_client, db, {"audit": 365}) == []
    assert "TTL toDateTime(at) + toIntervalDay(365)" in engine("audit")


def test_rows_past_their_ttl_go(sink: TelemetrySink, chdb_client: Any) -> None:
    old = generate(20, seed=8).events
    for event in old:
        assert event.request is not None
        event.request.finished_at -= timedelta(days=400)
    _fill(sink, old)
    apply_ttls(chdb_client, sink.database, {"requests": 30})
    chdb_client.command(f"OPTIMIZE TABLE {sink.database}.requests FINAL")
    assert _one(sink, "SELECT count() FROM {db}.requests")[0] == 0
