"""The provider worker's side of a rebalance: finish and commit what it can of the
partitions it loses, and learn its share of providers' limits from those it gets."""

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from processors.fair_share import FairQueue
from streams.kafka.leases import Leases
from streams.kafka.offsets import CommitTracker
from streams.topics import TopicCatalogue
from streams.workers.answers import AnswerLedger
from streams.workers.health import HealthBoard
from streams.workers.provider_outputs import JobOutputs
from streams.workers.read_ahead import Waiting

log = logging.getLogger("streams.workers.provider")

# How long a revoked partition's jobs get to finish before it is handed over (under the
# group's 4 s rebalance timeout).
REVOKE_WAIT_S = 2.0


class ProviderWorker(Protocol):
    """What a rebalance touches of ``streams.workers.provider.ProviderWorker``."""

    catalogue: TopicCatalogue
    waiting: FairQueue[Waiting]
    waiting_bytes: int
    tracker: CommitTracker[TopicPartition]
    leases: Leases[TopicPartition]
    committed: dict[TopicPartition, int]
    resume_at: dict[TopicPartition, float]
    board: HealthBoard
    ledger: AnswerLedger
    outputs: JobOutputs
    assignment_ready: asyncio.Event
    failures: list[BaseException]

    async def _commit(self, consumer: AIOKafkaConsumer) -> None: ...


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hand partitions over cleanly: finish and commit what we can, then forget them.

    Jobs still running when the wait ends keep running, their outputs held until
    the group's new assignment says whether the partition is still ours
    (``streams.kafka.leases``)."""

    def __init__(self, worker: ProviderWorker, consumer: AIOKafkaConsumer) -> None:
        self.worker = worker
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        worker = self.worker
        worker.assignment_ready.clear()
        gone = set(revoked)
        # Jobs still waiting are the next owner's: dropped unstarted, offsets uncommitted.
        dropped = worker.waiting.drop(lambda waiting: waiting.tp in gone)
        worker.waiting_bytes -= sum(waiting.size for waiting in dropped)
        unstarted = Counter(waiting.tp for waiting in dropped)
        deadline = time.monotonic() + REVOKE_WAIT_S
        # Polling: the counts change in task callbacks, which have no event to wait on.
        while (  # noqa: ASYNC110
            any(worker.tracker.pending(tp) > unstarted[tp] for tp in revoked)
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
        worker.leases.suspend(revoked)
        await worker.leases.quiesce()  # what was sent is in the ledger before anyone replays
        with contextlib.suppress(KafkaError):
            await worker._commit(self.consumer)
        log.info("revoked %d partitions", len(revoked))
        for tp in revoked:
            worker.tracker.forget(tp)
            worker.committed.pop(tp, None)
            worker.resume_at.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        dispatch = self.worker.catalogue.dispatch
        owned = sum(1 for tp in assigned if tp.topic == dispatch.name)
        # Providers' own limits are split by dispatch partitions; a worker holding none
        # (more workers than partitions) still gets one partition's share for retries.
        self.worker.board.pace_share(max(owned, 1) / dispatch.partitions)
        lost = self.worker.leases.settle(assigned)
        if lost:
            log.info("%d partitions went to another worker with jobs in flight", len(lost))
        # The previous owners' producers fenced (their open transactions aborted), then
        # the answers they wrote known, before their jobs replay.
        try:
            await self.worker.outputs.assign(assigned)
            await self.worker.ledger.catch_up()
        except Exception as exc:  # aiokafka would only log it: the worker stops instead
            self.worker.failures.append(exc)
            raise
        self.worker.assignment_ready.set()
        log.info("assigned %d partitions", len(assigned))


__all__ = ["REVOKE_WAIT_S", "Rebalance"]
