"""The provider worker: dispatch and retry topics -> model APIs -> reply, telemetry, settlement.

Per job, ``processors.dispatch.next_step`` says what to do: call a model
(the chosen one, then its fallbacks, skipping endpoints whose circuit is open
or that a 429 asked to wait), park the job on a retry topic until an endpoint
can take it again, or finish it with a reply. Parking is a produce to a delay
topic, so a waiting job never holds its dispatch partition or a slot here.

Delivery: a job counts as finished once its outputs are acknowledged by the
broker (reply, telemetry, settlement and answer-ledger entry, or the parked
copy), and offsets are committed up to the oldest unfinished job of each
partition. A crash replays everything after the last commit; the answer
ledger (written in the same produce request as the reply) turns a replay of
an answered job into a no-op, so the producer sees one reply per submission.

Backpressure: at most ``MAX_IN_FLIGHT`` jobs run at once and each model has
its own ``max_concurrency`` gate; fetching pauses while the worker is full.
A retry partition whose head is not due yet is paused until it is.
"""

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import ValidationError

from processors.cache import entry_for
from processors.cascade import check_answer
from processors.dispatch import Call, Finish, Park, next_step, retry_tier
from processors.idempotency import duplicate_action
from processors.reply import completed_reply, telemetry_event
from schemas.answer import AnsweredRequest
from schemas.codec import dumps
from schemas.config import ModelSpec, SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob
from schemas.errors import (
    DeadlineExpired,
    InternalError,
    InvalidRequest,
    ProviderTimeout,
    RateLimited,
    RetryableError,
    SwitchyardError,
)
from schemas.messages import Attempt, AttemptOutcome
from schemas.plan import AnswerCheck, PlanStep
from schemas.settlement import SpendSettlement
from schemas.telemetry import ShadowRow, TelemetryEvent
from sinks.kafka_out import Headers, KafkaPublisher, producer_for
from streams.kafka.consumers import group_consumer
from streams.kafka.offsets import CommitTracker
from streams.providers import Completion, ProviderClient, client_for
from streams.topics import TopicCatalogue
from streams.workers.answers import AnswerLedger
from streams.workers.health import HealthBoard

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 128
COMMIT_INTERVAL_S = 0.5
# Rebalance: how long a revoked partition's jobs get to finish before it is
# handed over (under the group's 4 s rebalance timeout).
REVOKE_WAIT_S = 2.0

Message = tuple[str, str | None, bytes, Headers | None]


@dataclass
class _Answered:
    completion: Completion
    spec: ModelSpec


def _outcome(error: SwitchyardError) -> AttemptOutcome:
    if isinstance(error, ProviderTimeout):
        return "timeout"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, RetryableError):
        return "unavailable"
    return "error"


def _epoch(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


class ProviderWorker:
    def __init__(self, config: SwitchyardConfig, bootstrap: str, catalogue: TopicCatalogue) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.catalogue = catalogue
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.rng = random.Random()  # noqa: S311 - jitter, not security
        self.retry_topics = [t.name for t in catalogue.retry]
        self.tracker: CommitTracker[TopicPartition] = CommitTracker()
        self.committed: dict[TopicPartition, int] = {}
        self.resume_at: dict[TopicPartition, float] = {}
        # request_id -> finished when the job running for it is done
        self.in_flight: dict[str, asyncio.Future[None]] = {}
        self.shadows: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        limit = self.config.limits.max_message_bytes
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
        self.clients: dict[str, ProviderClient] = {
            m.name: client_for(m, pools[m.name]) for m in self.config.models
        }
        self.gates = {m.name: asyncio.Semaphore(m.max_concurrency) for m in self.config.models}
        await producer.start()
        self.publisher = KafkaPublisher(producer)
        self.board = HealthBoard(
            self.config, self.bootstrap, self.catalogue.health.name, producer, self.worker_id
        )
        self.ledger = AnswerLedger(
            self.bootstrap, self.catalogue.answers.name, self.config.dispatch.dedup_window_s
        )
        await self.board.start()
        await self.ledger.start()
        consumer = group_consumer(
            self.bootstrap,
            self.catalogue.dispatch.name,
            f"{self.catalogue.namespace}-providers",
            max_fetch_bytes=4 * limit,
        )
        consumer.subscribe(
            [self.catalogue.dispatch.name, *self.retry_topics],
            listener=_Rebalance(self, consumer),
        )
        await consumer.start()
        running: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def finished(tp: TopicPartition, offset: int, task: asyncio.Task[None]) -> None:
            running.discard(task)
            if task.cancelled() or task.exception() is not None:
                # Not marked finished: its offset is never committed, so it is replayed.
                failures.append(task.exception() or asyncio.CancelledError())
                return
            self.tracker.finished(tp, offset)

        next_commit = time.monotonic() + COMMIT_INTERVAL_S
        try:
            while not stop.is_set():
                if failures:
                    raise InternalError("a job failed outside the provider call") from failures[0]
                self._resume_due(consumer)
                room = MAX_IN_FLIGHT - len(running)
                if room <= 0:
                    await asyncio.wait(running, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
                else:
                    batch = await consumer.getmany(timeout_ms=50, max_records=room)
                    for tp, records in batch.items():
                        for record in records:
                            job = self._job_or_park(consumer, tp, record.offset, record.value)
                            if job is False:
                                break  # partition paused until its head is due
                            self.tracker.started(tp, record.offset)
                            work = (
                                self._handle(job, list(record.headers))
                                if job is not None
                                else self._dead_letter_undecodable(tp, record.offset, record.value)
                            )
                            task = asyncio.create_task(work)
                            task.add_done_callback(functools.partial(finished, tp, record.offset))
                            running.add(task)
                if time.monotonic() >= next_commit:
                    await self._commit(consumer)
                    next_commit = time.monotonic() + COMMIT_INTERVAL_S
        finally:
            # SIGTERM: fetch nothing more, let calls under way finish and be
            # committed; anything still running after the drain is handed back
            # uncommitted and replayed by the next owner of its partition.
            if running:
                log.info("stopping: draining %d jobs in flight", len(running))
                await asyncio.wait(running, timeout=self.config.dispatch.drain_timeout_s)
                if running:
                    log.warning("%d jobs still running after the drain: handed back", len(running))
            with contextlib.suppress(KafkaError):
                await self._commit(consumer)
            for task in [*running, *self.shadows]:
                task.cancel()
            await consumer.stop()
            await self.ledger.stop()
            await self.board.stop()
            await producer.stop()
            for pool in pools.values():
                await pool.aclose()

    # --- fetching --------------------------------------------------------------

    def _job_or_park(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, raw: bytes | None
    ) -> DispatchJob | Literal[False] | None:
        """The job to run; None if undecodable; False if the partition's head is not due."""
        try:
            job = DispatchJob.model_validate_json(raw or b"")
        except ValidationError:
            return None
        due = _epoch(job.not_before)
        if due is not None and tp.topic in self.retry_topics and due > time.time():
            consumer.pause(tp)
            consumer.seek(tp, offset)
            self.resume_at[tp] = due
            return False
        return job

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        now = time.time()
        for tp, due in list(self.resume_at.items()):
            if due <= now:
                del self.resume_at[tp]
                if tp in consumer.assignment():
                    consumer.resume(tp)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit positions that moved, for partitions this worker still owns."""
        assigned = consumer.assignment()
        moved = {
            tp: offset
            for tp, offset in self.tracker.positions().items()
            if tp in assigned and self.committed.get(tp) != offset
        }
        if not moved:
            return
        try:
            await consumer.commit(moved)
        except CommitFailedError:
            log.warning("commit refused (group rebalanced); uncommitted jobs will be replayed")
            return
        self.committed.update(moved)

    # --- one job ---------------------------------------------------------------

    async def _handle(self, job: DispatchJob, headers: Headers) -> None:
        request_id = job.request.request_id
        running = self.in_flight.get(request_id)
        if running is not None:  # the same request_id is being answered right now
            await asyncio.shield(running)
        action = duplicate_action(
            self.ledger.get(request_id), job, datetime.now(UTC), self.config.dispatch.dedup_window_s
        )
        if action == "skip":
            return
        if action == "resend":
            await self._resend(job, headers)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight[request_id] = done
        try:
            await self._process(job, headers)
        finally:
            if self.in_flight.get(request_id) is done:
                del self.in_flight[request_id]
            done.set_result(None)

    async def _process(self, job: DispatchJob, headers: Headers) -> None:
        decision = job.decision
        chain = [decision.chosen_model, *decision.fallback_models]
        deadline = _epoch(job.request.deadline)
        attempts = list(job.attempts)
        steps = list(job.steps)
        answered: _Answered | None = None
        policy = self.config.dispatch.retry
        gates = self.board.gates
        plan = decision.plan
        checked = set(plan.cascade[:-1])  # the top rung's answer stands unchecked
        while True:
            now = time.time()
            step = next_step(
                chain, attempts, job.round, job.parked_s, now, deadline, gates, policy, self.rng
            )
            if isinstance(step, Call):
                attempts.extend(step.skipped)
                if step.wait_s > 0:
                    await asyncio.sleep(step.wait_s)
                attempt, answered = await self._call(step.model, job, deadline)
                await self.board.record(attempt, time.time())
                if answered is not None and step.model in checked:
                    completion = answered.completion
                    result = check_answer(
                        plan.check or AnswerCheck(),
                        job.request,
                        completion.message.text(),
                        completion.logprobs,
                    )
                    kind = "check_passed" if result.passed else "check_failed"
                    steps.append(PlanStep(kind=kind, model=step.model, detail=result.detail))
                    if not result.passed:  # escalate: the next rung answers
                        attempt = attempt.model_copy(update={"outcome": "rejected"})
                        answered = None
                attempts.append(attempt)
                continue
            if isinstance(step, Park):
                await self._park(job, attempts, steps, step, now, headers)
                return
            await self._finish(job, attempts, steps, answered, step, headers)
            return

    async def _call(
        self, name: str, job: DispatchJob, deadline: float | None
    ) -> tuple[Attempt, _Answered | None]:
        spec = self.config.model(name)
        assert spec is not None  # next_step only offers models that have gates  # noqa: S101
        request = job.request
        max_tokens = request.max_tokens or self.config.routing.default_max_tokens
        started = time.perf_counter()
        try:
            async with self.gates[name]:
                remaining = deadline - time.time() if deadline is not None else None
                if remaining is not None and remaining <= 0:
                    raise ProviderTimeout(f"{spec.provider}/{name}: deadline reached in queue")
                completion = await self.clients[name].complete(request, max_tokens, remaining)
        except SwitchyardError as exc:
            return Attempt(
                model=name,
                provider=spec.provider,
                outcome=_outcome(exc),
                latency_ms=(time.perf_counter() - started) * 1000,
                error=exc.info(),
                round=job.round,
                retry_after_s=exc.retry_after_s if isinstance(exc, RateLimited) else None,
            ), None
        usage = completion.usage
        return Attempt(
            model=name,
            provider=spec.provider,
            outcome="ok",
            latency_ms=(time.perf_counter() - started) * 1000,
            round=job.round,
            cost_usd=spec.cost_usd(usage.input_tokens, usage.output_tokens),
        ), _Answered(completion, spec)

    async def _park(
        self,
        job: DispatchJob,
        attempts: list[Attempt],
        steps: list[PlanStep],
        step: Park,
        now: float,
        headers: Headers,
    ) -> None:
        wait_s = max(step.resume_at - now, 0.0)
        parked = job.model_copy(
            update={
                "attempts": attempts,
                "steps": steps,
                "round": step.next_round,
                "not_before": datetime.fromtimestamp(step.resume_at, UTC),
                "parked_s": job.parked_s + wait_s,
            }
        )
        topic = self.retry_topics[retry_tier(wait_s)]
        await self.publisher.deliver((topic, job.request.request_id, dumps(parked), headers))

    async def _finish(
        self,
        job: DispatchJob,
        attempts: list[Attempt],
        steps: list[PlanStep],
        answered: _Answered | None,
        step: Finish,
        headers: Headers,
    ) -> None:
        request = job.request
        now = datetime.now(UTC)
        spec = answered.spec if answered else None
        usage = answered.completion.usage if answered else None
        cost = sum(a.cost_usd for a in attempts)  # cascade rungs refused by a check count too
        message = answered.completion.message if answered else None
        error = step.error
        if message is not None and request.deadline is not None and now > request.deadline:
            # The producer asked for nothing after its deadline: an answer that
            # lands later is reported expired (its cost is still settled).
            message = None
            error = DeadlineExpired("the answer arrived after the deadline").info()
        reply = completed_reply(
            job,
            attempts,
            message,
            usage,
            cost,
            error,
            now,
            region=spec.region if spec else None,
            provider=spec.provider if spec else None,
            steps=steps,
        )
        plan = job.decision.plan
        tenant = self.config.tenants.get(request.tenant)
        answered_by = spec.name if message is not None and spec is not None else None
        stored = None
        if reply.message and spec and tenant and tenant.cache.enabled and plan.cache == "miss":
            stored = entry_for(
                request, tenant.cache, reply.message, usage, spec.name, spec.provider, now
            )
            reply.steps.append(PlanStep(kind="cache_store", model=spec.name))
        shadow = plan.shadow if answered_by and plan.shadow != answered_by else None
        if shadow:
            reply.steps.append(PlanStep(kind="shadow", model=shadow))
        data_class = self.config.data_class_for(request.data_classification)
        event = telemetry_event(reply, request, job, data_class)
        settlement = SpendSettlement(
            request_id=request.request_id,
            tenant=request.tenant,
            reserved_usd=job.decision.estimated_cost_usd,
            actual_usd=cost,
        )
        ledger_entry = AnsweredRequest(
            request_id=request.request_id,
            sources=[job.source] if job.source else [],
            reply=reply,
            answered_at=now,
        )
        # Reply and ledger entry first and together: they go out in one produce
        # request, so a crash leaves both or neither.
        messages: list[Message] = [
            (
                request.reply_to or self.catalogue.replies.name,
                request.request_id,
                dumps(reply),
                headers,
            ),
            (self.catalogue.answers.name, request.request_id, dumps(ledger_entry), None),
            (self.catalogue.telemetry.name, request.request_id, dumps(event), None),
            (self.catalogue.settlements.name, request.tenant, dumps(settlement), None),
        ]
        if step.exhausted and step.error is not None:
            letter = DeadLetter(
                error=step.error,
                stage="dispatch",
                source_topic=self.catalogue.requests.name,
                source_partition=job.source.partition if job.source else -1,
                source_offset=job.source.offset if job.source else -1,
                request_id=request.request_id,
                tenant=request.tenant,
                reply_to=request.reply_to,
                payload=dumps(request).decode(),
                payload_bytes=len(dumps(request)),
                payload_truncated=False,
                dead_lettered_at=now,
                attempts=attempts,
            )
            messages.append(
                (self.catalogue.dead_letter.name, request.request_id, dumps(letter), None)
            )
        if stored is not None:
            messages.append((self.catalogue.cache.name, stored.key, dumps(stored), None))
        self.ledger.remember(ledger_entry)
        await self.publisher.deliver(*messages)
        if shadow and answered_by and reply.message is not None:
            call = self._shadow(job, shadow, answered_by, reply.message.text())
            task = asyncio.create_task(call)
            self.shadows.add(task)
            task.add_done_callback(self.shadows.discard)

    async def _shadow(self, job: DispatchJob, model: str, primary: str, answer: str) -> None:
        """Ask the runner-up too, after the reply went out; record only how it did."""
        if model not in self.clients:
            return
        attempt, answered = await self._call(model, job, None)
        text = answered.completion.message.text() if answered else ""
        row = ShadowRow(
            request_id=job.request.request_id,
            tenant=job.request.tenant,
            task=job.decision.task,
            primary_model=primary,
            shadow_model=model,
            outcome=attempt.outcome,
            agrees=answered is not None and _same_answer(text, answer),
            latency_ms=attempt.latency_ms,
            cost_usd=attempt.cost_usd,
            output_tokens=answered.completion.usage.output_tokens if answered else 0,
            finished_at=datetime.now(UTC),
        )
        event = TelemetryEvent(shadow=[row])
        key = job.request.request_id
        await self.publisher.deliver((self.catalogue.telemetry.name, key, dumps(event), None))

    async def _resend(self, job: DispatchJob, headers: Headers) -> None:
        """The producer sent an answered request_id again: same reply, no provider call."""
        request = job.request
        answered = self.ledger.get(request.request_id)
        assert answered is not None and job.source is not None  # noqa: S101 - by duplicate_action
        entry = answered.model_copy(update={"sources": [*answered.sources, job.source]})
        release = SpendSettlement(
            request_id=request.request_id,
            tenant=request.tenant,
            reserved_usd=job.decision.estimated_cost_usd,
            actual_usd=0.0,
        )
        self.ledger.remember(entry)
        await self.publisher.deliver(
            (request.reply_to or self.catalogue.replies.name, request.request_id,
             dumps(answered.reply), headers),
            (self.catalogue.answers.name, request.request_id, dumps(entry), None),
            (self.catalogue.settlements.name, request.tenant, dumps(release), None),
        )  # fmt: skip

    async def _dead_letter_undecodable(
        self, tp: TopicPartition, offset: int, raw: bytes | None
    ) -> None:
        # Only the router writes these topics; a bad job means a version skew.
        payload = raw or b""
        limit = self.config.limits.max_message_bytes
        letter = DeadLetter(
            error=InvalidRequest("undecodable dispatch job").info(),
            stage="dispatch",
            source_topic=tp.topic,
            source_partition=tp.partition,
            source_offset=offset,
            payload=payload[:limit].decode("utf-8", errors="replace"),
            payload_bytes=len(payload),
            payload_truncated=len(payload) > limit,
            dead_lettered_at=datetime.now(UTC),
        )
        await self.publisher.deliver((self.catalogue.dead_letter.name, None, dumps(letter), None))


def _same_answer(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hand partitions over cleanly: finish and commit what we can, then forget them."""

    def __init__(self, worker: ProviderWorker, consumer: AIOKafkaConsumer) -> None:
        self.worker = worker
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        worker = self.worker
        deadline = time.monotonic() + REVOKE_WAIT_S
        # Polling: the counts change in task callbacks, which have no event to wait on.
        while any(worker.tracker.pending(tp) for tp in revoked) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        with contextlib.suppress(KafkaError):
            await worker._commit(self.consumer)
        log.info("revoked %d partitions", len(revoked))
        for tp in revoked:
            worker.tracker.forget(tp)
            worker.committed.pop(tp, None)
            worker.resume_at.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # Answers the previous owner wrote must be known before its jobs replay.
        await self.worker.ledger.catch_up()
        log.info("assigned %d partitions", len(assigned))


__all__ = ["ProviderWorker"]
