"""The provider worker: dispatch topic -> model API -> reply, telemetry and settlement.

Up to ``MAX_IN_FLIGHT`` jobs run at once (each model also capped by its
``max_concurrency``); fetching pauses while the worker is full, so slow
providers slow consumption instead of filling memory. A job counts as finished
once its reply, telemetry and settlement are acknowledged by the broker, and
offsets are committed up to the oldest unfinished job of each partition. A
crash replays everything after the last commit: at-least-once.
"""

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from processors.dispatch import next_model
from processors.errors import (
    DeadlineExpired,
    ProviderTimeout,
    RateLimited,
    RetryableError,
    SwitchyardError,
)
from processors.reply import completed_reply, telemetry_event
from schemas.codec import dumps
from schemas.config import ModelSpec, SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.messages import Attempt, AttemptOutcome, ChatMessage, ErrorInfo, Usage
from schemas.settlement import SpendSettlement
from sinks.kafka_out import Headers, KafkaPublisher, producer_for
from streams.consumers import group_consumer
from streams.offsets import CommitTracker
from streams.providers import ProviderClient, client_for
from streams.topics import TopicCatalogue

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 128
COMMIT_INTERVAL_S = 0.5


@dataclass
class _Answer:
    message: ChatMessage | None = None
    usage: Usage | None = None
    cost_usd: float = 0.0
    error: ErrorInfo | None = None
    model: ModelSpec | None = None


def _outcome(error: SwitchyardError) -> AttemptOutcome:
    if isinstance(error, ProviderTimeout):
        return "timeout"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, RetryableError):
        return "unavailable"
    return "error"


class ProviderWorker:
    def __init__(self, config: SwitchyardConfig, bootstrap: str, catalogue: TopicCatalogue) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.catalogue = catalogue

    async def run(self, stop: asyncio.Event) -> None:
        limit = self.config.limits.max_message_bytes
        consumer = group_consumer(
            self.bootstrap,
            self.catalogue.dispatch.name,
            f"{self.catalogue.namespace}-providers",
            max_fetch_bytes=4 * limit,
        )
        producer = producer_for(self.bootstrap, 4 * limit)
        # One connection pool per model, sized to its concurrency cap: httpcore's pool
        # scans every connection for every request, so one big shared pool made
        # that scan 86% of this worker's CPU at 128 jobs in flight (py-spy).
        pools = {
            m.name: httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=m.max_concurrency, max_keepalive_connections=m.max_concurrency
                )
            )
            for m in self.config.models
        }
        clients = {m.name: client_for(m, pools[m.name]) for m in self.config.models}
        gates = {m.name: asyncio.Semaphore(m.max_concurrency) for m in self.config.models}
        await producer.start()
        await consumer.start()
        publisher = KafkaPublisher(producer)
        tracker: CommitTracker[TopicPartition] = CommitTracker()
        running: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def finished(tp: TopicPartition, offset: int, task: asyncio.Task[None]) -> None:
            running.discard(task)
            if task.cancelled() or task.exception() is not None:
                # Not marked finished: its offset is never committed, so it is replayed.
                failures.append(task.exception() or asyncio.CancelledError())
                return
            tracker.finished(tp, offset)

        committed: dict[TopicPartition, int] = {}
        next_commit = time.monotonic() + COMMIT_INTERVAL_S
        try:
            while not stop.is_set():
                if failures:
                    raise RuntimeError("a job failed outside the provider call") from failures[0]
                room = MAX_IN_FLIGHT - len(running)
                if room <= 0:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                else:
                    batch = await consumer.getmany(timeout_ms=50, max_records=room)
                    for tp, records in batch.items():
                        for record in records:
                            tracker.started(tp, record.offset)
                            task = asyncio.create_task(
                                self._handle(
                                    record.value, list(record.headers), clients, gates, publisher
                                )
                            )
                            task.add_done_callback(functools.partial(finished, tp, record.offset))
                            running.add(task)
                if time.monotonic() >= next_commit:
                    await _commit(consumer, tracker, committed)
                    next_commit = time.monotonic() + COMMIT_INTERVAL_S
        finally:
            if running:  # let calls under way finish and be committed, briefly
                await asyncio.wait(running, timeout=10)
            with contextlib.suppress(KafkaError):
                await _commit(consumer, tracker, committed)
            await consumer.stop()
            await producer.stop()
            for pool in pools.values():
                await pool.aclose()

    async def _handle(
        self,
        raw: bytes,
        headers: Headers,
        clients: dict[str, ProviderClient],
        gates: dict[str, asyncio.Semaphore],
        publisher: KafkaPublisher,
    ) -> None:
        try:
            job = DispatchJob.model_validate_json(raw)
        except ValidationError:
            # Only the router writes this topic; a bad job means a version skew.
            log.error("undecodable dispatch job (%d bytes) skipped", len(raw))
            return
        attempts: list[Attempt] = []
        answer = await self._call_until_answered(job, attempts, clients, gates)
        now = datetime.now(UTC)
        spec = answer.model
        reply = completed_reply(
            job,
            attempts,
            answer.message,
            answer.usage,
            answer.cost_usd,
            answer.error,
            now,
            region=spec.region if spec else None,
            provider=spec.provider if spec else None,
        )
        request = job.request
        data_class = request.data_classification or self.config.routing.data_classification
        event = telemetry_event(reply, request, job, data_class)
        settlement = SpendSettlement(
            request_id=request.request_id,
            tenant=request.tenant,
            reserved_usd=job.decision.estimated_cost_usd,
            actual_usd=answer.cost_usd,
        )
        reply_to = request.reply_to or self.catalogue.replies.name
        await publisher.deliver(
            (reply_to, request.request_id, dumps(reply), headers),
            (self.catalogue.telemetry.name, request.request_id, dumps(event), None),
            (self.catalogue.settlements.name, request.tenant, dumps(settlement), None),
        )

    async def _call_until_answered(
        self,
        job: DispatchJob,
        attempts: list[Attempt],
        clients: dict[str, ProviderClient],
        gates: dict[str, asyncio.Semaphore],
    ) -> _Answer:
        request = job.request
        error: ErrorInfo | None = None
        max_tokens = request.max_tokens or self.config.routing.default_max_tokens
        while (name := next_model(job.decision, attempts)) is not None:
            spec = self.config.model(name)
            if spec is None:  # config changed under a queued job
                attempts.append(Attempt(model=name, provider="?", outcome="error", latency_ms=0))
                continue
            if request.deadline is not None and request.deadline <= datetime.now(UTC):
                return _Answer(error=DeadlineExpired("deadline passed before the call").info())
            started = time.perf_counter()
            try:
                async with gates[name]:
                    completion = await clients[name].complete(request, max_tokens)
            except SwitchyardError as exc:
                error = exc.info()
                attempts.append(
                    Attempt(
                        model=name,
                        provider=spec.provider,
                        outcome=_outcome(exc),
                        latency_ms=(time.perf_counter() - started) * 1000,
                        error=error,
                    )
                )
                continue
            attempts.append(
                Attempt(
                    model=name,
                    provider=spec.provider,
                    outcome="ok",
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            )
            usage = completion.usage
            return _Answer(
                message=completion.message,
                usage=usage,
                model=spec,
                cost_usd=spec.cost_usd(usage.input_tokens, usage.output_tokens),
            )
        return _Answer(error=error or ErrorInfo(code="no_model", message="no model left to try"))


async def _commit(
    consumer: AIOKafkaConsumer,
    tracker: CommitTracker[TopicPartition],
    committed: dict[TopicPartition, int],
) -> None:
    """Commit positions that moved, for partitions this worker still owns."""
    assigned = consumer.assignment()
    moved = {
        tp: offset
        for tp, offset in tracker.positions().items()
        if tp in assigned and committed.get(tp) != offset
    }
    if not moved:
        return
    try:
        await consumer.commit(moved)
    except CommitFailedError:
        log.warning("commit refused (group rebalanced); uncommitted jobs will be replayed")
        return
    committed.update(moved)
