"""Nothing vanishes: a few hundred malformed jobs beside valid ones, each accounted for.

Published with raw aiokafka to a running stack; every valid job gets exactly one
``ok`` reply, every bad one a dead letter naming its position (and a rejection on
the shared replies topic when its request_id can be salvaged), internal topics get
nothing foreign, no topic is created, and every process stays up.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from processors.authenticate import sign
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from tests.helpers import Engine, running_stack, sample_keys

pytestmark = pytest.mark.slow

TENANTS = ("acme", "globex", "initech")


@dataclass
class Sent:
    kind: str
    value: bytes | None
    key: bytes | None = None
    request_id: str | None = None  # salvageable: expect a reply
    code: str | None = None  # None: a valid job, expect status ok
    headers: list[tuple[str, bytes]] | None = None
    position: tuple[int, int] = (-1, -1)
    # Whose key signs it: a careless but authentic producer signs even its garbage;
    # None sends it unsigned (a tenant the config does not know cannot sign).
    signer: str | None = "acme"


def job(request_id: str, tenant: str = "acme", **fields: object) -> bytes:
    body: dict[str, object] = {
        "request_id": request_id,
        "tenant": tenant,
        "messages": [{"role": "user", "content": f"say hi {request_id}"}],
    }
    body.update(fields)
    return orjson.dumps(body)


def deep(request_id: str, depth: int) -> bytes:
    nested = b'{"k":' * depth + b"1" + b"}" * depth
    return job(request_id, response_format={"schema": "X"}).replace(b'"X"', nested)


def messages(catalogue: TopicCatalogue, rng: random.Random) -> list[Sent]:
    run = uuid.uuid4().hex[:6]
    out: list[Sent] = []
    for i in range(90):
        tenant = TENANTS[i % 3]
        rid = f"ok-{run}-{i}"
        key = None if i % 10 == 0 else tenant.encode()  # some unkeyed
        headers = [("x-huge", b"h" * 65_536)] if i % 15 == 1 else None
        out.append(Sent("valid", job(rid, tenant), key, rid, None, headers, signer=tenant))
    for i in range(20):
        out.append(
            Sent("not-json", b"{not json " + str(i).encode(), b"acme", code="invalid_request")
        )
        out.append(Sent("binary", rng.randbytes(200), b"acme", code="invalid_request"))
        rid = f"types-{run}-{i}"
        out.append(
            Sent(
                "wrong-types",
                job(rid, max_tokens="lots", messages="hi"),
                b"acme",
                rid,
                "invalid_request",
            )
        )
        rid = f"missing-{run}-{i}"
        out.append(
            Sent(
                "missing",
                orjson.dumps({"request_id": rid, "tenant": "acme"}),
                b"acme",
                rid,
                "invalid_request",
            )
        )
        rid = f"tenant-{run}-{i}"
        out.append(
            Sent(
                "unknown-tenant",
                job(rid, "mallory"),
                b"mallory",
                rid,
                "unknown_tenant",
                signer=None,
            )
        )
        rid = f"deep-{run}-{i}"
        out.append(
            Sent("deep", deep(rid, (300, 600, 1000)[i % 3]), b"acme", rid, "nesting_too_deep")
        )
    for _ in range(10):
        out.append(Sent("empty", b"", b"acme", code="invalid_request"))
        out.append(Sent("null", None, b"acme", code="invalid_request"))
        out.append(Sent("array", b"[1, 2, 3]", b"acme", code="invalid_request"))
        out.append(Sent("json-null", b"null", b"acme", code="invalid_request"))
    for i in range(4):
        rid = f"big-{run}-{i}"
        out.append(
            Sent(
                "oversized",
                job(rid, messages=[{"role": "user", "content": "x" * 1_500_000}]),
                b"acme",
                rid,
                "message_too_large",
            )
        )
    internal = [
        catalogue.settlements.name,
        catalogue.budget_changelog.name,
        catalogue.dispatch.name,
        catalogue.answers.name,
        catalogue.health.name,
        catalogue.cache.name,
    ]
    for i, topic in enumerate(
        [*internal, f"{catalogue.namespace}.nowhere", f"{catalogue.namespace}.replies.acme"] * 3
    ):
        rid = f"replyto-{run}-{i}"
        out.append(Sent("reply-to", job(rid, reply_to=topic), b"acme", rid, "reply_to_refused"))
    rng.shuffle(out)
    return out


async def publish(bootstrap: str, topic: str, sent: list[Sent]) -> None:
    keys = sample_keys()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8_000_000)
    await producer.start()
    try:
        for s in sent:
            headers = list(s.headers or [])
            if s.signer is not None:
                headers += sign(s.value or b"", keys[s.signer], datetime.now(UTC))
            meta = await producer.send_and_wait(topic, s.value, key=s.key, headers=headers)
            s.position = (meta.partition, meta.offset)
    finally:
        await producer.stop()


async def read_all(
    bootstrap: str, topic: str, done: Callable[[list[bytes]], bool], timeout_s: float
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=20_000_000,
        fetch_max_bytes=50_000_000,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done(values):
            batch = await consumer.getmany(timeout_ms=500)
            values += [r.value for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return values


async def topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@pytest.fixture
def stack(engine: Engine, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(engine, namespace, tmp_path) as running:
        yield running


def test_every_message_is_answered_or_dead_lettered_and_none_is_lost(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    sent = messages(catalogue, random.Random(12))
    bad = [s for s in sent if s.code is not None]
    want_replies = {s.request_id for s in sent if s.request_id}
    assert len(sent) > 250 and len(Counter(s.kind for s in bad)) >= 12
    before = asyncio.run(topic_names(stack.bootstrap))
    asyncio.run(publish(stack.bootstrap, catalogue.requests.name, sent))
    stack.check_alive()

    def all_replied(values: list[bytes]) -> bool:
        return {orjson.loads(v)["request_id"] for v in values} >= want_replies

    raw_replies = asyncio.run(read_all(stack.bootstrap, catalogue.replies.name, all_replied, 240))
    replies = [orjson.loads(v) for v in raw_replies]
    letters = [
        orjson.loads(v)
        for v in asyncio.run(
            read_all(stack.bootstrap, catalogue.dead_letter.name, lambda v: len(v) >= len(bad), 60)
        )
    ]

    counts = Counter(r["request_id"] for r in replies)
    by_id = {r["request_id"]: r for r in replies}
    lettered = {
        (x["source_partition"], x["source_offset"]): x
        for x in letters
        if x["source_topic"] == catalogue.requests.name
    }
    lost = [s.kind for s in sent if s.request_id not in by_id and s.position not in lettered]
    assert lost == []
    assert {rid: n for rid, n in counts.items() if n != 1} == {}
    for s in sent:
        if s.code is None:
            assert by_id[s.request_id]["status"] == "ok", s.kind
            assert s.position not in lettered
            continue
        assert lettered[s.position]["error"]["code"] == s.code, s.kind
        if s.request_id is not None:
            assert by_id[s.request_id]["status"] == "rejected"
            assert by_id[s.request_id]["error"]["code"] == s.code, s.kind
    assert len(letters) == len(bad)

    # Internal topics hold only their own records; nothing was created.
    for spec in (catalogue.settlements, catalogue.budget_changelog, catalogue.dispatch):
        for value in asyncio.run(read_all(stack.bootstrap, spec.name, lambda v: False, 3)):
            spec.schema.model_validate_json(value)
    assert asyncio.run(topic_names(stack.bootstrap)) == before
    stack.check_alive()
