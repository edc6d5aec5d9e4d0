"""One bench run: every scenario on one embedded broker, in a fixed order, one report.

Scenarios (the README's table comes from one run of all of them):

1. ``e2e``: jobs through a whole stack, zero-latency provider, telemetry on;
2. ``inflight``: 10,000 jobs against a 1-second provider, peak RSS per process;
3. ``idle``: one job at a time on an idle stack;
4. ``routing``: the router alone on queued jobs;
5. ``sink``: the telemetry sink alone, on the telemetry ``e2e`` left behind;
6. ``scaleout``: jobs through one router and one provider worker, then two of each;
7. ``litellm``: the jobs of 1 and 2 through LiteLLM's Router in-process;
8. ``ceiling``: the same through a bare HTTP client.

Figures from one machine are comparable within a run only: compare ratios.
"""

from dataclasses import dataclass, field
from typing import Any

from commands.bench.comparison import compare
from commands.bench.names import SCENARIOS
from commands.bench.pipeline import (
    IDLE_CPU_WINDOW_S,
    bench_env,
    end_to_end,
    idle_latency,
    router_rate,
    scale_out,
)
from commands.bench.procs import in_own_process
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
    scaleout_jobs: int = 10_000
    scenarios: tuple[str, ...] = field(default=SCENARIOS)
    # Concurrencies each client side runs at for (e2e, inflight); its best run counts.
    litellm_concurrency: tuple[tuple[int, ...], tuple[int, ...]] = ((200, 1000), (1000, 10_000))
    ceiling_concurrency: tuple[tuple[int, ...], tuple[int, ...]] = ((200, 1000), (3000,))
    idle_window_s: float = IDLE_CPU_WINDOW_S  # how long each process's idle CPU is sampled


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
            out["idle"] = idle_latency(env, b, config, plan.idle_jobs, plan.idle_window_s)
        if "routing" in plan.scenarios:
            say(f"routing stage alone: {plan.routing_jobs} jobs")
            out["routing"] = router_rate(bench_env(env, 0, "routing"), b, config, plan.routing_jobs)
        if "scaleout" in plan.scenarios:
            out["scaleout"] = scale_out(env, b, config, plan.scaleout_jobs)
        out |= _clients(env, b, config, plan)
    finally:
        home.stop()
    return {**headline(out), "scenarios": out}


def _clients(
    env: Environment, bootstrap: str, config: SwitchyardConfig, plan: BenchPlan
) -> dict[str, Any]:
    """Scenarios 6 and 7 on the jobs of 1 and 2, the sides that were asked for."""
    asked = {"litellm": plan.litellm_concurrency, "ceiling": plan.ceiling_concurrency}
    sides = {side: levels for side, levels in asked.items() if side in plan.scenarios}
    if not sides:
        return {}
    e2e = {side: levels[0] for side, levels in sides.items()}
    inflight = {side: levels[1] for side, levels in sides.items()}
    return {
        "clients_e2e": compare(env, bootstrap, config, plan.e2e_jobs, 0, e2e),
        "clients_inflight": compare(
            env, bootstrap, config, plan.inflight_jobs, plan.inflight_latency_ms, inflight
        ),
    }


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
    if "scaleout" in s:
        keys["scaleout_ratio"] = s["scaleout"]["ratio"]
    return keys | _client_keys(s)


def _client_keys(s: dict[str, Any]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    e2e = s.get("clients_e2e", {}).get("best", {})
    inflight = s.get("clients_inflight", {}).get("best", {})
    if "litellm" in e2e:
        keys["litellm_e2e_jobs_per_s"] = round(e2e["litellm"]["jobs_per_s"], 1)
        keys["litellm_e2e_concurrency"] = e2e["litellm"]["label"]
        if "e2e" in s:
            keys["ratio_vs_litellm_e2e"] = round(
                s["e2e"]["jobs_per_s"] / e2e["litellm"]["jobs_per_s"], 2
            )
    if "litellm" in inflight:
        keys["litellm_inflight_10k_seconds"] = round(inflight["litellm"]["seconds"], 2)
        if "inflight" in s:
            keys["ratio_vs_litellm_inflight"] = round(
                inflight["litellm"]["seconds"] / s["inflight"]["seconds"], 2
            )
    if "ceiling" in e2e:
        keys["ceiling_jobs_per_s"] = round(e2e["ceiling"]["jobs_per_s"], 1)
    if "ceiling" in inflight:
        keys["ceiling_inflight_10k_seconds"] = round(inflight["ceiling"]["seconds"], 2)
    return keys
