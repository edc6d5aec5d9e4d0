"""Scenarios 6 and 7: the same jobs through LiteLLM's Router and through a bare client.

Both run in-process clients of their own (each in a fresh process, so peak RSS is
theirs alone) against a simulator started from the same bench config as
Switchyard's stack, so all three sides meet the same fake models at the same
latency. LiteLLM is given three model groups with fallbacks, the shape a LiteLLM
user configures, and runs at each concurrency in ``concurrencies``; its best run
is the one compared. The bare client is the ceiling every side shares.
"""

import asyncio
from dataclasses import asdict
from typing import Any

from commands.bench.ceiling import ceiling_run
from commands.bench.jobs import jobs_from_requests
from commands.bench.litellm_side import litellm_run
from commands.bench.pipeline import bench_env, bench_stack
from commands.bench.procs import in_own_process
from commands.demo import demo_requests
from commands.progress import say
from schemas.config import SwitchyardConfig
from schemas.messages import InferenceRequest
from streams.local.environment import Environment

# Quality tier -> the simulator models LiteLLM may use, primary first: what Switchyard's
# sample rules route each tier to.
GROUPS = {
    "economy": ["sim-small", "sim-local"],
    "balanced": ["sim-medium", "sim-small"],
    "premium": ["sim-large", "sim-medium"],
}


def _group_of(request: InferenceRequest) -> str:
    return request.quality or "balanced"


def client_run(
    side: str, base_url: str, requests: list[dict[str, Any]], concurrency: int
) -> dict[str, Any]:
    """One side's run, as a plain dict (it crosses a process boundary)."""
    parsed = [InferenceRequest.model_validate(r) for r in requests]
    jobs = jobs_from_requests(parsed, _group_of)
    run = litellm_run if side == "litellm" else ceiling_run
    return asdict(asyncio.run(run(base_url, jobs, GROUPS, concurrency)))


def compare(
    base: Environment,
    bootstrap: str,
    config: SwitchyardConfig,
    n: int,
    latency_ms: float,
    concurrencies: dict[str, tuple[int, ...]],
) -> dict[str, Any]:
    """Each side at each of its concurrencies on ``n`` jobs (the demo's mix, as
    Switchyard's e2e sends): every run, and each side's best."""
    env = bench_env(base, latency_ms, f"clients-{int(latency_ms)}ms")
    requests = [r.model_dump(mode="json") for r in demo_requests(config, n, "e2e")]
    runs: dict[str, list[dict[str, Any]]] = {}
    with bench_stack(env, bootstrap, workers=()) as stack:
        url = stack.simulator_url or ""
        for side, levels in concurrencies.items():
            for c in levels:
                say(f"{side}: {n} jobs at concurrency {c}, provider latency {latency_ms:g} ms")
                runs.setdefault(side, []).append(in_own_process(client_run, side, url, requests, c))
    best = {side: max(rs, key=lambda r: r["jobs_per_s"]) for side, rs in runs.items()}
    return {"jobs": n, "latency_ms": latency_ms, "runs": runs, "best": best}
