"""One bench run: every scenario on one embedded broker, in a fixed order, one report.

Scenarios (the README's table comes from one run of all of them):

1. ``e2e``: jobs through a whole stack, zero-latency provider, telemetry on;
2. ``inflight``: 10,000 jobs against a 1-second provider, peak RSS per process;
3. ``idle``: one job at a time on an idle stack;
4. ``routing``: the router alone on queued jobs;
5. ``sink``: the telemetry sink alone, on the telemetry ``e2e`` left behind.

Figures from one machine are comparable within a run only: compare ratios.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from commands.bench.names import SCENARIOS
from commands.bench.pipeline import bench_env, end_to_end, idle_latency, router_rate
from commands.bench.sink import sink_rate
from commands.progress import say
from schemas.config import SwitchyardConfig
from streams.local.environment import Environment
from streams.local.stack import Stack


@dataclass(frozen=True)
class BenchPlan:
    """How big each scenario is, and which ones run."""

    e2e_jobs: int = 20_000
    inflight_jobs: int = 10_000
    inflight_latency_ms: float = 1000
    idle_jobs: int = 200
    routing_jobs: int = 10_000
    scenarios: tuple[str, ...] = field(default=SCENARIOS)


def run_bench(env: Environment, config: SwitchyardConfig, plan: BenchPlan) -> dict[str, Any]:
    """Every planned scenario's figures, then the headline keys over them."""
    home = Stack.connect(env, start_broker=True, notify=say)
    out: dict[str, Any] = {}
    try:
        b = home.bootstrap
        if "e2e" in plan.scenarios or "sink" in plan.scenarios:
            out["e2e"] = end_to_end(env, b, config, plan.e2e_jobs, 0)
        if "sink" in plan.scenarios:
            say("telemetry sink alone")
            out["sink"] = in_own_process(sink_rate, b, out["e2e"]["telemetry_topic"], env.state_dir)
        if "inflight" in plan.scenarios:
            latency = plan.inflight_latency_ms
            out["inflight"] = end_to_end(env, b, config, plan.inflight_jobs, latency)
        if "idle" in plan.scenarios:
            out["idle"] = idle_latency(env, b, config, plan.idle_jobs)
        if "routing" in plan.scenarios:
            say(f"routing stage alone: {plan.routing_jobs} jobs")
            out["routing"] = router_rate(bench_env(env, 0, "routing"), b, config, plan.routing_jobs)
    finally:
        home.stop()
    return {**headline(out), "scenarios": out}


def in_own_process(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a new process: a clean interpreter, and an embedded ClickHouse
    that no other part of this one has opened (one engine per process)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def headline(s: dict[str, Any]) -> dict[str, Any]:
    """The keys ``switchyard bench --json`` promises, from the scenarios that ran."""
    keys: dict[str, Any] = {}
    if "e2e" in s:
        keys |= {"e2e_jobs_per_s": s["e2e"]["jobs_per_s"], "e2e_p99_ms": s["e2e"]["p99_ms"]}
        keys["e2e_p50_ms"] = s["e2e"]["p50_ms"]
    if "inflight" in s:
        keys["inflight_10k_seconds"] = s["inflight"]["seconds"]
        keys["inflight_10k_peak_rss_mb"] = s["inflight"]["peak_rss_mb"]
    if "idle" in s:
        keys |= {"idle_p50_ms": s["idle"]["p50_ms"], "idle_p99_ms": s["idle"]["p99_ms"]}
    if "routing" in s:
        keys["routing_jobs_per_s"] = s["routing"]["jobs_per_s"]
        keys["routing_p99_ms"] = s["routing"]["p99_routing_ms"]
    if "sink" in s:
        keys["sink_rows_per_s"] = s["sink"]["rows_per_s"]
    return keys
