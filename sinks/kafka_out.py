"""Kafka output for the provider worker: replies, telemetry and settlements, acknowledged."""

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

# Kafka record headers, e.g. a W3C ``traceparent`` set by the producer of a job.
Headers = list[tuple[str, bytes]]


class KafkaPublisher:
    """Sends one job's outputs together and waits for the broker's acknowledgements.

    Workers mark a job finished (and so let its offset be committed) only after
    ``deliver`` returns: that ordering is what makes delivery at-least-once. A
    failed send raises from ``deliver`` and the job must not count as finished.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

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


def producer_for(bootstrap: str, max_request_bytes: int) -> AIOKafkaProducer:
    """Plain at-least-once producer: idempotence stays off (the embedded broker rejects it)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_request_size=max_request_bytes,
        enable_idempotence=False,
        acks="all",
    )
