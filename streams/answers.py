"""The answer ledger as a provider worker sees it: request_id -> the reply it got.

Every worker follows the whole ``answers`` topic and keeps the entries of
the dedup window in memory. Before it processes a newly assigned dispatch
partition it catches up to the topic's end, so answers a crashed worker wrote
just before it died are known before their jobs are replayed.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.answer import AnsweredRequest
from streams.consumers import standalone_consumer, stop_follower
from streams.quirks import true_end_offsets

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 30.0


class AnswerLedger:
    def __init__(self, bootstrap: str, topic: str, window_s: float) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.window = timedelta(seconds=window_s)
        self._entries: dict[str, AnsweredRequest] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._follower: asyncio.Task[None] | None = None
        self._partitions: list[TopicPartition] = []
        self._next_prune = time.monotonic() + _PRUNE_EVERY_S

    async def start(self) -> None:
        consumer = standalone_consumer(self.bootstrap)
        await consumer.start()
        # topics() lists the cluster's topics; asking for one by name would auto-create it.
        if self.topic not in await consumer.topics():
            await consumer.stop()
            raise LookupError(f"topic {self.topic!r} missing: run `switchyard topics create`")
        partitions = consumer.partitions_for_topic(self.topic) or set()
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        self._consumer = consumer
        self._follower = asyncio.create_task(self._follow(consumer))
        await self.catch_up()

    async def stop(self) -> None:
        await stop_follower(self._follower, self._consumer)

    def get(self, request_id: str) -> AnsweredRequest | None:
        return self._entries.get(request_id)

    def remember(self, answered: AnsweredRequest) -> None:
        """Our own answer, known before it comes back from the topic."""
        self._entries[answered.request_id] = answered

    async def catch_up(self, timeout_s: float = 30.0) -> None:
        """Return once everything written to the ledger before this call has been read."""
        consumer = self._consumer
        if consumer is None or not self._partitions:
            return
        reported = await consumer.end_offsets(self._partitions)
        ends = await true_end_offsets(self.bootstrap, reported)
        deadline = time.monotonic() + timeout_s
        for tp in self._partitions:
            end = ends.get(tp) or 0
            while await consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"answer ledger not read to its end within {timeout_s}s")
                await asyncio.sleep(0.02)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    try:
                        answered = AnsweredRequest.model_validate_json(record.value or b"")
                    except ValidationError:
                        log.warning("unreadable answer record at offset %s", record.offset)
                        continue
                    known = self._entries.get(answered.request_id)
                    if known is None or known.answered_at <= answered.answered_at:
                        self._entries[answered.request_id] = answered
            if time.monotonic() >= self._next_prune:
                self._prune()

    def _prune(self) -> None:
        cutoff = datetime.now(UTC) - self.window
        self._entries = {k: v for k, v in self._entries.items() if v.answered_at >= cutoff}
        self._next_prune = time.monotonic() + _PRUNE_EVERY_S
