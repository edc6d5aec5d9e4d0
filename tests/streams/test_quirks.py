"""One test per embedded-broker defect: each fails if its workaround stops working."""

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from sinks.kafka_out import KafkaPublisher, producer_for
from streams.client import SwitchyardClient
from streams.kafka import quirks
from streams.kafka.admin import ensure_topics
from streams.local.broker import EmbeddedBroker
from streams.topics import TopicCatalogue


async def _fill_one_batch(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, value=str(i).encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.asyncio
async def test_end_offsets_are_corrected_by_fetch_high_watermark(
    broker: EmbeddedBroker, namespace: str
) -> None:
    catalogue = TopicCatalogue(namespace)
    await ensure_topics(broker.bootstrap, [catalogue.budget_changelog])
    topic = catalogue.budget_changelog.name
    await _fill_one_batch(broker.bootstrap, topic, 100)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        reported = await consumer.end_offsets([tp])
    finally:
        await consumer.stop()
    # The defect: the broker reports the last batch's base offset + 1, not 100.
    assert reported[tp] < 100
    corrected = await quirks.true_end_offsets(broker.bootstrap, reported)
    assert corrected[tp] == 100


@pytest.mark.asyncio
async def test_faust_highwaters_patched_and_headers_supported() -> None:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    quirks.apply()
    assert faust_aiokafka.AIOKafkaConsumerThread._highwaters.__module__ == quirks.__name__
    assert faust_aiokafka.Producer.supports_headers(object()) is True


@pytest.mark.asyncio
async def test_idempotent_producer_fails_so_switchyard_uses_plain_acks(
    broker: EmbeddedBroker, namespace: str
) -> None:
    catalogue = TopicCatalogue(namespace)
    await ensure_topics(broker.bootstrap, [catalogue.requests])
    idempotent = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(idempotent.start(), 20)
        await idempotent.send_and_wait(catalogue.requests.name, b"x")
    await idempotent.stop()

    producer = producer_for(broker.bootstrap, 1_000_000)
    await producer.start()
    try:
        publisher = KafkaPublisher(producer)
        await publisher.deliver((catalogue.requests.name, "acme", b"{}", None))
    finally:
        await producer.stop()


@pytest.mark.asyncio
async def test_topics_are_created_with_catalogue_partitions(
    broker: EmbeddedBroker, namespace: str
) -> None:
    catalogue = TopicCatalogue(namespace)
    created = await ensure_topics(broker.bootstrap, catalogue.all())
    assert sorted(created) == sorted(s.name for s in catalogue.all())
    assert await ensure_topics(broker.bootstrap, catalogue.all()) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([s.name for s in catalogue.all()])
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    assert counts == {s.name: s.partitions for s in catalogue.all()}


@pytest.mark.asyncio
async def test_client_refuses_missing_reply_topic_without_creating_it(
    broker: EmbeddedBroker, namespace: str
) -> None:
    client = SwitchyardClient(broker.bootstrap, TopicCatalogue(namespace))
    with pytest.raises(LookupError, match="does not exist"):
        await client.start()
    await client.producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        assert f"{namespace}.replies" not in await admin.list_topics()
    finally:
        await admin.close()


def test_budget_changelog_is_not_watched_like_an_agent_input(tmp_path: Path) -> None:
    # faust's livelock check logs "Stream has not started processing" for every
    # acked partition whose end is past a position no stream moves, which is the
    # changelog of the table a router writes: measured 3 lines a second from
    # stream_processing_timeout (300 s) on, until the changelog is declared unacked.
    from streams.workers.router import build_router_app
    from tests.helpers import sample_config

    catalogue = TopicCatalogue("quirk")
    app = build_router_app(sample_config(), "127.0.0.1:1", catalogue, 6999, tmp_path, b"k" * 32)
    changelog = app.tables["budget"].changelog_topic
    assert changelog.get_topic_name() == catalogue.budget_changelog.name
    assert changelog.acks is False
    # The table manager subscribes to a clone of it: that clone must not ack either.
    assert changelog.clone_using_queue(asyncio.Queue()).acks is False


def test_the_router_worker_leaves_the_root_logger_at_its_level(tmp_path: Path) -> None:
    # faust's spinner sets the root logger to DEBUG, so every library's debug call
    # (aiokafka's "Sending (key=%s value=%s)", the job's prompt as an argument)
    # builds a record and hands it to a handler.
    import logging

    import faust

    from streams.workers.router import build_router_app
    from tests.helpers import sample_config

    app = build_router_app(
        sample_config(), "127.0.0.1:1", TopicCatalogue("quirk"), 6998, tmp_path, b"k" * 32
    )
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        for worker, spins in ((faust.Worker(app, loglevel="WARNING", quiet=True), True),
                              (quirks.quiet_worker(app, "WARNING"), False)):  # fmt: skip
            root.handlers[:] = [logging.NullHandler()]
            root.setLevel(logging.WARNING)
            # What the worker does once it has set up logging at its level.
            worker.on_setup_root_logger(root, logging.WARNING)
            assert (root.level == logging.DEBUG) is spins
            assert any(type(h).__name__ == "SpinnerHandler" for h in root.handlers) is spins
            sender = logging.getLogger("aiokafka.producer.producer")
            assert sender.isEnabledFor(logging.DEBUG) is spins
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
