"""Fake OpenAI-compatible LLM providers for demos, tests and load tests.

``switchyard simulate`` serves ``POST /v1/chat/completions`` for several named
fake models, each with its own latency, error rate, rate limit and outage
windows, all seeded and deterministic. ``build_app`` gives the aiohttp app
(for tests that run it in-process); ``run_simulator`` serves it until cancelled.
"""

from typing import TYPE_CHECKING, Any

from schemas.simulator import FakeModelProfile, OutageWindow, SimulatorSettings

if TYPE_CHECKING:
    from simulator.server import build_app, run_simulator

__all__ = ["FakeModelProfile", "OutageWindow", "SimulatorSettings", "build_app", "run_simulator"]


def __getattr__(name: str) -> Any:
    # The server pulls in aiohttp; the config schema imports only the settings,
    # so the HTTP side is loaded on first use.
    if name in ("build_app", "run_simulator"):
        from simulator import server

        return getattr(server, name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
