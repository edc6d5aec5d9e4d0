"""Helpers for simulator tests: a settable clock and the real app on a loopback port."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from schemas.access import bearer
from simulator import FakeModelProfile, SimulatorSettings, build_app
from simulator.behaviour import Prompt, content_hash

ADMIN_TOKEN = "simulator-admin-token-for-tests"  # noqa: S105 - a test value
ADMIN = bearer(ADMIN_TOKEN)


class FakeClock:
    """A clock tests move by hand; starts at 1000 to catch 'elapsed = now' mistakes."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fast_settings(**small: Any) -> SimulatorSettings:
    """The default models, 100x faster, with ``sim-small`` given the profile ``small``."""
    defaults = SimulatorSettings()
    models = dict(defaults.models)
    if small:
        models["sim-small"] = FakeModelProfile(**{"latency_ms": 40, **small})
    return SimulatorSettings(models=models, latency_scale=0.01)


def make_prompt(text: str = "hello there", max_tokens: int | None = None) -> Prompt:
    return Prompt((text,), text, content_hash([text, max_tokens]), max_tokens)


def chat(content: str = "hello there", model: str = "sim-small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


@asynccontextmanager
async def serving(
    settings: SimulatorSettings, clock: Callable[[], float] = time.monotonic
) -> AsyncIterator[str]:
    """Serve ``build_app(settings, clock, ADMIN_TOKEN)`` on 127.0.0.1 and yield its root URL."""
    runner = web.AppRunner(build_app(settings, clock, ADMIN_TOKEN), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
