"""Batched Kafka output for replies, telemetry, settlements and dead letters."""

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

# Kafka record headers, e.g. a W3C ``traceparent`` set by the producer of a job.
Headers = list[tuple[str, bytes]]


class KafkaPublisher:
    """Queues sends without waiting; ``flush`` waits until all of them are acknowledged.

    Workers call ``flush`` before committing their input offsets: that ordering
    is what makes delivery at-least-once. A failed send raises from ``flush``
    and the caller must not commit.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._pending: list[asyncio.Future[Any]] = []

    async def add(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        self._pending.append(await self._send(topic, key, value, headers))

    async def deliver(self, *messages: tuple[str, str | None, bytes, Headers | None]) -> None:
        """Send ``(topic, key, value, headers)`` messages together and wait for all acks.

        For callers that finish work item by item rather than in batches; the
        producer still batches these sends with everyone else's.
        """
        await asyncio.gather(*[await self._send(*message) for message in messages])

    async def _send(
        self, topic: str, key: str | None, value: bytes, headers: Headers | None
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self.producer.send(
            topic,
            value=value,
            key=key.encode() if key is not None else None,
            headers=list(headers) if headers else None,
        )
        return future

    async def flush(self) -> int:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
        return len(pending)


def producer_for(bootstrap: str, max_request_bytes: int) -> AIOKafkaProducer:
    """Plain at-least-once producer: idempotence stays off (the embedded broker rejects it)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_request_size=max_request_bytes,
        enable_idempotence=False,
        acks="all",
    )
