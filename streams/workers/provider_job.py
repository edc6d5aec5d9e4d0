"""Running one dispatch job: drive its decision, then send what it returns.

``processors.provider_hop`` decides; this module does its I/O: the model calls
it asks for (``ModelCaller``), each call's outcome fed to the health board,
and the job's outputs sent with its partition's publisher (``provider_outputs``: one
produce request on the embedded broker, one transaction on Kafka), whose return means
the broker acknowledged all of them. The shadow
call, when the decision asks for one, runs after that in its own task.

A job whose handling raises anything but a broker error is answered with code
``unprocessable`` and dead-lettered (``processors.job_failure``), so it is neither
retried forever nor lost; a broker error still leaves it uncommitted, for replay.
"""

import asyncio
import dataclasses
import logging
import random
import time
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from processors.cascade import Judge
from processors.dispatch_check import undecodable
from processors.handover import handed_over
from processors.job_failure import failed_job
from processors.outputs import Output
from processors.provider_hop import (
    CallResult,
    HopContext,
    HopResult,
    ModelCall,
    ProviderFlow,
    ShadowCall,
    provider_hop,
    shadow_outputs,
)
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.errors import RetryableError
from sinks.kafka_out import Headers, KafkaPublisher, Publisher
from streams.kafka.leases import Lease
from streams.kafka.topic_directory import TopicDirectory
from streams.observe.counting import ProviderCounts
from streams.observe.tracing import NO_TRACE, JobTrace, TraceHeaders, Tracing
from streams.outputs import records
from streams.topics import TopicCatalogue
from streams.workers.answers import AnswerLedger
from streams.workers.health import HealthBoard
from streams.workers.provider_calls import ModelCaller

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs handed over by the fetch loop; a job is finished when ``handle`` returns."""

    def __init__(
        self,
        config: SwitchyardConfig,
        catalogue: TopicCatalogue,
        caller: ModelCaller,
        board: HealthBoard,
        ledger: AnswerLedger,
        publisher: KafkaPublisher,
        rng: random.Random,
        topics: TopicDirectory,
        cluster_key: bytes,
        counts: ProviderCounts,
        tracing: Tracing | None = None,
        judge: Judge | None = None,
    ) -> None:
        self.config = config
        self.counts = counts
        self.tracing = tracing
        self.cluster_key = cluster_key
        self.catalogue = catalogue
        self.caller = caller
        self.board = board
        self.ledger = ledger
        self.publisher = publisher
        self.topics = topics
        self.context = HopContext(
            config, board.gates, time.time, rng, catalogue.requests.name,
            topics.reply_topics(catalogue), judge,
        )  # fmt: skip
        # (tenant, request_id) -> finished when the job running for it is done
        self.in_flight: dict[tuple[str, str], asyncio.Future[None]] = {}
        self.shadows: set[asyncio.Task[None]] = set()

    def use(self, config: SwitchyardConfig) -> None:
        """Decide jobs started from now on by ``config`` (a live config change)."""
        self.config = config
        self.context = dataclasses.replace(self.context, config=config)

    async def handle(
        self,
        job: DispatchJob,
        headers: Headers,
        lease: Lease,
        out: Publisher,
        parked_at_ms: int | None = None,
    ) -> None:
        """Decide and answer one job; returns once its outputs are acknowledged.

        Its outputs go out through ``out`` (its partition's: ``provider_outputs``) only
        while ``lease`` holds its partition: a job whose partition moved while it ran is
        answered by the next owner's replay.
        ``parked_at_ms`` is when a job read from a retry topic was parked (its trace)."""
        job_key = (job.request.tenant, job.request.request_id)
        running = self.in_flight.get(job_key)
        if running is not None:  # the same job is being answered right now
            await asyncio.shield(running)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight[job_key] = done
        trace = self.tracing.job(job, headers, parked_at_ms) if self.tracing else NO_TRACE
        try:
            await self.topics.recheck(job.request.reply_to)
            flow = provider_hop(job, self.ledger.get(*job_key), self.context)
            result = await self._drive(flow, job, trace)
            answered = await self._send(result, headers, lease, out, job.request.tenant, trace)
            if answered and result.shadow is not None:
                self._start_shadow(job, result.shadow)
        finally:
            trace.end()
            if self.in_flight.get(job_key) is done:
                del self.in_flight[job_key]
            done.set_result(None)

    async def handle_or_dead_letter(
        self,
        job: DispatchJob,
        headers: Headers,
        source: tuple[str, int, int],
        raw: bytes | None,
        lease: Lease,
        out: Publisher,
        parked_at_ms: int | None = None,
    ) -> None:
        """``handle``, and if it raises anything a replay cannot fix, answer the job with
        an error and dead-letter it; ``source`` is its record's (topic, partition, offset)."""
        try:
            await self.handle(job, headers, lease, out, parked_at_ms)
        except (KafkaError, RetryableError):
            raise  # the broker or a sink: left uncommitted, replayed
        except Exception as exc:
            log.warning(
                "%s:%d@%d dead-lettered: handling it raised %s", *source, type(exc).__name__
            )
            outputs = failed_job(job, raw, exc, source, self.config, datetime.now(UTC))
            await self._deliver_held(outputs, headers, lease, out, job.request.tenant)

    async def dead_letter_undecodable(
        self,
        topic: str,
        partition: int,
        offset: int,
        raw: bytes | None,
        lease: Lease,
        out: Publisher,
    ) -> None:
        limit = self.config.limits.max_message_bytes
        outputs = undecodable(raw, topic, partition, offset, limit, datetime.now(UTC))
        await self._deliver_held(outputs, None, lease, out)

    def cancel_shadows(self) -> None:
        for task in list(self.shadows):
            task.cancel()

    async def _drive(self, flow: ProviderFlow, job: DispatchJob, trace: JobTrace) -> HopResult:
        """Make the calls the flow asks for until it returns the job's outputs."""
        deadline = job.request.deadline.timestamp() if job.request.deadline else None
        step = _advance(flow, None)
        previous = None
        while isinstance(step, ModelCall):
            if step.wait_s > 0:
                await asyncio.sleep(step.wait_s)
            started = time.time_ns()
            result = await self.caller.call(
                step.model, job.request, job.decision.priority, job.round, deadline
            )
            trace.attempt(result, self.config, job.request.tenant, started)
            await self.board.record(result.attempt, time.time())
            self.counts.call(result.attempt, job.request.tenant, previous)
            previous = result.attempt
            step = _advance(flow, result)
        return step

    async def _send(
        self,
        result: HopResult,
        headers: Headers,
        lease: Lease,
        out: Publisher,
        tenant: str,
        trace: JobTrace,
    ) -> bool:
        """Send the job's outputs; False if its partition was handed over meanwhile."""
        with trace.sending(result.outputs):
            held = await self._deliver_held(
                result.outputs, headers, lease, out, tenant, trace.header()
            )
        if held and result.remember is not None:
            self.ledger.remember(result.remember)
        return held

    async def _deliver_held(
        self,
        outputs: list[Output],
        headers: Headers | None,
        lease: Lease,
        out: Publisher,
        tenant: str = "",
        trace: TraceHeaders = (),
    ) -> bool:
        """Deliver ``outputs`` through ``out`` if ``lease`` still holds the partition, else
        only their cost (through the worker's own producer); ``tenant`` is the job's, for
        the metrics."""
        if not await lease.begin_send():
            if kept := handed_over(outputs):
                await self._deliver(kept, None)
            return False
        try:
            if outputs:
                await self._deliver(outputs, headers, trace, out)
                self.counts.sent(outputs, tenant)
        finally:
            lease.end_send()
        return True

    async def _deliver(
        self,
        outputs: list[Output],
        headers: Headers | None,
        trace: TraceHeaders = (),
        out: Publisher | None = None,
    ) -> None:
        sent = records(outputs, self.catalogue, headers, self.cluster_key, trace)
        await (out or self.publisher).deliver(*sent)

    def _start_shadow(self, job: DispatchJob, shadow: ShadowCall) -> None:
        task = asyncio.create_task(self._shadow(job, shadow))
        self.shadows.add(task)
        task.add_done_callback(self.shadows.discard)

    async def _shadow(self, job: DispatchJob, shadow: ShadowCall) -> None:
        """Ask the runner-up too, after the reply went out; record only how it did."""
        result = await self.caller.call(shadow.model, job.request, "batch", job.round, None)
        self.counts.call(result.attempt, job.request.tenant, None)
        outputs = shadow_outputs(job, shadow, result, datetime.now(UTC))
        await self._deliver(outputs, None)
        self.counts.sent(outputs, job.request.tenant)


def _advance(flow: ProviderFlow, result: CallResult | None) -> ModelCall | HopResult:
    """The flow's next call, or its result once it returns."""
    try:
        return next(flow) if result is None else flow.send(result)
    except StopIteration as stop:
        returned: HopResult = stop.value
        return returned
