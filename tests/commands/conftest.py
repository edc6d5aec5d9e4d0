"""Fixtures for the command tests."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import TelemetrySink, migrate
from tests.helpers import SAMPLE_CONFIG


@pytest.fixture(autouse=True)
def plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands print plain lines here even where the environment forces a terminal."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def cli_telemetry(
    chdb_client: Any, chdb_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TelemetrySink]:
    """The CLI's own database (``switchyard``) on this process's embedded engine.

    Commands run in-process through ``cli.main`` read it; the sample config is
    the current one unless a test points ``SWITCHYARD_CONFIG`` elsewhere.
    """
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{chdb_path}")
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))
    monkeypatch.setenv("SWITCHYARD_CONFIG", str(SAMPLE_CONFIG))
    chdb_client.command("DROP DATABASE IF EXISTS switchyard")
    migrate(chdb_client, "switchyard")
    yield TelemetrySink(chdb_client, "switchyard")
    chdb_client.command("DROP DATABASE IF EXISTS switchyard")
