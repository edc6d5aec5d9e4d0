"""Tenants on the real pipeline: colliding request_ids and jobs on every partition.

Jobs are written with raw aiokafka, as a careless or hostile producer would: any
partition, keyed by tenant or not at all, request_ids another tenant also uses.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.authenticate import sign
from schemas.errors import AccessDenied
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.local.broker import free_port
from streams.local.stack import Stack, read_budget_page
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue, home_partition
from tests.helpers import SAMPLE_CONFIG, Engine, running_stack, sample_keys

pytestmark = pytest.mark.slow

WORDS = {"acme": "aardvark", "globex": "walrus", "initech": "narwhal"}


def prompt_of(tenant: str) -> str:
    return " ".join([WORDS[tenant]] * 60)


@pytest.fixture
def stack(engine: Engine, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    # initech can afford no job at all; acme and globex keep the sample budgets.
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["tenants"]["initech"]["budget_usd"] = 1e-9
    config = tmp_path / "tenancy.yaml"
    config.write_text(yaml.safe_dump(raw))
    with running_stack(engine, namespace, tmp_path, config) as running:
        yield running


def job(tenant: str, request_id: str, reply_to: str) -> bytes:
    request = InferenceRequest(
        request_id=request_id,
        tenant=tenant,
        reply_to=reply_to,
        max_tokens=64,
        messages=[ChatMessage(role="user", content=prompt_of(tenant))],
    )
    return orjson.dumps(request.model_dump(mode="json", exclude_none=True))


async def produce(
    bootstrap: str, records: list[tuple[str, int | None, bytes | None, bytes]]
) -> None:
    """``(topic, partition, key, value)`` records, each signed by the tenant it names
    (the sample config's tenants accept only signed jobs) and acknowledged."""
    keys = sample_keys()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, partition, key, value in records:
            signed = sign(value, keys[orjson.loads(value)["tenant"]], datetime.now(UTC))
            await producer.send_and_wait(topic, value, key=key, partition=partition, headers=signed)
    finally:
        await producer.stop()


async def read_replies(
    bootstrap: str, topic: str, wanted: int, timeout_s: float = 90
) -> list[InferenceReply]:
    """The replies on ``topic`` from its beginning: at least ``wanted`` (fewer on timeout),
    and whatever else comes in the 2 s after, so a reply given twice shows as one."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    replies: list[InferenceReply] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(replies) >= wanted:
                deadline = min(deadline, time.monotonic() + 2)
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for rs in batch.values() for r in rs):
                replies.append(InferenceReply.model_validate_json(record.value))
    finally:
        await consumer.stop()
    return replies


def text_of(reply: InferenceReply) -> str:
    assert reply.status == "ok", reply.error
    assert reply.message is not None
    return reply.message.text()


def assert_own_answer(reply: InferenceReply, tenant: str) -> None:
    other = next(w for t, w in WORDS.items() if t != tenant)
    assert reply.tenant == tenant
    assert WORDS[tenant] in text_of(reply) and other not in text_of(reply)
    assert len(reply.attempts) >= 1  # a provider call of its own, not the other's answer


def test_a_colliding_request_id_gets_each_tenant_its_own_answer(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    replies_topic = catalogue.replies.name

    async def raw() -> list[InferenceReply]:
        records = [
            (catalogue.requests.name, None, t.encode(), job(t, "order-42-summary", replies_topic))
            for t in ("acme", "globex")
        ]
        await produce(stack.bootstrap, records)
        return await read_replies(stack.bootstrap, replies_topic, wanted=2)

    async def through_clients() -> tuple[InferenceReply, InferenceReply, int]:
        async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
            futures = [
                await client.submit(
                    InferenceRequest(
                        request_id="order-43-summary",
                        tenant=tenant,
                        max_tokens=64,
                        messages=[ChatMessage(role="user", content=prompt_of(tenant))],
                    )
                )
                for tenant in ("acme", "globex")
            ]
            await client.flush()
            done = await asyncio.wait_for(asyncio.gather(*futures), 90)
            return done[0], done[1], client.duplicate_replies

    from_raw = asyncio.run(raw())
    assert sorted(r.tenant for r in from_raw) == ["acme", "globex"]
    for reply in from_raw:
        assert reply.request_id == "order-42-summary"
        assert_own_answer(reply, reply.tenant)
    acme, globex, duplicates = asyncio.run(through_clients())
    assert_own_answer(acme, "acme")
    assert_own_answer(globex, "globex")
    assert duplicates == 0
    stack.check_alive()


def every_partition(tenant: str, topic: str, reply_to: str) -> list[Any]:
    """Two jobs per partition: one keyed by tenant, one unkeyed."""
    return [
        (topic, p, key, job(tenant, f"{tenant}-p{p}-{'keyed' if key else 'unkeyed'}", reply_to))
        for p in range(ROUTING_PARTITIONS)
        for key in (tenant.encode(), None)
    ]


def test_budgets_hold_for_jobs_on_every_partition_keyed_or_not(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    replies_topic = catalogue.replies.name
    records = [
        *every_partition("initech", catalogue.requests.name, replies_topic),
        *every_partition("acme", catalogue.requests.name, replies_topic),
    ]

    async def run() -> list[InferenceReply]:
        await produce(stack.bootstrap, records)
        return await read_replies(stack.bootstrap, replies_topic, wanted=len(records))

    replies = asyncio.run(run())
    assert len(replies) == len(records)
    by_tenant: dict[str, list[InferenceReply]] = {"initech": [], "acme": []}
    for reply in replies:
        by_tenant[reply.tenant].append(reply)
    initech, acme = by_tenant["initech"], by_tenant["acme"]
    assert len(initech) == len(acme) == 2 * ROUTING_PARTITIONS
    assert {(r.status, r.error.code if r.error else None) for r in initech} == {
        ("rejected", "budget_exhausted")
    }
    assert all(r.attempts == [] and r.cost_usd == 0 for r in initech)
    assert {r.status for r in acme} == {"ok"}
    spent = sum(r.cost_usd for r in acme)
    budget = settled_budget(stack, "acme")
    assert budget["requests"] == 2 * ROUTING_PARTITIONS  # each reserved exactly once
    # ...on acme's home partition: jobs elsewhere were moved there before any reservation,
    # so with several routers the one that owns acme's budget reserves them all. Each
    # counts as read where it was written (its forward's sealed origin).
    home = home_partition("acme")
    assert set(budget["applied"]) == {
        *(f"{catalogue.requests.name}:{p}" for p in range(ROUTING_PARTITIONS)),
        f"{catalogue.settlements.name}:{home}",
    }
    assert budget["spent_usd"] == pytest.approx(spent)
    assert stack.budget()["initech"]["requests"] == 0
    stack.check_alive()


def settled_budget(stack: Stack, tenant: str, timeout_s: float = 30) -> dict[str, Any]:
    """The tenant's snapshot once every reservation has been settled."""
    deadline = time.monotonic() + timeout_s
    while True:
        snapshot: dict[str, Any] = dict(stack.budget()[tenant])
        if snapshot["reserved_usd"] < 1e-12 or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.5)


def budget_pages(stack: Stack, ports: list[int]) -> list[dict[str, dict[str, Any]]]:
    return [read_budget_page(port, stack.admin_token) for port in ports]


def held_by_one(pages: list[dict[str, dict[str, Any]]], tenant: str) -> dict[str, Any]:
    """The tenant's snapshot, from the one router that holds it."""
    holding = [page[tenant] for page in pages if tenant in page]
    assert len(holding) == 1, f"{tenant} held by {len(holding)} routers"
    return holding[0]


def test_two_routers_and_two_providers_answer_each_job_once_and_keep_budgets_exact(
    stack: Stack,
) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    requests, replies_topic = catalogue.requests.name, catalogue.replies.name
    second = free_port()
    stack.spawn("router-2", "worker", "router", "--web-port", str(second))
    stack.spawn("provider-2", "worker", "provider")  # the dispatch partitions split too
    ports = [stack.router_web_port or 0, second]
    sent: list[tuple[str, int | None, bytes | None, bytes]] = []
    deadline = time.monotonic() + 90
    for round_ in range(1000):  # until both routers are up and each holds a tenant
        batch = [
            (requests, p, key, job(tenant, f"{tenant}-r{round_}-p{p}-{key is None}", replies_topic))
            for tenant in ("acme", "globex", "initech")
            for p in range(ROUTING_PARTITIONS)
            for key in (tenant.encode(), None)
        ]
        asyncio.run(produce(stack.bootstrap, batch))
        sent += batch
        stack.check_alive()
        try:
            pages = budget_pages(stack, ports)
        except (httpx.HTTPError, AccessDenied):
            pages = [{}, {}]
        if round_ >= 2 and all(pages):
            break
        assert time.monotonic() < deadline, f"the routers did not share the tenants: {pages}"
        time.sleep(1)

    wanted = {InferenceRequest.model_validate_json(value).request_id for *_, value in sent}
    replies = asyncio.run(read_replies(stack.bootstrap, replies_topic, len(wanted)))
    answered = Counter(r.request_id for r in replies)
    missing, twice = wanted - set(answered), {rid for rid, n in answered.items() if n > 1}
    assert not missing and not twice, f"unanswered {sorted(missing)}, twice {sorted(twice)}"
    for tenant in ("acme", "globex"):
        assert {r.status for r in replies if r.tenant == tenant} == {"ok"}
        deadline = time.monotonic() + 30
        while True:
            snapshot = held_by_one(budget_pages(stack, ports), tenant)
            if snapshot["reserved_usd"] < 1e-12 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        jobs = [r for r in replies if r.tenant == tenant]
        assert snapshot["requests"] == len(jobs)  # each reserved exactly once, by one router
        assert snapshot["spent_usd"] == pytest.approx(sum(r.cost_usd for r in jobs))
        # Requests count as read where they were first written (a forward carries its
        # origin); settlements arrive on the home partition only.
        home = home_partition(tenant)
        assert set(snapshot["applied"]) == {
            *(f"{requests}:{p}" for p in range(ROUTING_PARTITIONS)),
            f"{catalogue.settlements.name}:{home}",
        }
    refused = [r for r in replies if r.tenant == "initech"]
    assert {(r.status, r.error.code if r.error else None) for r in refused} == {
        ("rejected", "budget_exhausted")
    }
    stack.check_alive()
