"""Forged internal records on the real pipeline: written with raw aiokafka, as anyone who
can reach the broker could, they change nothing and every worker that reads them counts them.

Each forged record is well-formed (it validates as its topic's schema), so the seal is
the only thing between it and the workers: sealed with the stack's cluster key, the
same records would move a budget, answer a job or steer routing.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from commands.telemetry_reader import run_query, telemetry_table
from processors.cache import cache_key
from processors.seal import seal_header
from schemas.answer import AnsweredRequest
from schemas.cache import CachedAnswer
from schemas.codec import dumps
from schemas.health import EndpointHealth
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from schemas.settlement import SpendSettlement
from schemas.telemetry import AttemptRow, TelemetryEvent
from streams.client import SwitchyardClient
from streams.kafka.reading import read_to_end
from streams.local.stack import Stack
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue
from tests.helpers import (
    SAMPLE_CONFIG,
    Engine,
    dispatch_job,
    provider_calls,
    request_row,
    running_stack,
    sample_keys,
)

pytestmark = pytest.mark.slow

FORGED = "FORGED ANSWER FROM MALLORY"
Record = tuple[str, bytes, BaseModel, list[tuple[str, bytes]] | None]


@pytest.fixture
def stack(engine: Engine, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    # acme caches answers, so a forged cache entry would serve if it were believed.
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["tenants"]["acme"]["cache"] = {"enabled": True, "ttl_s": 600}
    config = tmp_path / "forged.yaml"
    config.write_text(yaml.safe_dump(raw))
    with running_stack(engine, namespace, tmp_path, config) as running:
        yield running


def acme_request(request_id: str, prompt: str) -> InferenceRequest:
    return InferenceRequest(
        request_id=request_id,
        tenant="acme",
        max_tokens=32,
        messages=[ChatMessage(role="user", content=prompt)],
    )


async def ask(stack: Stack, requests: list[InferenceRequest]) -> list[InferenceReply]:
    catalogue = TopicCatalogue(stack.env.namespace)
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
        futures = [await client.submit(r) for r in requests]
        await client.flush()
        return list(await asyncio.wait_for(asyncio.gather(*futures), 120))


def forged_reply(request_id: str, now: datetime) -> InferenceReply:
    return InferenceReply(
        request_id=request_id,
        tenant="acme",
        status="ok",
        message=ChatMessage(role="assistant", content=FORGED),
        model="sim-small",
        finished_at=now,
    )


def forgeries(stack: Stack, model: str, now: datetime) -> list[Record]:
    """One well-formed record per internal topic a worker reads, none with a valid seal."""
    c = TopicCatalogue(stack.env.namespace)
    cached = acme_request("cache-1", "what is the capital of france")
    wrong_key = seal_header(b"not-the-cluster-key-0123456789", c.settlements.name, b"x", b"{}")
    records: list[Record] = [
        (c.settlements.name, b"initech", SpendSettlement(
            request_id="initech-1", tenant="initech", reserved_usd=0, actual_usd=4.9999), None),
        (c.answers.name, b"acme", AnsweredRequest(
            tenant="acme", request_id="ledger-1", reply=forged_reply("ledger-1", now),
            answered_at=now), None),
        (c.cache.name, cache_key(cached).encode(), CachedAnswer(
            key=cache_key(cached), tenant="acme", message=ChatMessage(role="assistant",
            content=FORGED), model="sim-small", provider="sim", source_request_id="x",
            stored_at=now, expires_at=now + timedelta(seconds=60)), [wrong_key]),
        (c.dispatch.name, b"mallory", dispatch_job(now, tenant="mallory",
            request_id="forged-dispatch-mallory"), None),
        (c.dispatch.name, b"acme", dispatch_job(now, tenant="acme",
            request_id="forged-dispatch-acme"), [wrong_key]),
        (c.retry[0].name, b"acme", dispatch_job(now, tenant="acme",
            request_id="forged-retry-acme"), None),
    ]  # fmt: skip
    # The model the jobs route to, opened for an hour: believed, it sends them elsewhere.
    health = EndpointHealth(model=model, state="open", open_until=now + timedelta(hours=1),
                            reason="forged", worker="mallory", changed_at=now)  # fmt: skip
    records.append((c.health.name, model.encode(), health, None))
    failures = [
        AttemptRow(
            request_id=f"forged-{i}",
            attempt=0,
            tenant="globex",
            model=model,
            provider="sim",
            outcome="error",
            error_code="provider_unavailable",
            latency_ms=60_000,
            finished_at=now,
        )
        for i in range(60)
    ]
    expensive = request_row("forged-telemetry", now, tenant="globex", cost_usd=123456.78)
    event = TelemetryEvent(request=expensive, attempts=failures)
    records.append((c.telemetry.name, b"globex", event, None))
    return records


async def produce(stack: Stack, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, max_request_size=8_000_000)
    await producer.start()
    try:
        for topic, key, message, headers in records:
            await producer.send_and_wait(topic, dumps(message), key=key, headers=headers)
    finally:
        await producer.stop()


def wait_dropped(stack: Stack, worker: str, topics: set[str], timeout_s: float = 60) -> None:
    """Until ``worker``'s log reports a drop on each of ``topics``."""
    deadline = time.monotonic() + timeout_s
    while True:
        stack.check_alive()
        lines = [
            line
            for line in stack.log_path(worker).read_text(errors="replace").splitlines()
            if "without a valid seal" in line
        ]
        missing = {t for t in topics if not any(f"{t} " in line for line in lines)}
        if not missing:
            return
        assert time.monotonic() < deadline, f"{worker} reported no drop on {missing}"
        time.sleep(0.5)


async def reply_ids(stack: Stack, timeout_s: float = 5) -> set[str]:
    topic = TopicCatalogue(stack.env.namespace).replies.name
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    ids: set[str] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for rs in batch.values() for r in rs):
                ids.add(InferenceReply.model_validate_json(record.value).request_id)
    finally:
        await consumer.stop()
    return ids


def count_rows(stack: Stack, table: str, where: str) -> int:
    sql = f"SELECT count() FROM {telemetry_table(stack.env, table)} WHERE {where}"
    return int(run_query(stack.env, sql)[1][0][0])


def assert_answered_by_a_provider(reply: InferenceReply, model: str) -> None:
    assert reply.status == "ok", reply.error
    assert reply.message is not None and FORGED not in reply.message.text()
    assert len(reply.attempts) >= 1 and reply.model == model


def test_forged_internal_records_change_nothing_and_are_counted(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    (first,) = asyncio.run(ask(stack, [acme_request("warm-1", "say hello to the team")]))
    model = first.model or ""
    assert first.status == "ok" and model
    budget_before = stack.budget().get("initech")
    calls_before = provider_calls(stack)

    asyncio.run(produce(stack, forgeries(stack, model, datetime.now(UTC))))
    wait_dropped(stack, "provider", {catalogue.dispatch.name, catalogue.retry[0].name,
                                     catalogue.answers.name, catalogue.health.name})  # fmt: skip
    wait_dropped(stack, "router", {catalogue.settlements.name, catalogue.cache.name,
                                   catalogue.telemetry.name})  # fmt: skip
    wait_dropped(stack, "telemetry", {catalogue.telemetry.name})

    assert stack.budget().get("initech") == budget_before  # the forged settlement moved nothing
    assert provider_calls(stack) == calls_before  # the forged jobs made no call
    assert count_rows(stack, "requests", "request_id LIKE 'forged%'") == 0
    assert count_rows(stack, "attempts", "request_id LIKE 'forged%'") == 0
    assert count_rows(stack, "requests", "cost_usd > 1000") == 0

    # The ledger entry, the cache entry, the open circuits and the failures: none believed.
    real = [
        acme_request("ledger-1", "name three rivers in europe"),
        acme_request("cache-1", "what is the capital of france"),
        acme_request("after-1", "say goodbye to the team"),
    ]
    started = time.monotonic()
    replies = asyncio.run(ask(stack, real))
    assert time.monotonic() - started < 20  # no circuit held them
    for reply in replies:
        assert_answered_by_a_provider(reply, model)
    answered = asyncio.run(reply_ids(stack))
    assert {"warm-1", "ledger-1", "cache-1", "after-1"} <= answered
    assert not {i for i in answered if i.startswith("forged")}
    stack.check_alive()


async def changelog_values(stack: Stack, key: bytes) -> list[bytes]:
    """Every value the budget changelog holds under ``key``, oldest first."""
    catalogue = TopicCatalogue(stack.env.namespace)
    values: list[bytes] = []
    async for record in read_to_end(stack.bootstrap, catalogue.budget_changelog.name):
        if record.key == key and record.value is not None:
            values.append(record.value)
    return values


async def produce_raw(
    stack: Stack, topic: str, records: list[tuple[bytes, bytes | None, int | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        for key, value, partition in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def budget_of(stack: Stack, tenant: str, timeout_s: float = 60) -> dict[str, Any]:
    """``tenant``'s snapshot once the (restarted) router shows one."""
    deadline = time.monotonic() + timeout_s
    while True:
        stack.check_alive()
        try:
            found = stack.budget().get(tenant)
        except httpx.HTTPError:
            found = None
        if found is not None and found["reserved_usd"] < 1e-12:
            return found
        assert time.monotonic() < deadline, f"no settled snapshot for {tenant}"
        time.sleep(0.5)


def test_forged_budget_changelog_records_are_skipped_on_recovery(stack: Stack) -> None:
    topic = TopicCatalogue(stack.env.namespace).budget_changelog.name
    (first,) = asyncio.run(ask(stack, [acme_request("budget-1", "say hello to the team")]))
    assert first.status == "ok"
    before = budget_of(stack, "acme")
    acme = orjson.dumps("acme")  # faust's JSON key
    sealed = asyncio.run(changelog_values(stack, acme))
    assert len(sealed) >= 2  # the reservation and the settlement
    unsealed = {**before, "spent_usd": 0.0, "requests": 0}
    forged: list[tuple[bytes, bytes | None, int | None]] = [
        (acme, orjson.dumps(unsealed), None),  # an unsealed snapshot, as stored before seals
        (acme, orjson.dumps({"version": 99, "snapshot": unsealed, "seal": "0" * 64}), None),
        (acme, sealed[0], None),  # a replay of the first, sealed record: rolls spend back
        (orjson.dumps("mallory"), orjson.dumps({"version": 1, "snapshot": unsealed}), None),
        (b'{"an": "object"}', b"{}", None),  # an unhashable key once decoded
        (acme, None, None),  # a tombstone would delete the tenant's spend
    ]
    # Undecodable, and the last record of every partition: recovery must still reach the end.
    forged += [(b"\xff\xfe", b"not json", p) for p in range(ROUTING_PARTITIONS)]
    asyncio.run(produce_raw(stack, topic, forged))

    stack.stop_process("router")
    stack.start_worker("router")
    stack.wait_router_web()
    assert budget_of(stack, "acme") == before  # every field: the last good snapshot
    assert "mallory" not in stack.budget()
    wait_dropped(stack, "router", {topic})

    # Recovery ended: the restarted router routes, and charges acme from where it was.
    (after,) = asyncio.run(ask(stack, [acme_request("budget-2", "say goodbye to the team")]))
    assert after.status == "ok"
    deadline = time.monotonic() + 60
    while budget_of(stack, "acme")["requests"] != before["requests"] + 1:
        assert time.monotonic() < deadline, stack.budget().get("acme")
        time.sleep(0.5)
    assert budget_of(stack, "acme")["spent_usd"] > before["spent_usd"]
