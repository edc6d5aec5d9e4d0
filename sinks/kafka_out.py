"""Kafka output for the provider worker: replies, telemetry and settlements, acknowledged.

``KafkaPublisher`` sends a job's records and waits for each acknowledgement: on several
brokers the records of one job go out in one produce request per partition leader, so a
worker killed between two of them leaves part of a job written. ``TransactionalPublisher``
(Apache Kafka) writes them in one transaction with other jobs', all visible or none to a
``read_committed`` reader, and a newer producer with its transactional id fences it.
"""

import asyncio
import contextlib
from typing import Any, Protocol

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


class Publisher(Protocol):
    async def deliver(self, *messages: Message) -> None: ...


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
                    acks.append(await send(self.producer, message))
                except KafkaTimeoutError:
                    unsent.append(message)
            await acknowledged(acks)
            if not unsent:
                return
            pending = unsent
            await asyncio.sleep(APPEND_PAUSE_S * 2**attempt)
        raise KafkaTimeout(f"{len(pending)} record(s) found no room in the producer's buffer")


# The broker aborts a transaction left open this long (its writer died and nobody took
# its transactional id over): until then read_committed readers of the partitions it
# wrote wait at it. Ours last one produce and one commit (about 0.1 s on 3 brokers).
TRANSACTION_TIMEOUT_MS = 20_000


def producer_for(
    bootstrap: str, max_request_bytes: int, transactional_id: str | None = None
) -> AIOKafkaProducer:
    """Plain at-least-once producer: idempotence stays off (the embedded broker rejects it),
    unless ``transactional_id`` makes it a transactional one (Apache Kafka only)."""
    transactional = (
        {}
        if transactional_id is None
        else {
            "transactional_id": transactional_id,
            "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS,
        }
    )
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=LINGER_MS,
        max_request_size=max_request_bytes,
        max_batch_size=min(MAX_BATCH_BYTES, max_request_bytes),
        enable_idempotence=transactional_id is not None,
        acks="all",
        **transactional,
    )


class TransactionalPublisher:
    """Writes jobs' records in Kafka transactions, as many jobs per transaction as
    finished while the previous one committed.

    ``deliver`` returns once the transaction holding its records committed, and
    raises what ended it otherwise (``ProducerFenced`` once a newer producer took the
    transactional id: nothing of that transaction is visible). ``start`` returns once
    the broker knows this producer: from then on an older one with the id is fenced
    and the transaction it left open aborted.
    """

    def __init__(self, bootstrap: str, transactional_id: str, max_request_bytes: int) -> None:
        self.producer = producer_for(bootstrap, max_request_bytes, transactional_id)
        self._pending: list[tuple[tuple[Message, ...], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._fatal: Exception | None = None  # what ended this producer (fenced)
        self._closing = False

    async def start(self) -> None:
        await self.producer.start()
        # An empty transaction waits for the producer id: the fencing is done after it.
        await self.producer.begin_transaction()
        await self.producer.commit_transaction()
        self._writer = asyncio.create_task(self._write())

    async def stop(self) -> None:
        """Commit what was delivered so far, then close the producer."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            with contextlib.suppress(Exception):  # its failure went to every deliver
                await self._writer
        _settle(self._pending, KafkaTimeout("the publisher stopped before a commit"))
        self._pending.clear()
        with contextlib.suppress(Exception):  # a fenced producer cannot end cleanly
            await self.producer.stop()

    async def deliver(self, *messages: Message) -> None:
        if self._fatal is not None:
            raise self._fatal
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((messages, done))
        self._wake.set()
        await done

    async def _write(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, self._pending = self._pending, []
            try:
                await self._commit([m for messages, _ in batch for m in messages])
            except Exception as exc:  # each deliver raises it
                _settle(batch, exc)
                if self.producer._txn_manager.is_fatal_error():  # fenced
                    self._fatal = exc
                    _settle(self._pending, exc)
                    self._pending.clear()
                    return
            else:
                _settle(batch, None)

    async def _commit(self, messages: list[Message]) -> None:
        async with self.producer.transaction():
            acks = [await send(self.producer, message) for message in messages]
            await acknowledged(acks)


def _settle(
    batch: list[tuple[tuple[Message, ...], "asyncio.Future[None]"]], error: Exception | None
) -> None:
    """End each deliver of ``batch`` (one whose caller was cancelled is done already)."""
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


async def send(producer: AIOKafkaProducer, message: Message) -> "asyncio.Future[Any]":
    """Buffer one ``(topic, key, value, headers)`` message; its acknowledgement to await."""
    topic, key, value, headers = message
    future: asyncio.Future[Any] = await producer.send(
        topic,
        value=value,
        key=key.encode() if key is not None else None,
        headers=list(headers) if headers else None,
    )
    return future


async def acknowledged(acks: list["asyncio.Future[Any]"]) -> None:
    """Wait for every ack, then raise the first failure: none is left unretrieved."""
    for result in await asyncio.gather(*acks, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result
