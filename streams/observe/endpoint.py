"""A worker's ``GET /metrics``, and where to find each one.

The endpoint is prometheus_client's own HTTP server in a daemon thread, started
before the worker's loop runs, so it serves every role the same way (faust's
loop included) and answers even while the loop is busy. Collectors therefore read
the worker's state from that thread: they only look up dicts and copy them
(``streams.observe.collectors``), and one that raises mid-change is skipped for
that scrape.

It binds ``observability.metrics.host`` (loopback unless widened) and ``port``, or
``SWITCHYARD_METRICS_PORT`` when set. The default port 0 takes a free one: several
workers of one role share a host in chaos and bench runs. Either way the worker
writes its address to ``<state_dir>/metrics/<role>-<pid>.json`` and removes it at
exit; ``endpoints`` lists the live ones (``switchyard metrics``).
"""

import atexit
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, start_http_server

from schemas.errors import InvalidOption, StackError
from schemas.runtime_settings import MetricsSettings
from streams.local.broker import pid_alive

METRICS_PORT_ENV = "SWITCHYARD_METRICS_PORT"
# A container's Prometheus scrapes from another host: compose widens the bind here.
METRICS_HOST_ENV = "SWITCHYARD_METRICS_HOST"


def metrics_dir(state_dir: Path) -> Path:
    return state_dir / "metrics"


@dataclass
class MetricsEndpoint:
    """A running endpoint: its URL and the file that announces it."""

    role: str
    url: str
    server: Any  # wsgiref's server; ``shutdown`` stops its thread
    file: Path

    def forget(self) -> None:
        """Remove the file (at exit: the server's thread is a daemon and ends with us)."""
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def close(self) -> None:
        """Stop serving and remove the file."""
        self.forget()
        self.server.shutdown()
        self.server.server_close()


def metrics_port(settings: MetricsSettings) -> int:
    """``SWITCHYARD_METRICS_PORT`` if set, else the config's port (0 = any free one)."""
    raw = os.environ.get(METRICS_PORT_ENV)
    if raw is None or raw == "":
        return settings.port
    if not raw.isdigit() or int(raw) > 65535:
        raise InvalidOption(f"{METRICS_PORT_ENV}={raw!r} is not a port number")
    return int(raw)


def metrics_host(settings: MetricsSettings) -> str:
    """``SWITCHYARD_METRICS_HOST`` if set, else the config's host (loopback by default)."""
    return os.environ.get(METRICS_HOST_ENV) or settings.host


def serve_metrics(
    settings: MetricsSettings, role: str, registry: CollectorRegistry, state_dir: Path
) -> MetricsEndpoint | None:
    """Serve ``registry`` as this process's ``role``; None when metrics are off."""
    if not settings.enabled:
        return None
    port, bind = metrics_port(settings), metrics_host(settings)
    try:
        server, _ = start_http_server(port, bind, registry)
    except OSError as exc:
        raise StackError(
            f"metrics endpoint: cannot listen on {bind}:{port} ({exc.strerror}); "
            f"set {METRICS_PORT_ENV}=0 for a free port"
        ) from exc
    host = f"[{bind}]" if ":" in bind else bind
    url = f"http://{host}:{server.server_port}/metrics"
    file = metrics_dir(state_dir) / f"{role}-{os.getpid()}.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(orjson.dumps({"role": role, "pid": os.getpid(), "url": url}))
    endpoint = MetricsEndpoint(role, url, server, file)
    atexit.register(endpoint.forget)
    return endpoint


def endpoints(state_dir: Path) -> list[dict[str, Any]]:
    """The live workers' endpoints under ``state_dir`` (role, pid, url), by role and pid;
    files left by a process that died without cleaning up are removed."""
    found = []
    for file in sorted(metrics_dir(state_dir).glob("*.json")):
        try:
            entry = orjson.loads(file.read_bytes())
            pid = int(entry["pid"])
        except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if pid_alive(pid):
            found.append(entry)
        else:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
    return sorted(found, key=lambda entry: (entry["role"], entry["pid"]))
