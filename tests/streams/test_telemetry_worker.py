"""The telemetry worker as its own process: telemetry and feedback topics into ClickHouse.

Feedback goes in through ``switchyard feedback`` (and raw records for the
malformed and unstamped cases); ``decision_feedback`` is read back through the
worker's query service, as ``switchyard query`` reads it.
"""

import asyncio
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from commands.cli import main
from commands.telemetry_reader import run_query, telemetry_table
from schemas.access import bearer
from schemas.codec import dumps
from schemas.telemetry import AttemptRow, TelemetryEvent
from sinks.kafka_out import KafkaPublisher, producer_for
from streams.kafka.admin import ensure_topics
from streams.local.broker import EmbeddedBroker
from streams.local.environment import Environment
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from streams.workers.telemetry import service_file
from tests.helpers import (
    point_cli_at,
    request_row,
    sealed,
    shadow_row,
    signed_as,
    stack_environment,
)

NOW = datetime.now(UTC).replace(microsecond=0)

DECISIONS = {
    "w-1": {"tenant": "acme", "model": "sim-small", "task": "chat", "cost_usd": 0.0002},
    "w-2": {"tenant": "globex", "model": "sim-medium", "task": "code", "cost_usd": 0.004},
    "w-3": {"tenant": "acme", "model": "sim-large", "task": "math", "cost_usd": 0.05},
}


@pytest.fixture
def env(
    broker: EmbeddedBroker, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Environment:
    """The worker's environment; the CLI in this process is pointed at the same one."""
    env = stack_environment(broker, tmp_path, namespace)
    point_cli_at(env, monkeypatch)
    return env


@pytest.fixture
def worker(env: Environment) -> Iterator[Stack]:
    assert env.kafka_bootstrap is not None
    stack = Stack(env=env, bootstrap=env.kafka_bootstrap)
    asyncio.run(ensure_topics(stack.bootstrap, TopicCatalogue(env.namespace).all()))
    stack.start_worker("telemetry")
    try:
        # Only through the worker's service: opening its database here would take it.
        deadline = time.monotonic() + 60
        while not service_file(env.state_dir).exists():
            stack.check_alive()
            assert time.monotonic() < deadline, "telemetry worker did not start in 60s"
            time.sleep(0.1)
        yield stack
    finally:
        stack.stop()


def _events() -> list[TelemetryEvent]:
    events = []
    for request_id, decision in DECISIONS.items():
        row = request_row(request_id, NOW, predicted_quality=0.7, **decision)
        attempt = AttemptRow(
            request_id=request_id,
            attempt=0,
            tenant=row.tenant,
            model=row.model,
            provider="sim",
            outcome="ok",
            error_code="",
            latency_ms=50,
            finished_at=NOW,
        )
        events.append(TelemetryEvent(request=row, attempts=[attempt]))
    shadow = shadow_row("w-1", NOW, agrees=False, latency_ms=90, cost_usd=0.001, output_tokens=120)
    events.append(TelemetryEvent(shadow=[shadow]))  # a shadow call alone: request=None
    return events


Signer = str | None


async def _publish(stack: Stack, records: list[tuple[str, str, bytes, Signer]]) -> None:
    """Send as the workers do: telemetry sealed with the stack's cluster key; feedback
    signed by the tenant named (None: unsigned)."""
    telemetry = TopicCatalogue(stack.env.namespace).telemetry.name
    producer = producer_for(stack.bootstrap, 1_048_576)
    await producer.start()
    now = datetime.now(UTC)

    def headers(topic: str, key: str, value: bytes, signer: Signer) -> list[tuple[str, bytes]]:
        if topic == telemetry:
            return sealed(stack, topic, key.encode(), value)
        return list(signed_as(signer, value, now).items()) if signer else []

    try:
        await KafkaPublisher(producer).deliver(
            *[(t, k, v, headers(t, k, v, signer)) for t, k, v, signer in records]
        )
    finally:
        await producer.stop()


def _wait_rows(env: Environment, sql: str, expected: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        columns, rows = run_query(env, sql)
        if len(rows) >= expected or time.monotonic() > deadline:
            return [dict(zip(columns, row, strict=True)) for row in rows]
        time.sleep(0.3)


def test_worker_joins_feedback_from_the_topic_to_decisions(
    env: Environment, worker: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = TopicCatalogue(env.namespace)
    telemetry, feedback = catalogue.telemetry.name, catalogue.feedback.name
    unstamped = {"request_id": "w-3", "tenant": "acme", "kind": "score", "value": 0.4}
    records: list[tuple[str, str, bytes, Signer]] = [
        (telemetry, e.request.request_id if e.request else "w-1", dumps(e), None) for e in _events()
    ]
    forged = {"request_id": "w-1", "tenant": "acme", "kind": "score", "value": 0.0}
    records += [
        (telemetry, "junk", b"not telemetry", None),
        (feedback, "junk", b'{"request_id": "w-1", "kind": "stars", "value": 5}', "acme"),
        (feedback, "w-3", orjson.dumps(unstamped), "acme"),  # no `at`: the broker's timestamp
        # acme's request judged by no one who proves to be acme: dropped, counted.
        (feedback, "w-1", orjson.dumps(forged), None),
        (feedback, "w-1", orjson.dumps(forged), "globex"),
    ]
    asyncio.run(_publish(worker, records))
    assert main(["feedback", "w-1", "--tenant", "acme", "--up", "--source", "user"]) == 0
    assert main(["feedback", "w-2", "--tenant", "globex", "--failure"]) == 0
    assert f"sent to {feedback}" in capsys.readouterr().out

    table = telemetry_table(env, "decision_feedback")
    joined = _wait_rows(env, f"SELECT * FROM {table} ORDER BY request_id", 3)

    assert [(r["request_id"], r["kind"], r["value"], r["source"]) for r in joined] == [
        ("w-1", "thumbs", 1.0, "user"),
        ("w-2", "success", 0.0, "cli"),
        ("w-3", "score", 0.4, ""),
    ]
    for r in joined:
        decision = DECISIONS[r["request_id"]]
        assert (r["tenant"], r["model"], r["task"]) == (
            decision["tenant"],
            decision["model"],
            decision["task"],
        )
        assert r["cost_usd"] == pytest.approx(decision["cost_usd"])
    stamped = datetime.fromisoformat(joined[2]["at"]).replace(tzinfo=UTC)
    assert abs(stamped - datetime.now(UTC)) < timedelta(minutes=5)

    shadow = run_query(env, f"SELECT shadow_model, agrees FROM {telemetry_table(env, 'shadow')}")
    assert [tuple(r) for r in shadow[1]] == [("sim-medium", False)]
    worker.check_alive()
    log = worker.log_path("telemetry").read_text()
    assert "skipping malformed telemetry" in log
    assert "skipping malformed feedback" in log
    assert "dropped 1 record(s) of feedback not proven by its tenant" in log


def test_feedback_command_needs_the_topic(
    env: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feedback", "w-1", "--tenant", "acme", "--down"]) == 1
    assert "switchyard topics create" in capsys.readouterr().err


def test_feedback_command_rejects_bad_values_before_any_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))
    assert main(["feedback", "w 1", "--tenant", "acme", "--score", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "invalid feedback" in err
    assert "REQUEST_ID: String should match pattern" in err
    assert "--score: Input should be less than or equal to 1" in err


def test_the_query_service_wants_its_token_and_switchyard_query_has_it(
    env: Environment, worker: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    path = service_file(env.state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    state = orjson.loads(path.read_bytes())
    assert set(state) == {"pid", "url", "token"} and len(state["token"]) >= 32
    sql = {"sql": "SELECT 1"}
    assert httpx.post(state["url"], json=sql, timeout=10).status_code == 401
    plain = {**bearer(state["token"]), "Content-Type": "text/plain"}
    assert httpx.post(state["url"], content=orjson.dumps(sql), headers=plain).status_code == 415

    assert main(["query", "SELECT 40 + 2 AS answer", "--json"]) == 0
    assert capsys.readouterr().out == '{"answer":42}\n'
    assert main(["query", "SELECT file('/proc/self/environ')"]) == 1
    out, err = capsys.readouterr()
    assert "file() is refused" in err and "PATH=" not in out + err


def test_feedback_that_arrives_before_its_request_row_joins_once_the_row_lands(
    env: Environment, worker: Stack
) -> None:
    """A consumer can judge a reply before the telemetry worker has written its row (the
    reply goes out before telemetry is inserted): the judgement is kept, not dropped as
    "unknown request", and joins its decision when the row arrives."""
    catalogue = TopicCatalogue(env.namespace)
    assert main(["feedback", "w-2", "--tenant", "globex", "--score", "0.9"]) == 0
    stored = _wait_rows(env, f"SELECT * FROM {telemetry_table(env, 'feedback')}", 1)
    assert [(r["request_id"], r["value"]) for r in stored] == [("w-2", 0.9)]
    joined_sql = f"SELECT request_id, model, value FROM {telemetry_table(env, 'decision_feedback')}"
    assert run_query(env, joined_sql)[1] == []  # nothing to join yet

    early = [e for e in _events() if e.request is not None and e.request.request_id == "w-2"]
    asyncio.run(_publish(worker, [(catalogue.telemetry.name, "w-2", dumps(early[0]), None)]))

    joined = _wait_rows(env, joined_sql, 1)
    assert [(r["request_id"], r["model"], r["value"]) for r in joined] == [
        ("w-2", "sim-medium", 0.9)
    ]
