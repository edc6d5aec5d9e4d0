"""The provider worker: dispatch and retry topics -> model APIs -> reply, telemetry, settlement.

This module is the fetch loop: it consumes the dispatch and retry topics,
keeps at most ``dispatch.max_in_flight`` jobs running, commits what finished, hands
partitions over on a rebalance and drains on SIGTERM. Each job runs in
``provider_job.JobRunner``, which drives its one decision
(``processors.provider_hop``: call a model, the chosen one then its
fallbacks; park the job on a retry topic until an endpoint can take it
again; or finish it with a reply). Parking is a produce to a delay topic, so
a waiting job never holds its dispatch partition or a slot here.

Delivery: a job counts as finished once its outputs are acknowledged by the
broker (reply, telemetry, settlement and answer-ledger entry, or the parked
copy), and offsets are committed up to the oldest unfinished job of each
partition. A crash replays everything after the last commit; the answer
ledger (written with the reply: in one produce request on the embedded broker, in
one transaction on Kafka, ``provider_outputs``) turns a replay of an answered job
into a no-op, so the producer sees one reply per submission. A rebalance's new
partitions start no job before their producers fenced the previous owner's and the
ledger caught up (``assignment_ready``).

Fair share: fetched jobs wait in a read-ahead (``dispatch.read_ahead_mb`` of raw
records) queued by lane and tenant (``processors.fair_share``: interactive first,
then tenants by weight), and each model's ``max_concurrency`` gate hands its slots
out the same way (``provider_calls.FairGate``). Reading ahead is what lets a job
behind another tenant's backlog in the same partition be seen and served.

Backpressure: at most ``dispatch.max_in_flight`` jobs run at once; fetching pauses
while the read-ahead is full. A retry partition whose head is not due yet is
paused until it is.

Origin: a dispatch or retry record without the cluster key's seal is dropped
before it is decoded (``SealGate``: counted, its offset committed); everything
this worker writes to internal topics is sealed (``streams.outputs.records``).

Traces: given a tracer provider, each run of a job is a span with its calls, its
reply or parked copy, and its wait on a retry topic (``streams.observe.tracing``).
"""

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from collections.abc import Coroutine
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, ProducerFenced
from opentelemetry.trace import TracerProvider

from processors.fair_share import FairQueue
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.errors import InternalError
from sinks.kafka_out import KafkaPublisher, producer_for
from streams.kafka.broker_profile import profile
from streams.kafka.consumers import group_consumer
from streams.kafka.leases import Lease, Leases
from streams.kafka.offsets import CommitTracker
from streams.kafka.seals import SealGate
from streams.kafka.topic_directory import TopicDirectory
from streams.observe.counting import ProviderCounts
from streams.observe.metrics import provider_metrics
from streams.observe.tracing import tracing_from
from streams.topics import TopicCatalogue
from streams.workers.answers import AnswerLedger
from streams.workers.health import HealthBoard
from streams.workers.live_config import LiveConfig
from streams.workers.provider_calls import ModelCaller
from streams.workers.provider_job import JobRunner
from streams.workers.provider_outputs import JobOutputs
from streams.workers.provider_rebalance import Rebalance
from streams.workers.read_ahead import FETCH_RECORDS, Waiting, decoded, lane_of
from streams.workers.route_state import load_judge

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 0.5

Records = dict[TopicPartition, list[Any]]


class ProviderWorker:
    def __init__(
        self,
        config: SwitchyardConfig,
        bootstrap: str,
        catalogue: TopicCatalogue,
        cluster_key: bytes,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.config = config
        self.tracing = tracing_from(tracer_provider)  # each job's spans, when set
        self.gate = SealGate(cluster_key, "provider")
        self.bootstrap = bootstrap
        self.catalogue = catalogue
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.rng = random.Random()  # noqa: S311 - jitter, not security
        self.retry_topics = {t.name for t in catalogue.retry}
        self.tracker: CommitTracker[TopicPartition] = CommitTracker()
        self.leases: Leases[TopicPartition] = Leases()
        self.committed: dict[TopicPartition, int] = {}
        self.resume_at: dict[TopicPartition, float] = {}
        self.running: set[asyncio.Task[None]] = set()
        self.slot_freed = asyncio.Event()
        self.failures: list[BaseException] = []
        self.waiting: FairQueue[Waiting] = FairQueue(lambda tenant: self.config.share(tenant))
        self.waiting_bytes = 0
        self.read_ahead_bytes = int(config.dispatch.read_ahead_mb * 1_000_000)
        self.accepting = True  # False once draining: waiting jobs are left to the next owner
        # Set once a rebalance's assignment is taken in (``provider_rebalance``). aiokafka
        # fetches from new partitions while the listener still runs: their jobs wait.
        self.assignment_ready = asyncio.Event()
        observed = config.observability.metrics.enabled
        self.counts = ProviderCounts(provider_metrics() if observed else None, catalogue, config)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume jobs until ``stop`` is set, then drain and hand partitions back."""
        limit = self.config.limits.max_message_bytes
        producer = producer_for(self.bootstrap, 4 * limit)
        caller = ModelCaller(self.config)
        await producer.start()
        board = HealthBoard(
            self.config,
            self.bootstrap,
            self.catalogue.health.name,
            producer,
            self.worker_id,
            self.gate,
        )
        self.ledger = AnswerLedger(
            self.bootstrap,
            self.catalogue.answers.name,
            self.config.dispatch.dedup_window_s,
            self.gate,
        )
        await board.start()
        await self.ledger.start()
        self.board = board
        live = LiveConfig(
            self.bootstrap, self.catalogue.config.name, self.gate, self.config,
            functools.partial(self._use, caller),
        )  # fmt: skip
        topics = TopicDirectory(self.bootstrap)  # which reply_to topics exist
        await topics.refresh()
        listing = asyncio.create_task(topics.follow())
        publisher = KafkaPublisher(producer)
        self.outputs = JobOutputs(
            publisher, self.bootstrap, self.catalogue, 4 * limit,
            profile(self.bootstrap).transactions,
        )  # fmt: skip
        self.jobs = JobRunner(
            self.config, self.catalogue, caller, board, self.ledger, publisher, self.rng,
            topics, self.gate.cluster_key, self.counts, self.tracing, load_judge(self.config),
        )  # fmt: skip
        await live.start("provider")  # the last version applied, before the first job
        consumer = self._consumer(4 * limit)
        await consumer.start()
        unwatch = self.counts.watch(consumer, self.committed, board.gates, self._load)
        try:
            await self._fetch(consumer, stop)
        finally:
            listing.cancel()
            await live.stop()
            await self._drain(consumer)
            await consumer.stop()
            await self.outputs.stop()
            await self.ledger.stop()
            await board.stop()
            await producer.stop()
            await caller.aclose()
            unwatch()

    def _load(self) -> tuple[int, int, int]:
        return len(self.running), len(self.waiting), self.waiting_bytes

    def _use(self, caller: ModelCaller, config: SwitchyardConfig) -> None:
        """A live config change: jobs started from now on run by ``config``."""
        self.config = caller.config = config
        self.jobs.use(config)
        self.counts.tenants.use(config.tenants)
        self.board.use(config)

    def _consumer(self, max_fetch_bytes: int) -> AIOKafkaConsumer:
        consumer = group_consumer(
            self.bootstrap,
            self.catalogue.dispatch.name,
            f"{self.catalogue.namespace}-providers",
            max_fetch_bytes=max_fetch_bytes,
            co_partitioned=True,  # retry topics' partition p to one worker (provider_outputs)
        )
        consumer.subscribe(
            [self.catalogue.dispatch.name, *self.retry_topics],
            listener=Rebalance(self, consumer),
        )
        return consumer

    async def _drain(self, consumer: AIOKafkaConsumer) -> None:
        """SIGTERM: fetch nothing more, let calls under way finish and be committed.

        Anything still running after the drain is handed back uncommitted and
        replayed by the next owner of its partition."""
        self.accepting = False
        running = self.running
        if running:
            log.info("stopping: draining %d jobs in flight", len(running))
            await asyncio.wait(running, timeout=self.config.dispatch.drain_timeout_s)
            if running:
                log.warning("%d jobs still running after the drain: handed back", len(running))
        await self.leases.release_all()
        with contextlib.suppress(KafkaError):
            await self._commit(consumer)
        for task in list(running):
            task.cancel()
        self.jobs.cancel_shadows()

    # --- fetching --------------------------------------------------------------

    async def _fetch(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        next_commit = time.monotonic() + COMMIT_INTERVAL_S
        while not stop.is_set():
            if self.failures:
                first = self.failures[0]
                log.error("a job failed outside the provider call", exc_info=first)
                raise InternalError("a job failed outside the provider call") from first
            self._resume_due(consumer)
            if self.waiting_bytes >= self.read_ahead_bytes:
                # Woken by the next job to finish: waiting on thousands of tasks would
                # add and remove a callback on each of them every time.
                self.slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.slot_freed.wait(), timeout=0.5)
            else:
                batch = await consumer.getmany(timeout_ms=50, max_records=FETCH_RECORDS)
                self._enqueue(consumer, batch)
            self._start_waiting()
            if time.monotonic() >= next_commit:
                await self._commit(consumer)
                next_commit = time.monotonic() + COMMIT_INTERVAL_S

    def _enqueue(self, consumer: AIOKafkaConsumer, batch: Records) -> None:
        """Queue fetched jobs by lane and tenant; their offsets stay pending until each
        has run, so a job waiting here is replayed, not lost, if this worker dies."""
        for tp, fetched in batch.items():
            tenants: list[str] = []
            for record in fetched:
                if not self.gate.admits(tp.topic, record.key, record.value, record.headers):
                    self.tracker.started(tp, record.offset)  # dropped: its offset commits
                    self.tracker.finished(tp, record.offset)
                    continue
                headers = list(record.headers)
                parked: DispatchJob | None = None
                parked_at: int | None = None  # when it was parked: its record's time
                if tp.topic in self.retry_topics:
                    due = self._job_or_park(consumer, tp, record.offset, record.value)
                    if due is False:
                        break  # partition paused until its head is due
                    parked, parked_at = due, record.timestamp
                tenant, priority, job = lane_of(headers, parked, record.value)
                tenants.append(tenant)
                waiting = Waiting(tp, record.offset, record.value, headers, job, parked_at)
                self.tracker.started(tp, record.offset)
                self.waiting.push(waiting, tenant, priority)
                self.waiting_bytes += waiting.size
            self.counts.fetched(tp.topic, tenants)

    def _start_waiting(self) -> None:
        """Start waiting jobs, next by fair share, while there are slots."""
        limit = self.config.dispatch.max_in_flight
        if not self.assignment_ready.is_set():
            return
        while self.accepting and len(self.running) < limit:
            waiting = self.waiting.pop()
            if waiting is None:
                return
            self.waiting_bytes -= waiting.size
            tp, offset, value = waiting.tp, waiting.offset, waiting.value
            job = waiting.job if waiting.job is not None else decoded(value)
            lease, out = self.leases.of(tp), self.outputs.of(tp)
            work = (
                self.jobs.handle_or_dead_letter(
                    job,
                    waiting.headers,
                    (tp.topic, tp.partition, offset),
                    value,
                    lease,
                    out,
                    waiting.parked_at_ms,
                )
                if job is not None
                else self.jobs.dead_letter_undecodable(
                    tp.topic, tp.partition, offset, value, lease, out
                )
            )
            self._start(tp, offset, lease, work)

    def _start(
        self, tp: TopicPartition, offset: int, lease: Lease, work: Coroutine[Any, Any, None]
    ) -> None:
        task = asyncio.create_task(work)
        task.add_done_callback(functools.partial(self._finished, tp, offset, lease))
        self.running.add(task)

    def _finished(
        self, tp: TopicPartition, offset: int, lease: Lease, task: asyncio.Task[None]
    ) -> None:
        self.running.discard(task)
        self.slot_freed.set()
        self._start_waiting()
        if lease.state == "lost":
            return  # the partition's next owner replays it; it is not ours to commit
        if task.cancelled():
            return  # cancelled by the drain: not finished, so its offset is replayed
        error = task.exception()
        if isinstance(error, ProducerFenced):
            # Its partition's new owner fenced this worker's writes: it replays the job.
            log.warning("%s:%d@%d fenced: %s", tp.topic, tp.partition, offset, error)
            return
        if error is not None:
            # Not marked finished: its offset is never committed, so it is replayed.
            self.failures.append(error)
            return
        self.tracker.finished(tp, offset)

    def _job_or_park(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, raw: bytes | None
    ) -> DispatchJob | Literal[False] | None:
        """A parked job, due now; None if undecodable; False if it is not due yet (its
        partition is paused until then)."""
        job = decoded(raw)
        due = job.not_before.timestamp() if job is not None and job.not_before else None
        if due is not None and due > time.time():
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


__all__ = ["ProviderWorker"]
