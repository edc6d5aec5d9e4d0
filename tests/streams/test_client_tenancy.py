"""The client on the real broker: a reply resolves a job only for the tenant that sent it."""

import asyncio
from datetime import UTC, datetime

import pytest

from schemas.codec import dumps
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from sinks.kafka_out import producer_for
from streams.client import SwitchyardClient
from streams.kafka.admin import ensure_topics
from streams.local.broker import EmbeddedBroker
from streams.topics import TopicCatalogue

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def reply(tenant: str, request_id: str, text: str) -> bytes:
    message = ChatMessage(role="assistant", content=text)
    answer = InferenceReply(
        request_id=request_id, tenant=tenant, status="ok", message=message, finished_at=NOW
    )
    return dumps(answer)


@pytest.mark.asyncio
async def test_a_reply_of_another_tenant_with_the_same_request_id_is_ignored(
    broker: EmbeddedBroker, namespace: str
) -> None:
    catalogue = TopicCatalogue(namespace)
    await ensure_topics(broker.bootstrap, [catalogue.requests, catalogue.replies])
    request = InferenceRequest(
        request_id="order-42-summary",
        tenant="acme",
        messages=[ChatMessage(role="user", content="confidential")],
    )
    async with SwitchyardClient(broker.bootstrap, catalogue) as client:
        future = await client.submit(request)
        await client.flush()
        attacker = producer_for(broker.bootstrap, 1_000_000)
        await attacker.start()
        try:
            topic = catalogue.replies.name
            await attacker.send_and_wait(topic, reply("globex", request.request_id, "forged"))
            await asyncio.sleep(1.5)  # the client reads it before the real one is written
            assert not future.done()
            assert client.foreign_replies == 1
            await attacker.send_and_wait(topic, reply("acme", request.request_id, "genuine"))
        finally:
            await attacker.stop()
        answer = await asyncio.wait_for(future, 30)
    assert answer.tenant == "acme" and answer.message is not None
    assert answer.message.text() == "genuine"
    assert (client.foreign_replies, client.duplicate_replies) == (1, 0)
