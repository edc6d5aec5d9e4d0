"""``switchyard kafka start|status|stop``: a real cluster in one command, stopped cleanly."""

import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from commands.cli import main
from streams.kafka.admin import ensure_topics
from streams.local.broker import pid_alive
from streams.local.kafka_cluster import ADMIN_USER, KafkaCluster
from streams.local.kafka_dist import distribution_available
from streams.topics import TopicCatalogue

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(not distribution_available(), reason="no Kafka distribution or java"),
]


async def round_trip(bootstrap: str, admin_bootstrap: str | None = None, **security: str) -> bytes:
    """Create a topic (over ``admin_bootstrap``, else ``bootstrap``), write and read it back."""
    topic = TopicCatalogue("cmd").health
    await ensure_topics(admin_bootstrap or bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security)
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **security
    )
    await consumer.start()
    try:
        return (await asyncio.wait_for(consumer.getone(), 30)).value or b""
    finally:
        await consumer.stop()


def test_start_serves_status_reports_and_stop_removes_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "cluster"
    assert main(["kafka", "start", "--nodes", "1", "--dir", str(home), "--json"]) == 0
    started = orjson.loads(capsys.readouterr().out)
    try:
        assert asyncio.run(round_trip(started["bootstrap"])) == b"hello"
        assert main(["kafka", "status", "--dir", str(home)]) == 0
        assert f"export KAFKA_BOOTSTRAP={started['bootstrap']}" in capsys.readouterr().out
        # A second start on a running cluster is refused, not a second cluster.
        assert main(["kafka", "start", "--nodes", "1", "--dir", str(home)]) == 1
    finally:
        assert main(["kafka", "stop", "--dir", str(home)]) == 0
    pids = [node["pid"] for node in started["nodes"]]
    assert not any(pid_alive(pid) for pid in pids)
    assert not home.exists()
    assert main(["kafka", "status", "--dir", str(home)]) == 1


def test_a_sasl_cluster_admits_its_superuser_and_refuses_a_wrong_password(
    tmp_path: Path,
) -> None:
    cluster = KafkaCluster.start(tmp_path / "sasl", nodes=1, sasl=True)
    try:
        sasl_bootstrap = cluster.layout.sasl_bootstrap
        assert sasl_bootstrap is not None
        admin = {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": ADMIN_USER,
        }
        password = cluster.layout.admin_password
        good = round_trip(sasl_bootstrap, cluster.bootstrap, **admin, sasl_plain_password=password)
        assert asyncio.run(good) == b"hello"
        with pytest.raises(KafkaError):
            wrong = round_trip(
                sasl_bootstrap, cluster.bootstrap, **admin, sasl_plain_password=password + "x"
            )
            asyncio.run(asyncio.wait_for(wrong, 60))
    finally:
        cluster.stop()
