"""Starting what is missing: broker, simulated providers and the three workers.

Each component runs as its own OS process (``switchyard worker ...``), the way
production runs them, so ``demo`` and the end-to-end tests exercise the real
process boundaries. Components already running are reused, not duplicated.

A stack has one admin token (``schemas.access``): ``SWITCHYARD_ADMIN_TOKEN`` if
set, else a new one. Its processes get it in that variable (the simulator's
``/admin/...`` and the router's ``/budget/`` want it), and ``publish_state``
writes it to ``stack.json`` (mode 0600), where later commands find it.

It has one cluster key too (``processors.seal``): ``SWITCHYARD_CLUSTER_KEY`` if set,
else a new one, passed to its processes in that variable; its workers seal the
internal records they write with it and drop what lacks its seal. It is written to
``stack.json`` as well, so workers added later to the same stack share it.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from processors.seal import CLUSTER_KEY_ENV
from schemas.access import ADMIN_TOKEN_ENV, bearer, new_token
from schemas.errors import AccessDenied, BrokerError, StackError
from streams.local.broker import (
    EmbeddedBroker,
    free_port,
    pid_alive,
    running_embedded_broker,
    wait_for_port,
)
from streams.local.environment import Environment
from streams.local.private_files import write_private

WORKERS = ("router", "provider", "telemetry")


def broker_state_file(env: Environment) -> Path:
    return env.state_dir / "broker.json"


def stack_state_file(env: Environment) -> Path:
    return env.state_dir / "stack.json"


def running_stack(env: Environment) -> dict[str, Any] | None:
    """What ``switchyard up`` published about the stack it runs, if it still runs."""
    try:
        state: dict[str, Any] = orjson.loads(stack_state_file(env).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return state if pid_alive(int(state["pid"])) else None


def read_budget_page(port: int, token: str | None) -> dict[str, dict[str, Any]]:
    """The router's ``/budget/`` page on ``port``; AccessDenied if it refuses ``token``."""
    headers = bearer(token) if token else {}
    response = httpx.get(f"http://127.0.0.1:{port}/budget/", headers=headers, timeout=5)
    if response.status_code in (401, 403):
        raise AccessDenied(
            f"the router's budget page refused the token: set {ADMIN_TOKEN_ENV} to the one "
            "the router was started with"
        )
    data: dict[str, dict[str, Any]] = response.json()
    return data


def find_bootstrap(env: Environment) -> str | None:
    """``KAFKA_BOOTSTRAP`` if set, else a live embedded broker another command started."""
    return env.kafka_bootstrap or running_embedded_broker(broker_state_file(env))


@dataclass
class Stack:
    env: Environment
    bootstrap: str
    broker: EmbeddedBroker | None = None
    simulator_url: str | None = None
    router_web_port: int | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_token: str = field(default_factory=lambda: os.environ.get(ADMIN_TOKEN_ENV) or new_token())
    cluster_key: str = field(
        default_factory=lambda: os.environ.get(CLUSTER_KEY_ENV) or new_token(), repr=False
    )

    @classmethod
    def connect(
        cls,
        env: Environment,
        start_broker: bool = True,
        notify: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ) -> "Stack":
        """The broker ``env`` names or a running stack's; else a new embedded one."""
        bootstrap = find_bootstrap(env)
        if bootstrap is not None:
            return cls(env=env, bootstrap=bootstrap)
        if not start_broker:
            raise StackError(
                "no Kafka broker: set KAFKA_BOOTSTRAP, or start one with `switchyard up`"
            )
        broker = EmbeddedBroker.start(state_file=broker_state_file(env))
        notify(f"embedded broker (tansu) on {broker.bootstrap}")
        return cls(env=env, bootstrap=broker.bootstrap, broker=broker)

    def publish_state(self) -> None:
        """Let later commands (demo, budget) reuse this stack instead of starting another."""
        state = {
            "pid": os.getpid(),
            "bootstrap": self.bootstrap,
            "simulator_url": self.simulator_url,
            "router_web_port": self.router_web_port,
            "admin_token": self.admin_token,
            "cluster_key": self.cluster_key,
        }
        write_private(stack_state_file(self.env), orjson.dumps(state))

    def child_env(self) -> dict[str, str]:
        child = dict(os.environ)
        child.update(
            KAFKA_BOOTSTRAP=self.bootstrap,
            CLICKHOUSE_URL=self.env.clickhouse_url,
            SWITCHYARD_CONFIG=str(self.env.config_path),
            SWITCHYARD_HOME=str(self.env.state_dir),
            SWITCHYARD_NAMESPACE=self.env.namespace,
        )
        child[ADMIN_TOKEN_ENV] = self.admin_token
        child[CLUSTER_KEY_ENV] = self.cluster_key
        if self.simulator_url:
            child["SWITCHYARD_SIMULATOR_URL"] = self.simulator_url
        return child

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.log_path(name).parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name).open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own entry point
            [sys.executable, "-m", "commands.cli", *args],
            env=self.child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_simulator(self, wait: bool = True) -> str:
        """Start the simulator; its URL. ``wait=False`` returns at once, so the workers
        start beside it (``wait_ready`` then waits for both): each process spends a second
        or more importing, and on two cores that is worth overlapping."""
        port = free_port()
        self.spawn("simulator", "simulate", "--port", str(port))
        self.simulator_url = f"http://127.0.0.1:{port}/v1"
        if wait:
            self.wait_simulator()
        return self.simulator_url

    def wait_simulator(self) -> None:
        """Wait until the simulator listens (nothing to wait for without one)."""
        if self.simulator_url is None:
            return
        port = int(self.simulator_url.rsplit(":", 1)[1].split("/", 1)[0])
        deadline = time.monotonic() + 30
        while True:
            self.check_alive()
            try:
                wait_for_port("127.0.0.1", port, timeout_s=0.5)
                return
            except BrokerError:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"simulator did not listen on port {port} within 30s"
                    ) from None

    def wait_ready(self) -> None:
        """Wait for the simulator, if one was started, and the router's web endpoint."""
        self.wait_simulator()
        self.wait_router_web()

    def start_worker(self, kind: str) -> subprocess.Popen[bytes]:
        if kind == "router":
            self.router_web_port = self.router_web_port or free_port()
            return self.spawn(kind, "worker", "router", "--web-port", str(self.router_web_port))
        return self.spawn(kind, "worker", kind)

    def wait_router_web(self, timeout_s: float = 60) -> None:
        """Wait until the router's web endpoint answers (its app has started)."""
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.router_web_port}/budget/"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, headers=self.admin_headers(), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise StackError(f"router did not start within {timeout_s}s (see its log)")

    def metric_urls(self, timeout_s: float = 10) -> list[tuple[str, str]]:
        """(worker, URL) of every worker serving metrics on this state dir, after waiting
        up to ``timeout_s`` for the workers this stack started to announce theirs."""
        from streams.observe.endpoint import endpoints

        started = {p.pid for name, p in self.processes.items() if name in WORKERS}
        deadline = time.monotonic() + timeout_s
        while True:
            found = endpoints(self.env.state_dir)
            missing = started - {int(entry["pid"]) for entry in found}
            if not missing or time.monotonic() > deadline:
                return [(f"{e['role']} (pid {e['pid']})", str(e["url"])) for e in found]
            time.sleep(0.1)

    def admin_headers(self) -> dict[str, str]:
        """The header the stack's simulator admin and router page want."""
        return bearer(self.admin_token)

    def budget(self) -> dict[str, dict[str, Any]]:
        """The router's budget table as it holds it in memory now."""
        return read_budget_page(self.router_web_port or 0, self.admin_token)

    def jobs_routed(self) -> int:
        """Jobs the router has admitted so far, over every tenant its budget table holds."""
        return sum(int(snapshot["requests"]) for snapshot in self.budget().values())

    def log_path(self, name: str) -> Path:
        return self.env.state_dir / "logs" / f"{name}.log"

    def check_alive(self) -> None:
        """Raise with the tail of its log if any component has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                lines = self.log_path(name).read_text(errors="replace").splitlines()[-8:]
                raise StackError(
                    f"{name} exited with code {process.returncode}; last lines of "
                    f"{self.log_path(name)}:\n  " + "\n  ".join(lines)
                )

    def stop_process(self, name: str, kill: bool = False) -> None:
        self._stop_together([name], kill)

    def _stop_together(self, names: list[str], kill: bool = False) -> None:
        """Signal every one of ``names`` first, then wait for each (up to 20 s, then
        SIGKILL): their drains overlap instead of adding up."""
        processes = [self.processes.pop(name) for name in names]
        for process in processes:
            if process.poll() is None:
                process.kill() if kill else process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        # Workers first, so nothing is left talking to a vanished broker.
        self._stop_together([name for name in self.processes if name != "simulator"])
        if "simulator" in self.processes:
            self.stop_process("simulator")
        if self.broker is not None:
            self.broker.stop()
        state = running_stack(self.env)
        if state is not None and state["pid"] == os.getpid():
            stack_state_file(self.env).unlink()
