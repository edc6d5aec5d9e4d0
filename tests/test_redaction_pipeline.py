"""Planted secrets and personal data through the real pipeline: under ``off`` and
``redacted`` none of them reaches ClickHouse, the dead-letter topic or a worker's log.

acme logs content ``redacted`` and keeps ``redacted`` dead letters; globex keeps the
defaults (``off``, ``hash``). Each tenant sends good jobs and malformed ones (dead-lettered
with their text), every prompt carrying the whole corpus of planted values.
"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from commands.telemetry_reader import run_query, telemetry_table
from schemas.dead_letter import DeadLetter
from schemas.messages import ChatMessage, InferenceRequest
from streams.client import SwitchyardClient
from streams.kafka.reading import read_to_end
from streams.local.broker import EmbeddedBroker
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from tests.helpers import SAMPLE_CONFIG, running_stack, sample_keys
from tests.processors.test_redact import PLANTED

pytestmark = pytest.mark.slow

VALUES = [value for value, _ in PLANTED] + ["EMP-004211"]
PROMPT = "Please keep these safe: " + " ; ".join(VALUES)
TENANTS = ("acme", "globex")


@pytest.fixture
def stack(broker: EmbeddedBroker, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["tenants"]["acme"] |= {"content_logging": "redacted", "dead_letter_payload": "redacted"}
    raw["redaction"] = {"patterns": {"employee_id": r"\bEMP-\d{6}\b"}}
    config = tmp_path / "redaction.yaml"
    config.write_text(yaml.safe_dump(raw))
    with running_stack(broker, namespace, tmp_path, config) as running:
        yield running


async def _send(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
        good = [
            InferenceRequest(
                request_id=f"{tenant}-good-{i}",
                tenant=tenant,
                max_tokens=32,
                messages=[ChatMessage(role="user", content=f"{PROMPT} ({i})")],
            )
            for tenant in TENANTS
            for i in range(3)
        ]
        futures = [await client.submit(r) for r in good]
        for tenant in TENANTS:  # a wrongly typed field: dead-lettered with its text
            bad = {
                "request_id": f"{tenant}-bad",
                "tenant": tenant,
                "max_tokens": "lots",
                "messages": [{"role": "user", "content": PROMPT}],
            }
            await client.send_raw(orjson.dumps(bad), key=tenant, sign_as=tenant)
        await client.flush()
        replies = await asyncio.wait_for(asyncio.gather(*futures), 120)
    assert [r.status for r in replies] == ["ok"] * len(good)


def _telemetry(stack: Stack, table: str) -> str:
    """Every value of every row of ``table``, as text."""
    _, rows = run_query(stack.env, f"SELECT * FROM {telemetry_table(stack.env, table)}")
    return "\n".join("\t".join(str(v) for v in row) for row in rows)


def _forms(value: str) -> set[str]:
    """The value as written, and JSON-escaped once and twice (a job inside a letter)."""
    once = orjson.dumps(value).decode()[1:-1]
    return {value, once, orjson.dumps(once).decode()[1:-1]}


def _wait_for_rows(stack: Stack, n: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    table = telemetry_table(stack.env, "requests")
    sql = f"SELECT request_id, tenant, content_logged, prompt FROM {table} FINAL"
    deadline = time.monotonic() + timeout_s
    while True:
        columns, rows = run_query(stack.env, sql)
        if len(rows) >= n or time.monotonic() > deadline:
            return [dict(zip(columns, row, strict=True)) for row in rows]
        time.sleep(0.5)


async def _letters(stack: Stack) -> list[bytes]:
    topic = TopicCatalogue(stack.env.namespace).dead_letter.name
    return [record.value async for record in read_to_end(stack.bootstrap, topic)]


def test_planted_values_never_reach_clickhouse_dead_letters_or_logs(stack: Stack) -> None:
    asyncio.run(_send(stack))
    rows = _wait_for_rows(stack, 6)
    letters = asyncio.run(_letters(stack))
    tables = {table: _telemetry(stack, table) for table in ("requests", "attempts")}
    stack.stop()  # logs flushed and closed
    logs = {name: stack.log_path(name).read_text() for name in ("router", "provider", "telemetry")}

    # What was written, and in the shape each tenant's policy says.
    by_tenant = {t: [r for r in rows if r["tenant"] == t] for t in TENANTS}
    assert len(by_tenant["acme"]) == 3 and len(by_tenant["globex"]) == 3
    for row in by_tenant["acme"]:
        assert row["content_logged"] == "redacted"
        assert "[CARD]" in row["prompt"] and "[EMPLOYEE_ID]" in row["prompt"]
    assert {(r["content_logged"], r["prompt"]) for r in by_tenant["globex"]} == {("off", "")}
    kept = {letter.tenant: letter for letter in map(DeadLetter.model_validate_json, letters)}
    assert kept["acme"].payload_kept == "redacted" and "[IBAN]" in kept["acme"].payload
    assert (kept["globex"].payload_kept, kept["globex"].payload) == ("hash", "")

    # Where nothing planted may be.
    places = {
        **tables,
        "dead letters": b"\n".join(letters).decode(),
        **{f"{name} log": text for name, text in logs.items()},
    }
    found = {
        (place, value)
        for place, text in places.items()
        for value in VALUES
        if any(form in text for form in _forms(value))
    }
    assert found == set()
