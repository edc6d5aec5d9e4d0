"""Acknowledged output on the real broker: a record the producer could not buffer is
offered again; one it did buffer is never sent twice."""

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from schemas.errors import KafkaTimeout
from sinks import kafka_out
from sinks.kafka_out import KafkaPublisher, producer_for
from streams.kafka.admin import ensure_topics
from streams.kafka.reading import read_to_end
from streams.local.broker import EmbeddedBroker
from streams.topics import TopicCatalogue


class FullBuffer:
    """A real producer whose buffer is full for the first ``refusals`` sends of a key,
    as aiokafka reports it: ``KafkaTimeoutError`` from ``send``, nothing appended."""

    def __init__(self, producer: AIOKafkaProducer, refusals: dict[bytes, int]) -> None:
        self.producer = producer
        self.refusals = refusals

    async def send(self, topic: str, **kwargs: Any) -> Any:
        key = kwargs.get("key") or b""
        if self.refusals.get(key, 0) > 0:
            self.refusals[key] -= 1
            raise KafkaTimeoutError()
        return await self.producer.send(topic, **kwargs)


async def published(broker: EmbeddedBroker, topic: str, refusals: dict[bytes, int]) -> list[Any]:
    await ensure_topics(broker.bootstrap, [TopicCatalogue(topic).replies])
    name = TopicCatalogue(topic).replies.name
    producer = producer_for(broker.bootstrap, 1_000_000)
    await producer.start()
    try:
        publisher = KafkaPublisher(FullBuffer(producer, refusals))  # type: ignore[arg-type]
        await publisher.deliver(*[(name, f"k{i}", f"v{i}".encode(), None) for i in range(4)])
    finally:
        await producer.stop()
    return [(r.key, r.value) async for r in read_to_end(broker.bootstrap, name)]


@pytest.fixture(autouse=True)
def _no_long_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_out, "APPEND_PAUSE_S", 0.0)


def test_records_the_buffer_refused_are_sent_again_and_none_twice(
    broker: EmbeddedBroker, namespace: str
) -> None:
    records = asyncio.run(published(broker, namespace, {b"k1": 2, b"k3": 1}))
    assert sorted(records) == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(4)]


def test_a_buffer_that_stays_full_is_a_kafka_timeout(
    broker: EmbeddedBroker, namespace: str
) -> None:
    with pytest.raises(KafkaTimeout):
        asyncio.run(published(broker, namespace, {b"k2": kafka_out.APPEND_ATTEMPTS}))
