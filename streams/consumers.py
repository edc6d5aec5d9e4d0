"""aiokafka consumers for the raw (non-faust) workers, with the group settings they share."""

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer

from streams.quirks import FETCH_MAX_WAIT_MS

# Short timeouts: the embedded broker makes a group join wait about half the
# rebalance timeout, so the defaults would add tens of seconds to every start.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 1_000
REBALANCE_TIMEOUT_MS = 4_000


def group_consumer(
    bootstrap: str, topic: str | list[str], group_id: str, max_fetch_bytes: int = 4_000_000
) -> AIOKafkaConsumer:
    """A manually committed consumer of one topic or several.

    Callers commit only after their outputs are flushed.
    """
    return AIOKafkaConsumer(
        *([topic] if isinstance(topic, str) else topic),
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
        max_partition_fetch_bytes=max_fetch_bytes,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        fetch_max_bytes=max(max_fetch_bytes, 52_428_800),
    )


def standalone_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A group-less consumer for reading or following topics the caller assigns itself."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=FETCH_MAX_WAIT_MS
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
