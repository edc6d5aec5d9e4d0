"""Where a provider job's outputs go: on Apache Kafka, one transaction per batch of jobs
from one partition number; on the embedded broker, the worker's one plain producer.

On Kafka the provider group's range assignor gives partition p of every retry topic
(all have the same partition count) to one worker together, and that worker writes
the outputs of their jobs with the transactional producer
``<namespace>-provider-retry-<p>``; the dispatch topic's partition p has
``<namespace>-provider-dispatch-<p>``. Starting one fences the previous owner's: a worker
expelled from the group without running its revocation (stalled, or killed between
two writes) can no longer answer, and the transaction it left open is aborted, so a
job's reply, telemetry, settlement and answer-ledger entry are written all or none.
The embedded broker has no transactions: there a job's records go in one produce
request to its one broker, and replays are made harmless by the answer ledger.
"""

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from sinks.kafka_out import KafkaPublisher, Publisher, TransactionalPublisher
from streams.topics import TopicCatalogue

Writer = tuple[str, int]  # ("dispatch" or "retry", partition number)


class NotHeld:
    """The outputs of a partition this worker no longer writes: refused as fenced."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    async def deliver(self, *messages: object) -> None:
        family, number = self.writer
        raise ProducerFenced(f"{family} partition {number} is written by another worker now")


class JobOutputs:
    def __init__(
        self,
        shared: KafkaPublisher,
        bootstrap: str,
        catalogue: TopicCatalogue,
        max_request_bytes: int,
        transactional: bool,
    ) -> None:
        self.shared = shared
        self.bootstrap = bootstrap
        self.catalogue = catalogue
        self.max_request_bytes = max_request_bytes
        self.transactional = transactional
        self._by_writer: dict[Writer, TransactionalPublisher] = {}

    def writer_of(self, tp: TopicPartition) -> Writer:
        family = "dispatch" if tp.topic == self.catalogue.dispatch.name else "retry"
        return family, tp.partition

    def of(self, tp: TopicPartition) -> Publisher:
        """The publisher of jobs read from ``tp``."""
        if not self.transactional:
            return self.shared
        writer = self.writer_of(tp)
        return self._by_writer.get(writer) or NotHeld(writer)

    async def assign(self, assigned: list[TopicPartition]) -> None:
        """A rebalance ended: producers for the partitions now held (started, so their
        previous owners are fenced), none for the others."""
        if not self.transactional:
            return
        held = {self.writer_of(tp) for tp in assigned}
        gone = [self._by_writer.pop(w) for w in list(self._by_writer) if w not in held]
        namespace = self.catalogue.namespace
        new = {
            (family, n): TransactionalPublisher(
                self.bootstrap, f"{namespace}-provider-{family}-{n}", self.max_request_bytes
            )
            for family, n in held - self._by_writer.keys()
        }
        await asyncio.gather(*(p.stop() for p in gone), *(p.start() for p in new.values()))
        self._by_writer.update(new)

    async def stop(self) -> None:
        publishers, self._by_writer = list(self._by_writer.values()), {}
        await asyncio.gather(*(p.stop() for p in publishers))
