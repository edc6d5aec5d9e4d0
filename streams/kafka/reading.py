"""Whole topics outside any group: the existence check, every partition, read to the end.

The embedded broker auto-creates a topic named in a metadata request (with the
wrong settings), so existence is checked through ``topics()``, which lists the
cluster's topics, and a missing topic raises TopicMissing without being created.
``read_to_end`` stops at the end each partition has when the read begins: the
high watermark of the first fetch answer, not ListOffsets, which the embedded
broker gets wrong (streams/kafka/quirks.py, defect 1).
"""

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.errors import KafkaTimeout, StackError, TopicMissing
from streams.kafka.broker_profile import detect, profile

METADATA_WAIT_S = 30.0


def standalone_consumer(
    bootstrap: str, max_fetch_bytes: int | None = None, batched: bool = False
) -> AIOKafkaConsumer:
    """A group-less consumer for reading or following topics the caller assigns itself.

    ``max_fetch_bytes`` must fit the largest record when records can exceed the
    default fetch size. A position that falls off the log restarts at its oldest record.
    ``batched`` reads like a follower of shared state (``broker_profile``): a longer
    wait, and what a fetch gathers before it returns.
    """
    sizes = (
        {}
        if max_fetch_bytes is None
        else {"max_partition_fetch_bytes": max_fetch_bytes, "fetch_max_bytes": max_fetch_bytes}
    )
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **sizes,
        **profile(bootstrap).fetch_settings(batched),
    )


async def assign_whole_topic(
    consumer: AIOKafkaConsumer, topic: str, label: str = "topic"
) -> list[TopicPartition]:
    """Assign every partition of ``topic`` to a started consumer, in partition order.

    Raises TopicMissing (naming the topic as ``label``) if it does not exist.
    """
    if topic not in await consumer.topics():
        raise TopicMissing(f"{label} {topic!r} does not exist: run `switchyard topics create`")
    deadline = time.monotonic() + METADATA_WAIT_S
    # ``topics()`` fetched a listing of its own; the partitions come from the client's
    # metadata, which on a real cluster can predate a just-created topic: refresh it.
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise KafkaTimeout(f"{label} {topic!r} has no partitions in the cluster's metadata")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.05)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    return partitions


async def open_topic(
    bootstrap: str,
    topic: str,
    label: str = "topic",
    max_fetch_bytes: int | None = None,
    batched: bool = False,
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started group-less consumer with every partition of ``topic`` assigned.

    The caller seeks and stops it. Raises TopicMissing (the consumer stopped) if
    the topic does not exist.
    """
    await detect(bootstrap)
    consumer = standalone_consumer(bootstrap, max_fetch_bytes, batched)
    await consumer.start()
    try:
        return consumer, await assign_whole_topic(consumer, topic, label)
    except BaseException:
        await consumer.stop()
        raise


async def require_topic(bootstrap: str, topic: str, label: str = "topic") -> None:
    """Raise TopicMissing if ``topic`` does not exist; never creates it."""
    consumer, _ = await open_topic(bootstrap, topic, label)
    await consumer.stop()


async def read_to_end(
    bootstrap: str,
    topic: str,
    label: str = "topic",
    max_fetch_bytes: int | None = None,
    timeout_s: float = 10.0,
) -> AsyncGenerator[Any, None]:
    """Every record of ``topic`` from its start to the end it has when the read begins.

    Records arriving during the read are left for the next one, so a busy topic
    cannot keep it going. Raises TopicMissing if the topic does not exist and
    StackError if the broker sends nothing for ``timeout_s``. A caller that stops
    early closes the iterator (``contextlib.aclosing``) to stop its consumer.
    """
    consumer, partitions = await open_topic(bootstrap, topic, label, max_fetch_bytes)
    try:
        await consumer.seek_to_beginning(*partitions)
        async for record in _records_to_first_watermark(consumer, partitions, timeout_s):
            yield record
    finally:
        await consumer.stop()


async def _records_to_first_watermark(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout_s: float
) -> AsyncIterator[Any]:
    ends: dict[TopicPartition, int] = {}
    pending = set(partitions)
    deadline = time.monotonic() + timeout_s
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=200)
        for tp in pending:
            # The first watermark seen is the end (see read_to_end).
            watermark = consumer.highwater(tp)
            if watermark is not None:
                ends.setdefault(tp, watermark)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                yield record
        pending = {tp for tp in pending if tp not in ends or await consumer.position(tp) < ends[tp]}
        if batch:
            deadline = time.monotonic() + timeout_s
        elif pending and time.monotonic() > deadline:
            names = ", ".join(sorted(str(tp) for tp in pending))
            raise StackError(f"the broker sent nothing for {names} in {timeout_s:g} s")
