"""The two sides of the bus for backends: submit jobs, await or consume replies.

    async with SwitchyardClient(bootstrap) as client:
        reply = await client.request(InferenceRequest(...), timeout_s=30)

Replies are matched by tenant and request_id together: producers choose their
request_ids, so another tenant may use the same one, and its reply (on a shared
reply topic) must never resolve this tenant's future. Such a reply is ignored and
counted in ``foreign_replies``; a job answered more than once (a redelivery)
resolves its future once and counts in ``duplicate_replies``.

A job whose ``priority`` is ``interactive`` goes to the interactive requests topic,
where the router takes it before a tenant's queued batch jobs.

Given ``keys`` (tenant -> ``SigningKey``, e.g. ``streams.tenant_keys.signing_keys``),
the client signs every job of those tenants (``processors.authenticate``).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from types import TracebackType

from aiokafka import AIOKafkaConsumer

from processors.authenticate import SigningKey, sign
from schemas.codec import dumps
from schemas.errors import ReplyTimeout
from schemas.messages import InferenceReply, InferenceRequest
from sinks.kafka_out import Headers, producer_for
from streams.kafka.broker_profile import detect
from streams.kafka.reading import open_topic
from streams.topics import TopicCatalogue


class SwitchyardClient:
    def __init__(
        self,
        bootstrap: str,
        catalogue: TopicCatalogue | None = None,
        reply_topic: str | None = None,
        max_message_bytes: int = 1_000_000,
        keys: Mapping[str, SigningKey] | None = None,
    ) -> None:
        self.catalogue = catalogue or TopicCatalogue()
        self.bootstrap = bootstrap
        self.reply_topic = reply_topic or self.catalogue.replies.name
        self.max_message_bytes = max_message_bytes
        self.keys = dict(keys or {})
        self.producer = producer_for(bootstrap, max(4 * max_message_bytes, 1_048_576))
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[tuple[str, str], asyncio.Future[InferenceReply]] = {}
        self._tenants: dict[str, set[str]] = {}  # request_id -> tenants waiting for it
        self._answered: set[tuple[str, str]] = set()
        self.duplicate_replies = 0
        self.foreign_replies = 0

    async def __aenter__(self) -> "SwitchyardClient":
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self, listen: bool = True) -> None:
        await detect(self.bootstrap)  # the reply reader's fetch wait depends on the engine
        await self.producer.start()
        if listen:
            self._consumer = await _tail(self.bootstrap, self.reply_topic)
            self._reader = asyncio.create_task(self._read_replies(self._consumer))

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()
        await self.producer.stop()

    async def submit(
        self, request: InferenceRequest, headers: Headers | None = None
    ) -> asyncio.Future[InferenceReply]:
        """Publish a job (keyed by tenant), signed when the client has its tenant's key,
        and return a future for its reply.

        ``headers`` (a ``traceparent``, say) travel with the job and come back on its reply.
        """
        request = request.model_copy(
            update={
                "reply_to": request.reply_to or self.reply_topic,
                "submitted_at": request.submitted_at or datetime.now(UTC),
            }
        )
        future = self.expect(request.tenant, request.request_id)
        await self.send_raw(
            dumps(request),
            key=request.tenant,
            headers=headers,
            sign_as=request.tenant,
            interactive=request.priority == "interactive",
        )
        return future

    def expect(self, tenant: str, request_id: str) -> asyncio.Future[InferenceReply]:
        """The future for the reply to ``tenant``'s ``request_id`` (for jobs sent raw too)."""
        future = self._waiting.setdefault(
            (tenant, request_id), asyncio.get_running_loop().create_future()
        )
        self._tenants.setdefault(request_id, set()).add(tenant)
        return future

    async def send_raw(
        self,
        value: bytes,
        key: str | None = None,
        headers: Headers | None = None,
        sign_as: str | None = None,
        interactive: bool = False,
    ) -> None:
        """Publish bytes as they are to the requests topic, or its interactive lane (tests
        use it for bad input), signed as tenant ``sign_as`` when the client has that
        tenant's key."""
        signing = self.keys.get(sign_as) if sign_as is not None else None
        if signing is not None:
            headers = [*(headers or []), *sign(value, signing, datetime.now(UTC))]
        lane = self.catalogue.interactive if interactive else self.catalogue.requests
        await self.producer.send(
            lane.name,
            value=value,
            key=key.encode() if key else None,
            headers=headers or None,
        )

    async def flush(self) -> None:
        await self.producer.flush()

    async def request(
        self, request: InferenceRequest, timeout_s: float = 60, headers: Headers | None = None
    ) -> InferenceReply:
        future = await self.submit(request, headers)
        await self.producer.flush()
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise ReplyTimeout(
                f"no reply in time for {request.request_id} "
                "(are the workers running? `switchyard up`)"
            ) from None

    async def _read_replies(self, consumer: AIOKafkaConsumer) -> None:
        async for reply in _replies(consumer):
            self.receive(reply)

    def receive(self, reply: InferenceReply) -> None:
        """Resolve the future of the job ``reply`` answers: same tenant and request_id."""
        job = (reply.tenant, reply.request_id)
        if job in self._answered:
            self.duplicate_replies += 1
            return
        future = self._waiting.pop(job, None)
        if future is None:
            if self._tenants.get(reply.request_id):  # another tenant's job, same request_id
                self.foreign_replies += 1
            return
        self._answered.add(job)
        waiting = self._tenants.get(reply.request_id, set())
        waiting.discard(reply.tenant)
        if not waiting:
            self._tenants.pop(reply.request_id, None)
        if not future.done():
            future.set_result(reply)


async def _tail(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the current end of every partition of ``topic``."""
    consumer, partitions = await open_topic(bootstrap, topic, "reply topic")
    await consumer.seek_to_end(*partitions)
    for tp in partitions:  # resolve positions now, before any job is sent
        await consumer.position(tp)
    return consumer


async def _replies(consumer: AIOKafkaConsumer) -> AsyncIterator[InferenceReply]:
    while True:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                yield InferenceReply.model_validate_json(record.value)


async def consume_replies(bootstrap: str, topic: str) -> AsyncIterator[InferenceReply]:
    """Every reply published to ``topic`` from now on, for consumers that only read."""
    consumer = await _tail(bootstrap, topic)
    try:
        async for reply in _replies(consumer):
            yield reply
    finally:
        await consumer.stop()
