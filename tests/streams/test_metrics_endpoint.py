"""The metrics endpoint: served over HTTP on loopback, announced in the state dir while it
runs, on the port the config or SWITCHYARD_METRICS_PORT names."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from schemas.errors import InvalidOption, StackError
from schemas.runtime_settings import MetricsSettings
from streams.local.broker import free_port
from streams.observe.endpoint import (
    METRICS_HOST_ENV,
    METRICS_PORT_ENV,
    MetricsEndpoint,
    endpoints,
    metrics_dir,
    metrics_host,
    metrics_port,
    serve_metrics,
)
from streams.observe.metrics import TelemetryMetrics


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricsEndpoint]:
    monkeypatch.delenv(METRICS_PORT_ENV, raising=False)
    metrics = TelemetryMetrics(CollectorRegistry())
    metrics.rows("requests").inc(3)
    endpoint = serve_metrics(MetricsSettings(), "telemetry", metrics.registry, tmp_path)
    assert endpoint is not None
    yield endpoint
    endpoint.close()


def test_the_endpoint_serves_the_registry_on_loopback(served: MetricsEndpoint) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    response = httpx.get(served.url, timeout=5)
    assert response.status_code == 200
    assert 'switchyard_clickhouse_insert_rows_total{table="requests"} 3.0' in response.text


def test_the_endpoint_is_announced_while_it_runs(served: MetricsEndpoint, tmp_path: Path) -> None:
    assert served.file == metrics_dir(tmp_path) / f"telemetry-{os.getpid()}.json"
    assert endpoints(tmp_path) == [{"role": "telemetry", "pid": os.getpid(), "url": served.url}]
    served.close()
    assert endpoints(tmp_path) == []
    with pytest.raises(httpx.TransportError):
        httpx.get(served.url, timeout=2)


def test_a_dead_workers_announcement_is_dropped(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        text=True,
    )
    stale = metrics_dir(tmp_path) / f"router-{gone.stdout.strip()}.json"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(orjson.dumps({"role": "router", "pid": int(gone.stdout), "url": "x"}))
    assert endpoints(tmp_path) == []
    assert not stale.exists()


def test_the_port_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_PORT_ENV, raising=False)
    assert metrics_port(MetricsSettings()) == 0
    assert metrics_port(MetricsSettings(port=9464)) == 9464
    monkeypatch.setenv(METRICS_PORT_ENV, "9100")
    assert metrics_port(MetricsSettings(port=9464)) == 9100
    monkeypatch.setenv(METRICS_PORT_ENV, "ninety")
    with pytest.raises(InvalidOption):
        metrics_port(MetricsSettings())


def test_a_fixed_port_is_used_and_a_taken_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv(METRICS_PORT_ENV, str(port))
    registry = TelemetryMetrics(CollectorRegistry()).registry
    first = serve_metrics(MetricsSettings(), "telemetry", registry, tmp_path)
    assert first is not None
    try:
        assert first.url == f"http://127.0.0.1:{port}/metrics"
        with pytest.raises(StackError, match=METRICS_PORT_ENV):
            serve_metrics(MetricsSettings(), "telemetry", registry, tmp_path)
    finally:
        first.close()


def test_metrics_off_serve_nothing(tmp_path: Path) -> None:
    registry = TelemetryMetrics(CollectorRegistry()).registry
    assert serve_metrics(MetricsSettings(enabled=False), "router", registry, tmp_path) is None
    assert endpoints(tmp_path) == []


def test_the_bind_host_is_loopback_unless_the_environment_widens_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(METRICS_HOST_ENV, raising=False)
    assert metrics_host(MetricsSettings()) == "127.0.0.1"
    monkeypatch.setenv(METRICS_HOST_ENV, "0.0.0.0")  # noqa: S104 - what compose sets
    assert metrics_host(MetricsSettings()) == "0.0.0.0"  # noqa: S104
