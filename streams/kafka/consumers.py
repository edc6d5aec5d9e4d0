"""aiokafka consumers for the raw (non-faust) workers, with the group settings they share."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from pydantic import BaseModel, ValidationError

from schemas.errors import KafkaTimeout
from streams.kafka.broker_profile import profile
from streams.kafka.quirks import true_end_offsets
from streams.kafka.reading import open_topic
from streams.kafka.seals import SealGate

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# A dead member is noticed within the session timeout; the rebalance timeout is the
# broker's (broker_profile: short on the embedded broker, whose joins wait for half of it).
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000


def group_consumer(
    bootstrap: str,
    topic: str | list[str],
    group_id: str,
    max_fetch_bytes: int = 4_000_000,
    batched: bool = False,
    co_partitioned: bool = False,
) -> AIOKafkaConsumer:
    """A manually committed consumer of one topic or several.

    Callers commit only after their outputs are flushed. Fetches wait as the broker's
    job path wants (``broker_profile``), or with ``batched`` as its followers do.
    ``co_partitioned``: topics with equal partition counts, partition p of each given to
    one member together (the range assignor); otherwise round robin over all of them.
    """
    engine = profile(bootstrap)
    strategy = RangePartitionAssignor if co_partitioned else RoundRobinPartitionAssignor
    return AIOKafkaConsumer(
        *([topic] if isinstance(topic, str) else topic),
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        rebalance_timeout_ms=engine.rebalance_timeout_ms,
        max_partition_fetch_bytes=max_fetch_bytes,
        fetch_max_bytes=max(max_fetch_bytes, 52_428_800),
        partition_assignment_strategy=(strategy,),
        **engine.fetch_settings(batched),
    )


async def stop_follower(
    follower: "asyncio.Task[None] | None", consumer: AIOKafkaConsumer | None
) -> None:
    """Stop a task that follows a topic, then its consumer (either may not have started)."""
    if follower is not None:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    if consumer is not None:
        await consumer.stop()


class TopicFollower:
    """Follow every partition of one topic outside any group, handing each value to ``apply``.

    For state every worker keeps whole (the health board, the answer ledger,
    the router's cache and latency book): no group, no commits; a restarted
    worker reads again from the start (or from a little before the end).
    ``after_batch`` runs after each fetched batch, for periodic upkeep. Every record
    passes ``gate`` first: one without the cluster key's seal never reaches ``apply``
    (the gate counts it).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        gate: SealGate,
        apply: Callable[[bytes | None], None],
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.gate = gate
        self.apply = apply
        self.after_batch = after_batch
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self, from_end_minus: int | None = None) -> None:
        """Start reading from the beginning, or ``from_end_minus`` records before each end.

        Raises TopicMissing if the topic does not exist (it is not created).
        """
        consumer, partitions = await open_topic(self.bootstrap, self.topic, batched=True)
        if from_end_minus is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            ends = await true_end_offsets(self.bootstrap, await consumer.end_offsets(partitions))
            for tp in partitions:
                consumer.seek(tp, max((ends.get(tp) or 0) - from_end_minus, 0))
        self._consumer, self._partitions = consumer, partitions
        self._task = asyncio.create_task(self._follow(consumer))

    async def stop(self) -> None:
        await stop_follower(self._task, self._consumer)
        self._task = self._consumer = None

    async def catch_up(self, timeout_s: float = 30.0) -> None:
        """Return once everything written to the topic before this call has been read."""
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
                    raise KafkaTimeout(f"{self.topic} not read to its end within {timeout_s}s")
                await asyncio.sleep(0.02)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    if self.gate.admits(self.topic, record.key, record.value, record.headers):
                        self.apply(record.value)
            if self.after_batch is not None:
                self.after_batch()


class DecodingFollower(TopicFollower, Generic[M]):
    """A TopicFollower that validates each value as ``schema`` before ``on_value`` sees it.

    A value that does not validate is skipped with a warning: one bad record
    must not stop a worker from following the rest of the topic.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        gate: SealGate,
        schema: type[M],
        on_value: Callable[[M], None],
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(bootstrap, topic, gate, self._decode, after_batch)
        self.schema = schema
        self.on_value = on_value

    def _decode(self, raw: bytes | None) -> None:
        try:
            value = self.schema.model_validate_json(raw or b"")
        except ValidationError:
            log.warning("unreadable %s record on %s skipped", self.schema.__name__, self.topic)
            return
        self.on_value(value)
