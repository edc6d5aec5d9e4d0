"""Telemetry schema v2 on the embedded engine: new columns, shadow rows, feedback and its view."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.feedback import Feedback, FeedbackKind
from schemas.telemetry import TelemetryEvent
from sinks import clickhouse
from sinks.clickhouse import TelemetrySink, migrate
from sinks.migrations import MIGRATIONS
from tests.helpers import request_row, shadow_row

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# Three decisions on different models, tasks and costs; r-4 gets no feedback.
DECISIONS = {
    "r-1": {"model": "sim-small", "task": "chat", "cost_usd": 0.0001},
    "r-2": {"model": "sim-medium", "task": "code", "cost_usd": 0.002},
    "r-3": {"model": "sim-large", "task": "reasoning", "cost_usd": 0.03},
    "r-4": {"model": "sim-local", "task": "extraction", "cost_usd": 0.00001},
}


def _database() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def _feedback(request_id: str, kind: FeedbackKind, value: float, minutes: int = 5) -> Feedback:
    return Feedback(
        request_id=request_id,
        tenant="acme",
        kind=kind,
        value=value,
        source="app",
        at=AT + timedelta(minutes=minutes),
    )


@pytest.fixture
def sink(chdb_client: Any) -> TelemetrySink:
    database = _database()
    assert migrate(chdb_client, database) == [1, 2, 3, 4, 5, 6, 7]
    return TelemetrySink(chdb_client, database)


def _rows(sink: TelemetrySink, sql: str) -> list[dict[str, Any]]:
    columns, rows = sink.query(sql.format(db=sink.database))
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_feedback_rows_join_their_decisions(sink: TelemetrySink) -> None:
    for request_id, decision in DECISIONS.items():
        row = request_row(request_id, AT, predicted_quality=0.8, router_version="qm-1", **decision)
        sink.add(TelemetryEvent(request=row))
    sink.add(_feedback("r-1", "thumbs", 0.0, minutes=1))
    sink.add(_feedback("r-1", "thumbs", 1.0, minutes=2))  # changed their mind: replaces
    sink.add(_feedback("r-1", "success", 1.0))
    sink.add(_feedback("r-2", "score", 0.25))
    sink.add(_feedback("r-3", "success", 0.0))
    sink.add(_feedback("r-404", "thumbs", 1.0))  # a request telemetry never saw
    sink.flush()

    joined = _rows(sink, "SELECT * FROM {db}.decision_feedback ORDER BY request_id, kind")

    assert [(r["request_id"], r["kind"], r["value"]) for r in joined] == [
        ("r-1", "success", 1.0),
        ("r-1", "thumbs", 1.0),
        ("r-2", "score", 0.25),
        ("r-3", "success", 0.0),
    ]
    for r in joined:
        decision = DECISIONS[r["request_id"]]
        assert (r["model"], r["task"]) == (decision["model"], decision["task"])
        assert r["cost_usd"] == pytest.approx(decision["cost_usd"])
        assert (r["tenant"], r["source"], r["strategy"]) == ("acme", "app", "cheapest-capable")
        assert (r["predicted_quality"], r["router_version"]) == (0.8, "qm-1")
    required = {"quality", "finished_at", "at"}
    assert required <= set(joined[0])


def test_new_request_columns_shadow_rows_and_shadow_only_events(sink: TelemetrySink) -> None:
    row = request_row(
        "r-plan",
        AT,
        cache="miss",
        steps='[{"kind":"call","model":"sim-small","detail":""}]',
        quality_target=0.8,
        predicted_quality=0.83,
        router_version="qm-7",
        shadow_model="sim-medium",
    )
    sink.add(TelemetryEvent(request=row))
    sink.add(TelemetryEvent(shadow=[shadow_row("r-plan", AT)]))  # request=None: a shadow call alone
    assert sink.flush() == 2
    sink.add(TelemetryEvent(shadow=[shadow_row("r-plan", AT)]))  # replayed: replaces
    sink.flush()

    (stored,) = _rows(sink, "SELECT * FROM {db}.requests FINAL")
    assert {k: stored[k] for k in ("cache", "quality_target", "predicted_quality")} == {
        "cache": "miss",
        "quality_target": 0.8,
        "predicted_quality": 0.83,
    }
    assert (stored["router_version"], stored["shadow_model"]) == ("qm-7", "sim-medium")
    assert '"call"' in stored["steps"]
    shadows = _rows(sink, "SELECT * FROM {db}.shadow FINAL")
    assert len(shadows) == 1
    assert (shadows[0]["shadow_model"], shadows[0]["agrees"]) == ("sim-medium", True)


def test_feedback_without_its_time_is_refused(sink: TelemetrySink) -> None:
    with pytest.raises(ValueError, match=r"Feedback\.received"):
        sink.add(Feedback(request_id="r-1", tenant="acme", kind="thumbs", value=1))


def test_v1_database_migrates_to_v2(chdb_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    database = _database()
    with monkeypatch.context() as v1:
        v1.setattr(clickhouse, "MIGRATIONS", MIGRATIONS[:1])
        assert migrate(chdb_client, database) == [1]
    later = _V2_REQUEST_COLUMNS | _V3_V4_REQUEST_COLUMNS
    old_columns = [c for c in clickhouse.REQUEST_COLUMNS if c not in later]
    old = request_row("r-old", AT, model="sim-medium", task="code")
    chdb_client.insert(
        "requests",
        [[getattr(old, c) for c in old_columns]],
        column_names=old_columns,
        database=database,
    )
    # A migration cut short: its first statement ran, its version was never recorded.
    chdb_client.command(MIGRATIONS[1][2][0].format(db=database))

    assert migrate(chdb_client, database) == [2, 3, 4, 5, 6, 7]
    assert migrate(chdb_client, database) == []

    sink = TelemetrySink(chdb_client, database)
    sink.add(TelemetryEvent(request=request_row("r-new", AT, predicted_quality=0.9)))
    sink.add(_feedback("r-old", "thumbs", 1.0))
    sink.flush()
    rows = _rows(sink, "SELECT * FROM {db}.requests FINAL ORDER BY request_id")
    assert [(r["request_id"], r["cache"], r["predicted_quality"]) for r in rows] == [
        ("r-new", "off", 0.9),
        ("r-old", "off", -1.0),  # v1 rows read with the v2 defaults
    ]
    (joined,) = _rows(sink, "SELECT * FROM {db}.decision_feedback")
    assert (joined["request_id"], joined["model"]) == ("r-old", "sim-medium")
    assert joined["task"] == "code"


_V2_REQUEST_COLUMNS = {
    "cache",
    "steps",
    "quality_target",
    "predicted_quality",
    "router_version",
    "shadow_model",
}
_V3_V4_REQUEST_COLUMNS = {"content_logged", "prompt", "completion", "config_version"}


def test_prompt_and_completion_columns_hold_what_the_row_carries(sink: TelemetrySink) -> None:
    row = request_row(
        "r-text", AT, content_logged="redacted", prompt="user: mail [EMAIL]", completion="ok"
    )
    sink.add(TelemetryEvent(request=row))
    sink.add(TelemetryEvent(request=request_row("r-off", AT)))
    sink.flush()
    got = _rows(
        sink,
        "SELECT request_id, content_logged, prompt, completion FROM {db}.requests "
        "ORDER BY request_id",
    )
    assert got == [
        {"request_id": "r-off", "content_logged": "off", "prompt": "", "completion": ""},
        {
            "request_id": "r-text",
            "content_logged": "redacted",
            "prompt": "user: mail [EMAIL]",
            "completion": "ok",
        },
    ]
