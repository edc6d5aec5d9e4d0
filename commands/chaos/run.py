"""One chaos run in progress, and what a scenario is: faults on a timeline and checks."""

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from schemas.config import SwitchyardConfig
from schemas.messages import InferenceRequest
from streams.local.environment import Environment
from streams.local.stack import Stack


@dataclass
class Run:
    """One chaos run in progress: its stack, its timeline and what it observed."""

    scenario: "Scenario"
    env: Environment
    config: SwitchyardConfig
    stack: Stack
    run_id: str
    started: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    @property
    def admin_url(self) -> str:
        return (self.stack.simulator_url or "").removesuffix("/v1")

    def log(self, what: str) -> None:
        self.events.append({"at_s": round(time.monotonic() - self.started, 2), "event": what})

    async def at(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the first job was sent."""
        await asyncio.sleep(max(0.0, self.started + seconds - time.monotonic()))

    async def set_model(self, model: str, **changes: Any) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.admin_url}/admin/models/{model}",
                json=changes,
                headers=self.stack.admin_headers(),
            )
            response.raise_for_status()
        self.log(f"{model}: {changes}")

    async def provider_stats(self) -> dict[str, dict[str, int]]:
        async with httpx.AsyncClient() as http:
            stats: dict[str, dict[str, int]] = (
                await http.get(f"{self.admin_url}/admin/stats", headers=self.stack.admin_headers())
            ).json()["models"]
        return stats

    async def wait_routed(self, at_least: int, timeout_s: float) -> int:
        """Wait until the router's budget table counts ``at_least`` jobs routed (or
        ``timeout_s`` passes); the count then."""
        deadline = time.monotonic() + timeout_s
        while True:
            routed = await asyncio.to_thread(self.stack.jobs_routed)
            if routed >= at_least or time.monotonic() > deadline:
                self.log(f"{routed} jobs routed")
                return routed
            await asyncio.sleep(0.25)

    async def wait_in_flight(self, at_least: int, timeout_s: float) -> int:
        """Wait until the simulator has ``at_least`` calls in flight (or ``timeout_s``
        passes); the count then."""
        deadline = time.monotonic() + timeout_s
        while True:
            in_flight = await self.calls_in_flight()
            if in_flight >= at_least or time.monotonic() > deadline:
                self.log(f"{in_flight} calls in flight")
                return in_flight
            await asyncio.sleep(0.05)

    async def calls_in_flight(self) -> int:
        async with httpx.AsyncClient() as http:
            stats = await http.get(
                f"{self.admin_url}/admin/stats", headers=self.stack.admin_headers()
            )
        return int(stats.json()["in_flight"])

    async def wait_calls_done(self, timeout_s: float, quiet_s: float = 1.0) -> None:
        """Wait until the simulator has had no call in flight for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if await self.calls_in_flight():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_s:
                return
            await asyncio.sleep(0.1)
        self.log("calls still in flight at the end")

    async def kill(self, name: str, graceful: bool = False) -> None:
        await asyncio.to_thread(self.stack.stop_process, name, not graceful)
        self.log(f"{name}: {'SIGTERM (drained)' if graceful else 'SIGKILL'}")

    def restart(self, name: str, kind: str) -> None:
        self.stack.spawn(name, "worker", kind)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.log(f"{name}: restarted")


Shape = Callable[[InferenceRequest, int], InferenceRequest]
Faults = Callable[[Run], Coroutine[Any, Any, None]]
Checks = Callable[[Run, dict[str, Any]], dict[str, bool]]


def _same_request(request: InferenceRequest, i: int) -> InferenceRequest:
    return request


def _same_config(config: SwitchyardConfig) -> SwitchyardConfig:
    return config


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    faults: Faults
    checks: Checks
    shape: Shape = _same_request
    tune: Callable[[SwitchyardConfig], SwitchyardConfig] = _same_config
    poison_every: int = 0
    jobs: int = 2000  # the default of ``switchyard chaos --jobs``
    rate_per_s: float = 100.0  # jobs are sent at this steady rate
    providers: int = 2  # provider workers, named provider-1, provider-2, ...
