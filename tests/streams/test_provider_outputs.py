"""Where a provider job's outputs go (streams/workers/provider_outputs.py): on Kafka, a
transactional producer per dispatch partition and per retry partition number, which
fences the previous owner's."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.errors import ProducerFenced

from sinks.kafka_out import KafkaPublisher
from streams.kafka.admin import ensure_topics
from streams.kafka.broker_profile import detect
from streams.kafka.consumers import group_consumer
from streams.kafka.reading import open_topic
from streams.topics import DISPATCH_PARTITIONS, TopicCatalogue
from streams.workers.provider_outputs import JobOutputs, NotHeld
from tests.helpers import Engine


class _Cluster:
    """What an assignor asks of the cluster metadata: each topic's partitions."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions[topic]))


@pytest.mark.asyncio
async def test_the_provider_group_gives_partition_p_of_every_retry_topic_to_one_worker() -> None:
    # One transactional id per retry partition number holds only if no two workers ever
    # own partition p of two retry topics: otherwise they would fence each other.
    catalogue = TopicCatalogue("t")
    retry = [t.name for t in catalogue.retry]
    assert len({t.partitions for t in catalogue.retry}) == 1
    topics = [catalogue.dispatch.name, *retry]
    consumer = group_consumer("127.0.0.1:1", topics, "g", co_partitioned=True)
    assert consumer._partition_assignment_strategy == (RangePartitionAssignor,)
    outputs = JobOutputs(None, "", catalogue, 1, True)  # type: ignore[arg-type]
    cluster = _Cluster({t.name: t.partitions for t in [catalogue.dispatch, *catalogue.retry]})
    for members in (1, 2, 3, 5, 9):
        metadata = {
            f"worker-{i}": ConsumerProtocolMemberMetadata(0, topics, b"") for i in range(members)
        }
        assignment = RangePartitionAssignor.assign(cluster, metadata)  # type: ignore[arg-type]
        owners: dict[tuple[str, int], set[str]] = {}
        for member, assigned in assignment.items():
            for topic, partitions in assigned.assignment:
                for p in partitions:
                    writer = outputs.writer_of(TopicPartition(topic, p))
                    owners.setdefault(writer, set()).add(member)
        expected = [("dispatch", p) for p in range(DISPATCH_PARTITIONS)] + [
            ("retry", p) for p in range(catalogue.retry[0].partitions)
        ]
        assert sorted(owners) == sorted(expected)
        assert all(len(held_by) == 1 for held_by in owners.values()), owners


async def _committed_values(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    """Every record a read_committed reader (the profile's on Kafka) sees on ``topic``."""
    reader, partitions = await open_topic(bootstrap, topic)
    try:
        assert reader._isolation_level == "read_committed"
        await reader.seek_to_beginning(*partitions)
        values: list[bytes] = []
        for _ in range(40):
            batch = await reader.getmany(timeout_ms=250)
            values += [r.value for records in batch.values() for r in records if r.value]
            if len(values) >= expected:
                await asyncio.sleep(0.5)  # anything more would show now
                values += [
                    r.value
                    for records in (await reader.getmany(timeout_ms=500)).values()
                    for r in records
                    if r.value
                ]
                break
        return values
    finally:
        await reader.stop()


@pytest.mark.asyncio
async def test_a_new_owner_fences_the_old_one_and_aborts_what_it_left_open(
    engine: Engine, namespace: str
) -> None:
    profile = await detect(engine.bootstrap)
    catalogue = TopicCatalogue(namespace)
    shared_producer = AIOKafkaProducer(bootstrap_servers=engine.bootstrap)
    shared = KafkaPublisher(shared_producer)

    def outputs() -> JobOutputs:
        return JobOutputs(shared, engine.bootstrap, catalogue, 1_048_576, profile.transactions)

    if not profile.transactions:
        # The embedded broker has no transactions: every job shares the plain producer.
        assert outputs().of(TopicPartition(catalogue.dispatch.name, 3)) is shared
        return
    topic = catalogue.health.name  # any topic: these are records, not health reports
    await ensure_topics(engine.bootstrap, [catalogue.health])
    zombie_tp = TopicPartition(catalogue.dispatch.name, 0)
    killed_tp = TopicPartition(catalogue.dispatch.name, 1)
    old, new = outputs(), outputs()
    await old.assign([zombie_tp, killed_tp])
    try:
        await old.of(zombie_tp).deliver((topic, "k", b"before the rebalance", None))
        # A worker killed between two writes of one transaction: the second never came.
        killed = old._by_writer[("dispatch", 1)].producer
        await killed.begin_transaction()
        await (await killed.send(topic, b"half of a job", key=b"k"))

        await asyncio.wait_for(new.assign([zombie_tp, killed_tp]), 30)
        await new.of(zombie_tp).deliver((topic, "k", b"the new owner", None))
        # The old owner, still running (expelled without its revocation), is refused.
        with pytest.raises(ProducerFenced):
            await old.of(zombie_tp).deliver((topic, "k", b"a zombie's answer", None))

        seen = await _committed_values(engine.bootstrap, topic, 2)
        assert sorted(seen) == [b"before the rebalance", b"the new owner"]
        assert isinstance(new.of(TopicPartition(catalogue.dispatch.name, 2)), NotHeld)
    finally:
        await old.stop()
        await new.stop()
