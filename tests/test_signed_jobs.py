"""Tenants prove who they are, on the real pipeline: every refused job is dead-lettered with
its code, never routed (no provider call, no budget), never answered (processes, real broker)."""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from processors.authenticate import SigningKey, sign
from schemas.codec import dumps
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from tests.helpers import Engine, provider_calls, running_stack, sample_keys

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(engine: Engine, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(engine, namespace, tmp_path) as running:
        yield running


def job(request_id: str, tenant: str = "acme") -> InferenceRequest:
    return InferenceRequest(
        request_id=request_id,
        tenant=tenant,
        messages=[ChatMessage(role="user", content="Confidential: the merger closes Friday.")],
        max_tokens=16,
    )


def hostile_records(
    catalogue: TopicCatalogue, keys: dict[str, SigningKey]
) -> dict[str, tuple[bytes, list[tuple[str, bytes]]]]:
    """request_id -> (value, headers) of each job that must be refused, by its code."""
    now = datetime.now(UTC)
    acme, globex = keys["acme"], keys["globex"]

    def value(request_id: str) -> bytes:
        return dumps(job(request_id).model_copy(update={"reply_to": catalogue.replies.name}))

    tampered = value("sig-tampered")
    return {
        "sig-unsigned": (value("sig-unsigned"), []),
        "sig-other-key": (
            value("sig-other-key"),
            sign(value("sig-other-key"), SigningKey("acme", globex.key_id, globex.secret), now),
        ),
        "sig-cross-tenant": (
            value("sig-cross-tenant"),
            sign(value("sig-cross-tenant"), globex, now),
        ),
        "sig-tampered": (
            tampered.replace(b"Friday", b"Monday"),
            sign(tampered, acme, now),
        ),
        "sig-replayed": (
            value("sig-replayed"),
            sign(value("sig-replayed"), acme, now - timedelta(hours=1)),
        ),
    }


EXPECTED = {
    "sig-unsigned": "unauthenticated",
    "sig-other-key": "signature_invalid",
    "sig-cross-tenant": "tenant_mismatch",
    "sig-tampered": "signature_invalid",
    "sig-replayed": "signature_stale",
}


async def _scenario(stack: Stack) -> tuple[dict[str, bool], InferenceReply, InferenceReply]:
    catalogue = TopicCatalogue(stack.env.namespace)
    keys = sample_keys()
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=keys) as client:
        # A reply to either tenant would show: the refused jobs name acme or globex.
        refused = {
            (tenant, rid): client.expect(tenant, rid)
            for rid in EXPECTED
            for tenant in ("acme", "globex")
        }
        for value, headers in hostile_records(catalogue, keys).values():
            await client.send_raw(value, key="acme", headers=headers)
        good = await client.request(job("sig-good"), timeout_s=90)
        # The same signed record again, inside the window: the ledger's reply, no new call.
        value = dumps(job("sig-good").model_copy(update={"reply_to": catalogue.replies.name}))
        replay = sign(value, keys["acme"], datetime.now(UTC))
    async with SwitchyardClient(stack.bootstrap, catalogue) as again:
        future = again.expect("acme", "sig-good")
        await again.send_raw(value, key="acme", headers=replay)
        second = await asyncio.wait_for(future, 60)
    await asyncio.sleep(2.0)  # a refused job's reply, if any, would have come by now
    return (
        {rid: any(f.done() for (_, r), f in refused.items() if r == rid) for rid in EXPECTED},
        good,
        second,
    )


async def _dead_letters(bootstrap: str, topic: str, wanted: set[str]) -> dict[str, str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    codes: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 30
        while set(codes) < wanted and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for rs in batch.values() for r in rs):
                letter = orjson.loads(record.value or b"{}")
                codes[str(letter.get("request_id"))] = letter["error"]["code"]
    finally:
        await consumer.stop()
    return codes


def _provider_calls(stack: Stack) -> int:
    return sum(provider_calls(stack).values())


def test_only_a_properly_signed_job_is_routed_and_answered(stack: Stack) -> None:
    answered, good, second = asyncio.run(_scenario(stack))
    assert good.status == "ok" and good.tenant == "acme"
    assert second.model_dump() == good.model_dump()  # replay inside the window: same reply
    assert answered == dict.fromkeys(EXPECTED, False)  # no refused job got any reply

    topic = TopicCatalogue(stack.env.namespace).dead_letter.name
    letters = asyncio.run(_dead_letters(stack.bootstrap, topic, set(EXPECTED)))
    assert letters == EXPECTED

    assert _provider_calls(stack) == 1  # the good job only, and its replay made no call
    budget = stack.budget()
    assert set(budget) == {"acme"}  # nothing reached another tenant's budget
    assert int(budget["acme"]["requests"]) == 2  # the good job and its replay, nothing refused
    stack.check_alive()
