"""Kafka output for the provider worker: replies, telemetry and settlements, acknowledged."""

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from schemas.errors import KafkaTimeout

# Kafka record headers, e.g. a W3C ``traceparent`` set by the producer of a job.
Headers = list[tuple[str, bytes]]
Message = tuple[str, str | None, bytes, Headers | None]  # topic, key, value, headers

APPEND_ATTEMPTS = 6
APPEND_PAUSE_S = 0.5  # doubling between attempts: 0.5, 1, 2, 4, 8 s
# Per-partition batches: a worker finishing thousands of jobs a second sends far fewer,
# larger produce requests than with aiokafka's 16 KB default.
MAX_BATCH_BYTES = 1_048_576
# How long a record waits for others to join its batch. Under load batches fill anyway
# while the previous request is in flight; idle, every hop paid the whole wait: 5 ms
# here and in the router made one job's round trip 34 ms at p50, 1 ms makes it 22.
LINGER_MS = 1


class KafkaPublisher:
    """Sends one job's outputs together and waits for the broker's acknowledgements.

    Workers mark a job finished (and so let its offset be committed) only after
    ``deliver`` returns: that ordering is what makes delivery at-least-once. A
    failed send raises from ``deliver`` and the job must not count as finished.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def deliver(self, *messages: Message) -> None:
        """Send ``(topic, key, value, headers)`` messages together and wait for all acks.

        For callers that finish work item by item rather than in batches; the
        producer still batches these sends with everyone else's. A message the
        producer could not even buffer (its batches stayed full for the producer's
        request timeout: a broker slower than the worker) was never sent, so it is
        offered again after a pause, up to ``APPEND_ATTEMPTS`` times; a failed
        acknowledgement is not retried here (the record may be written) and raises.
        """
        pending = list(messages)
        for attempt in range(APPEND_ATTEMPTS):
            acks, unsent = [], []
            for message in pending:
                try:
                    acks.append(await self._send(*message))
                except KafkaTimeoutError:
                    unsent.append(message)
            await asyncio.gather(*acks)
            if not unsent:
                return
            pending = unsent
            await asyncio.sleep(APPEND_PAUSE_S * 2**attempt)
        raise KafkaTimeout(f"{len(pending)} record(s) found no room in the producer's buffer")

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
        linger_ms=LINGER_MS,
        max_request_size=max_request_bytes,
        max_batch_size=min(MAX_BATCH_BYTES, max_request_bytes),
        enable_idempotence=False,
        acks="all",
    )
