"""Real parts for tests: one embedded broker and one embedded ClickHouse per session, and a
3-node Apache Kafka cluster for the tests that run on both engines.

Tests that take ``engine`` run once on the embedded broker and once on the real cluster
(marked ``kafka``; ``-m "not kafka"`` leaves them out). The cluster starts on the first
such test. Where the Kafka distribution or Java is missing, those runs are skipped, and
the report's header and its summary say so, with how to enable them.

The chdb engine can open one path per process, so every test in this process
shares one path and isolates itself with its own database name. End-to-end
tests start their own workers as subprocesses, each with its own state folder.
"""

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.local.broker import EmbeddedBroker
from streams.local.kafka_cluster import KafkaCluster
from streams.local.kafka_dist import distribution_available
from tests.helpers import Engine, fresh_namespace

KAFKA_MISSING = (
    "real-Kafka tier skipped: no Kafka distribution or no java. Put Apache Kafka 3.9's "
    "kafka_2.13-3.9.0.tgz in ../shared/engines/kafka/, or set KAFKA_HOME (or "
    "SWITCHYARD_KAFKA_DIST) to one, with Java 17 on the PATH"
)


def pytest_report_header() -> str:
    if distribution_available():
        return "real-Kafka tier: on (a 3-node KRaft cluster from the shared distribution)"
    return KAFKA_MISSING


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every run on the real cluster after every run on the embedded broker: the cluster
    starts at the first of them, so embedded tests never share the two cores with three
    idle brokers (with them, kill-in-flight missed its 4,000 calls in flight)."""
    items.sort(key=lambda item: item.get_closest_marker("kafka") is not None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not distribution_available():
        terminalreporter.write_line(KAFKA_MISSING, yellow=True)


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    embedded = EmbeddedBroker.start()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A 3-node Apache Kafka cluster (RF 3, min ISR 2) on loopback, for the whole session.

    ``SWITCHYARD_TEST_KAFKA_HOME`` names the folder of a cluster started with
    ``switchyard kafka start --dir``, to reuse it across runs (it is left running)."""
    reused = os.environ.get("SWITCHYARD_TEST_KAFKA_HOME")
    if reused:
        yield KafkaCluster.attach(Path(reused))
        return
    if not distribution_available():
        pytest.skip(KAFKA_MISSING)
    cluster = KafkaCluster.start(tmp_path_factory.mktemp("kafka"), nodes=3)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module", params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The embedded broker, then the real cluster: a test taking this runs on both."""
    engine: Engine = request.getfixturevalue(
        "broker" if request.param == "embedded" else "kafka_cluster"
    )
    return engine


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one embedded-database path of this test process (for ``CLICKHOUSE_URL``)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def chdb_client(chdb_path: Path) -> Any:
    from sinks.clickhouse import open_client

    return open_client(f"chdb://{chdb_path}")


@pytest.fixture
def namespace() -> str:
    """A fresh topic namespace, so tests sharing the broker never see each other's messages."""
    return fresh_namespace()


@pytest.fixture(autouse=True)
def _restore_sigterm() -> Iterator[None]:
    """main() installs its own SIGTERM handler; put pytest's back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)
