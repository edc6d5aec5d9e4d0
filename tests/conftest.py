"""Real parts for tests: one embedded broker and one embedded ClickHouse per session.

The chdb engine can open one path per process, so every test in this process
shares one path and isolates itself with its own database name. End-to-end
tests start their own workers as subprocesses, each with its own state folder.
"""

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.local.broker import EmbeddedBroker
from tests.helpers import fresh_namespace


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    embedded = EmbeddedBroker.start()
    yield embedded
    embedded.stop()


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
