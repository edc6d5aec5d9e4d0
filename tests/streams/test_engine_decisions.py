"""Each embedded-broker workaround is a decision per engine (streams/kafka/broker_profile.py):
these tests run on both engines and fail if a choice breaks on either.

| workaround | embedded broker | Apache Kafka |
|---|---|---|
| end offsets corrected by a fetch's high watermark | kept (ListOffsets is wrong) | off (right) |
| short fetch waits | kept (fetches sleep out their wait) | 500 ms (fetches wake on data) |
| 4 s rebalance timeout | kept (joins wait half of it) | 30 s (joins end when all rejoin) |
| plain acks, no idempotent producer | forced (InitProducerId fails) | provider transactions |
| topics from the catalogue, never auto-created | kept | kept, and waited for until led |
"""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.kafka import quirks
from streams.kafka.admin import ensure_topics
from streams.kafka.broker_profile import APACHE_KAFKA, EMBEDDED, BrokerProfile, detect
from streams.kafka.consumers import TopicFollower, group_consumer
from streams.kafka.reading import open_topic
from streams.kafka.seals import SealGate
from streams.topics import TopicCatalogue
from tests.helpers import Engine


def expected(request: pytest.FixtureRequest) -> BrokerProfile:
    engine_name = request.node.callspec.params["engine"]
    return EMBEDDED if engine_name == "embedded" else APACHE_KAFKA


@pytest.mark.asyncio
async def test_the_profile_is_the_engines(engine: Engine, request: pytest.FixtureRequest) -> None:
    assert await detect(engine.bootstrap) == expected(request)


@pytest.mark.asyncio
async def test_end_offsets_are_probed_only_where_listoffsets_is_wrong(
    engine: Engine, namespace: str, request: pytest.FixtureRequest
) -> None:
    await detect(engine.bootstrap)
    topic = TopicCatalogue(namespace).budget_changelog
    await ensure_topics(engine.bootstrap, [topic])
    # acks=all, as Switchyard's producers: Kafka's end offset is the high watermark,
    # which moves once the followers have the records.
    producer = AIOKafkaProducer(bootstrap_servers=engine.bootstrap, linger_ms=200, acks="all")
    await producer.start()
    try:
        sent = [  # one multi-record batch: the case tansu misreports
            await producer.send(topic.name, key=b"k", value=str(i).encode(), partition=0)
            for i in range(100)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    tp = TopicPartition(topic.name, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=engine.bootstrap)
    await consumer.start()
    try:
        reported = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    corrected = (await quirks.true_end_offsets(engine.bootstrap, {tp: reported}))[tp]
    assert corrected == 100
    if expected(request).exact_end_offsets:
        assert reported == 100  # trusted, so no probe is made
    else:
        assert reported < 100  # the defect the probe corrects


@pytest.mark.asyncio
async def test_fetch_waits_and_group_timeouts_follow_the_engine(
    engine: Engine, namespace: str, request: pytest.FixtureRequest
) -> None:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    quirks.apply()  # faust's own consumer takes the engine's wait through this patch
    patched = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert patched.__module__ == quirks.__name__
    profile = expected(request)
    await detect(engine.bootstrap)
    consumer = group_consumer(engine.bootstrap, f"{namespace}.x", f"{namespace}-g")
    assert consumer._fetch_max_wait_ms == profile.job_fetch_wait_ms
    assert consumer._rebalance_timeout_ms == profile.rebalance_timeout_ms
    # Where the provider writes in transactions, nobody may read an aborted one.
    isolation = "read_committed" if profile.transactions else "read_uncommitted"
    assert consumer._isolation_level == isolation
    await consumer.stop()
    sink = group_consumer(engine.bootstrap, f"{namespace}.x", f"{namespace}-s", batched=True)
    assert sink._fetch_max_wait_ms == profile.follow_fetch_wait_ms
    assert sink._fetch_min_bytes == profile.follow_fetch_min_bytes
    assert sink._isolation_level == isolation
    await sink.stop()
    health = TopicCatalogue(namespace).health
    await ensure_topics(engine.bootstrap, [health])
    reader, _ = await open_topic(engine.bootstrap, health.name)
    assert reader._fetch_max_wait_ms == profile.job_fetch_wait_ms
    assert reader._isolation_level == isolation
    await reader.stop()
    follower = TopicFollower(engine.bootstrap, health.name, SealGate(b"k" * 32, "t"), print)
    await follower.start()
    try:
        assert follower._consumer is not None
        assert follower._consumer._fetch_max_wait_ms == profile.follow_fetch_wait_ms
        assert follower._consumer._fetch_min_bytes == profile.follow_fetch_min_bytes
        assert follower._consumer._isolation_level == isolation
    finally:
        await follower.stop()


@pytest.mark.asyncio
async def test_a_long_fetch_wait_costs_no_latency_on_kafka(
    engine: Engine, namespace: str, request: pytest.FixtureRequest
) -> None:
    # The premise of Kafka's long waits: a fetch waiting for data returns when it comes.
    if expected(request).engine != "kafka":
        pytest.skip("the embedded broker answers a fetch only when its wait runs out")
    topic = TopicCatalogue(namespace).health
    await ensure_topics(engine.bootstrap, [topic])
    consumer = AIOKafkaConsumer(
        topic.name, bootstrap_servers=engine.bootstrap, fetch_max_wait_ms=8_000
    )
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=engine.bootstrap)
    await producer.start()
    try:
        await consumer.seek_to_end()
        await asyncio.sleep(1)  # the consumer is now parked in an 8 s fetch
        started = time.monotonic()
        await producer.send_and_wait(topic.name, b"wake", key=b"k")
        record = await asyncio.wait_for(consumer.getone(), 15)
        assert record.value == b"wake"
        assert time.monotonic() - started < 4  # woken by the record, not the 8 s wait
        # (8 s, not longer: stopping the consumer waits for the fetch it has out)
    finally:
        await producer.stop()
        await consumer.stop()


@pytest.mark.asyncio
async def test_idempotent_producers_work_only_where_the_profile_says(
    engine: Engine, namespace: str, request: pytest.FixtureRequest
) -> None:
    topic = TopicCatalogue(namespace).requests
    await ensure_topics(engine.bootstrap, [topic])
    idempotent = AIOKafkaProducer(bootstrap_servers=engine.bootstrap, enable_idempotence=True)
    try:
        if expected(request).transactions:
            await asyncio.wait_for(idempotent.start(), 30)
            await idempotent.send_and_wait(topic.name, b"x")
        else:
            with pytest.raises(KafkaError):
                await asyncio.wait_for(idempotent.start(), 20)
                await idempotent.send_and_wait(topic.name, b"x")
    finally:
        await idempotent.stop()


@pytest.mark.asyncio
async def test_created_topics_are_readable_at_once_with_the_engines_replication(
    engine: Engine, namespace: str, request: pytest.FixtureRequest
) -> None:
    catalogue = TopicCatalogue(namespace)
    created = await ensure_topics(engine.bootstrap, catalogue.all())
    assert sorted(created) == sorted(s.name for s in catalogue.all())
    for spec in catalogue.all():  # no start-up race: every partition known right away
        reader, partitions = await open_topic(engine.bootstrap, spec.name)
        await reader.stop()
        assert len(partitions) == spec.partitions
    if expected(request).engine != "kafka":
        return  # the embedded broker has one node and no replicas to check
    admin = AIOKafkaAdminClient(bootstrap_servers=engine.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([catalogue.requests.name])
    finally:
        await admin.close()
    assert {len(p["replicas"]) for p in described[0]["partitions"]} == {3}
