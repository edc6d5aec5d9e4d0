"""Switchyard's side of the bench: whole stacks on one broker, each on its own topics.

Every stack runs the real processes (simulator, router, provider and telemetry
workers) from a copy of the user's config in which every simulated model
answers in a fixed time (``latency_ms``, sigma 0, no faults) and every model may
take 4,096 calls at once, so the provider is never the bottleneck by
configuration. Jobs are the demo's mix over the config's tenants, signed.
"""

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from commands.bench.figures import cpu_seconds, peak_rss_mb, quantile_ms
from commands.demo import demo_requests
from commands.progress import Progress, say
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.messages import InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.kafka.admin import ensure_topics
from streams.kafka.broker_profile import profile
from streams.kafka.reading import read_to_end
from streams.local.broker import free_port
from streams.local.environment import Environment
from streams.local.stack import WORKERS, Stack
from streams.tenant_keys import signing_keys
from streams.topics import TopicCatalogue

BENCH_CONCURRENCY = 4096
IDLE_CPU_WINDOW_S = 5.0


@dataclass(frozen=True)
class Timed:
    """Jobs published as fast as the client can, and when each reply came."""

    jobs: int
    answered: int
    ok: int
    seconds: float  # first publish -> last reply
    latencies_ms: list[float]  # publish -> reply, per answered job

    def figures(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "answered": self.answered,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "jobs_per_s": round(self.answered / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": quantile_ms(self.latencies_ms, 0.5),
            "p99_ms": quantile_ms(self.latencies_ms, 0.99),
        }


def bench_config_file(config_path: Path, latency_ms: float, out: Path) -> Path:
    """The user's config file with every simulated model at ``latency_ms`` (0: no wait)
    and no faults, every model's ``max_concurrency`` at ``BENCH_CONCURRENCY``, and no
    tenant budget: a bench measures throughput, and a budget that runs out mid-run (the
    sample's initech has $5 a day) turns jobs into refusals the routing scenario never
    counts as routed.

    Edited as YAML text, not through the model: ``${VAR}`` references (the
    simulator's address) must stay for the workers to resolve."""
    raw: dict[str, Any] = yaml.safe_load(config_path.read_text())
    for model in raw["models"]:
        model["max_concurrency"] = BENCH_CONCURRENCY
    for tenant in raw["tenants"].values():
        for budget in ("budget_usd", "budget_alert_at", "budgets"):
            tenant.pop(budget, None)
    simulator = raw.setdefault("simulator", {})
    names = [m["name"] for m in raw["models"]]
    profiles = simulator.setdefault("models", {})
    for name in names:
        profile = profiles.setdefault(name, {})
        profile.update(latency_ms=latency_ms, latency_sigma=0, error_rate=0, outages=[])
        profile.pop("rate_limit_rps", None)
    simulator["latency_scale"] = 1.0 if latency_ms > 0 else 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def bench_env(base: Environment, latency_ms: float, label: str) -> Environment:
    """An environment of its own: namespace, state directory and embedded ClickHouse."""
    run_id = f"{label}-{uuid.uuid4().hex[:6]}"
    state = base.state_dir / "bench" / run_id
    config = bench_config_file(base.config_path, latency_ms, state / "config.yaml")
    return replace(
        base,
        namespace=f"bench-{run_id}",
        state_dir=state,
        clickhouse_url=f"chdb://{state / 'chdb'}",
        config_path=config,
    )


@contextlib.contextmanager
def bench_stack(
    env: Environment, bootstrap: str, workers: tuple[str, ...] = WORKERS, copies: int = 1
) -> Iterator[Stack]:
    """The simulator (unless only the router runs: it calls no model) and ``workers`` as
    processes on ``bootstrap``, on ``env``'s topics; ``copies`` routers and provider
    workers in one consumer group each (``router-2``, ``provider-2``...)."""
    stack = Stack(env=env, bootstrap=bootstrap)
    try:
        asyncio.run(ensure_topics(bootstrap, TopicCatalogue(env.namespace).all()))
        if workers != ("router",):
            stack.start_simulator(wait=False)
        for kind in workers:
            stack.start_worker(kind)
        for copy in range(2, copies + 1):
            port = str(free_port())
            stack.spawn(f"router-{copy}", "worker", "router", "--web-port", port)
            stack.spawn(f"provider-{copy}", "worker", "provider")
        stack.wait_simulator()
        if "router" in workers:
            stack.wait_router_web()
        yield stack
    finally:
        stack.stop()


async def publish_and_collect(
    stack: Stack, config: SwitchyardConfig, requests: list[InferenceRequest], timeout_s: float
) -> Timed:
    """Publish every job at once (signed), then wait for every reply."""
    catalogue = TopicCatalogue(stack.env.namespace)
    progress = Progress("answered", len(requests))
    done_at: dict[str, float] = {}
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=signing_keys(config)) as client:
        started = time.perf_counter()
        sent_at: dict[str, float] = {}
        futures: list[asyncio.Future[InferenceReply]] = []
        for request in requests:
            sent_at[request.request_id] = time.perf_counter()
            future = await client.submit(request)
            future.add_done_callback(functools.partial(_stamp, done_at, request.request_id))
            futures.append(future)
        await client.flush()
        replies = await _gather(futures, progress, timeout_s, stack.check_alive)
    last = max(done_at.values(), default=started)
    return Timed(
        jobs=len(requests),
        answered=len(replies),
        ok=sum(1 for r in replies if r.status == "ok"),
        seconds=last - started,
        latencies_ms=[(done_at[rid] - sent_at[rid]) * 1000 for rid in done_at],
    )


def _stamp(done_at: dict[str, float], request_id: str, _: object) -> None:
    done_at[request_id] = time.perf_counter()


async def _gather(
    futures: list[asyncio.Future[InferenceReply]],
    progress: Progress,
    timeout_s: float,
    check_alive: Callable[[], None],
) -> list[InferenceReply]:
    """Every reply that comes within ``timeout_s``; raises as soon as a process died."""
    deadline = time.monotonic() + timeout_s
    pending = set(futures)
    while pending and time.monotonic() < deadline:
        _, pending = await asyncio.wait(pending, timeout=0.5)
        progress.update(len(futures) - len(pending))
        check_alive()
    return [f.result() for f in futures if f.done() and not f.cancelled()]


def end_to_end(
    base: Environment,
    bootstrap: str,
    config: SwitchyardConfig,
    n: int,
    latency_ms: float,
    copies: int = 1,
) -> dict[str, Any]:
    """Scenarios 1 and 2: ``n`` jobs at once through a whole stack (``copies`` routers
    and provider workers); peak RSS per process."""
    env = bench_env(base, latency_ms, f"e2e-{int(latency_ms)}ms-x{copies}")
    say(f"end to end: {n} jobs, provider latency {latency_ms:g} ms, {copies} of each worker")
    with bench_stack(env, bootstrap, copies=copies) as stack:
        requests = demo_requests(config, n, "e2e")
        before = {name: cpu_seconds(p.pid) for name, p in stack.processes.items()}
        timed = asyncio.run(publish_and_collect(stack, config, requests, timeout_s=600))
        cpu = {
            name: round(1000 * (cpu_seconds(p.pid) - before[name]) / n, 3)
            for name, p in stack.processes.items()
        }
        rss = {name: peak_rss_mb(p.pid) for name, p in stack.processes.items()}
    return {
        **timed.figures(),
        "latency_ms": latency_ms,
        "cpu_ms_per_job": cpu,
        "peak_rss_mb": rss,
        "telemetry_topic": TopicCatalogue(env.namespace).telemetry.name,
    }


def scale_out(
    base: Environment, bootstrap: str, config: SwitchyardConfig, n: int
) -> dict[str, Any]:
    """``n`` jobs at once, 0 ms provider, through one router and one provider worker,
    then through two of each on the same topics (the partitions split between them)."""
    one = end_to_end(base, bootstrap, config, n, 0, copies=1)
    two = end_to_end(base, bootstrap, config, n, 0, copies=2)
    return {
        "jobs": n,
        "one": one["jobs_per_s"],
        "two": two["jobs_per_s"],
        "ratio": round(two["jobs_per_s"] / one["jobs_per_s"], 2),
        "answered": {"one": one["answered"], "two": two["answered"]},
    }


def idle_latency(
    base: Environment,
    bootstrap: str,
    config: SwitchyardConfig,
    n: int,
    window_s: float = IDLE_CPU_WINDOW_S,
) -> dict[str, Any]:
    """Scenario 3: one job at a time on an idle stack, zero-latency provider."""
    env = bench_env(base, 0, "idle")
    say(f"one job at a time: {n} jobs")
    catalogue = TopicCatalogue(env.namespace)

    async def one_by_one(stack: Stack) -> list[float]:
        keys = signing_keys(config)
        out: list[float] = []
        async with SwitchyardClient(stack.bootstrap, catalogue, keys=keys) as client:
            for request in demo_requests(config, n + 5, "idle"):
                started = time.perf_counter()
                await client.request(request, timeout_s=30)
                out.append((time.perf_counter() - started) * 1000)
        return out[5:]  # the first few pay for connections and metadata

    with bench_stack(env, bootstrap) as stack:
        latencies = asyncio.run(one_by_one(stack))
        idle_cpu = _idle_cpu_percent(stack, window_s)
    return {
        "jobs": n,
        "p50_ms": quantile_ms(latencies, 0.5),
        "p99_ms": quantile_ms(latencies, 0.99),
        "fetch_max_wait_ms": profile(bootstrap).job_fetch_wait_ms,
        "idle_cpu_percent": idle_cpu,
    }


def _idle_cpu_percent(stack: Stack, window_s: float) -> dict[str, float]:
    """Each process's CPU use while nothing is sent: the price of short fetch waits."""
    before = {name: cpu_seconds(p.pid) for name, p in stack.processes.items()}
    time.sleep(window_s)
    return {
        name: round(100 * (cpu_seconds(p.pid) - before[name]) / window_s, 1)
        for name, p in stack.processes.items()
    }


def router_rate(
    env: Environment, bootstrap: str, config: SwitchyardConfig, n: int
) -> dict[str, Any]:
    """Scenario 4: the router alone on ``n`` jobs published at once: its rate from its
    first dispatch record to its last (broker timestamps; the router works through the
    queue while it fills faster than it drains), and the p99 of each job's routing time
    (``routing_ms``)."""
    catalogue = TopicCatalogue(env.namespace)
    with bench_stack(env, bootstrap, workers=("router",)) as stack:
        requests = demo_requests(config, n, "routing")
        asyncio.run(_publish(stack, config, requests))
        _wait_routed(stack, n)
        routing_ms, stamps = asyncio.run(_dispatched(bootstrap, catalogue))
    seconds = max((max(stamps) - min(stamps)) / 1000, 1e-3)
    return {
        "jobs": n,
        "seconds": round(seconds, 2),
        "jobs_per_s": round(len(stamps) / seconds, 1),
        "p99_routing_ms": quantile_ms(routing_ms, 0.99),
    }


async def _publish(stack: Stack, config: SwitchyardConfig, requests: list[Any]) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=signing_keys(config)) as client:
        for request in requests:
            await client.submit(request)
        await client.flush()


def _wait_routed(stack: Stack, n: int, timeout_s: float = 300) -> None:
    """Until the router has admitted ``n`` jobs (or ``timeout_s`` passes), with progress."""
    started = time.monotonic()
    progress = Progress("routed", n)
    while time.monotonic() - started < timeout_s:
        routed = stack.jobs_routed()
        progress.update(routed)
        if routed >= n:
            return
        time.sleep(0.1)


async def _dispatched(bootstrap: str, catalogue: TopicCatalogue) -> tuple[list[float], list[int]]:
    """Each dispatch record's routing time (ms) and broker timestamp (epoch ms)."""
    routing_ms: list[float] = []
    stamps: list[int] = []
    async for record in read_to_end(bootstrap, catalogue.dispatch.name):
        routing_ms.append(DispatchJob.model_validate_json(record.value).routing_ms)
        stamps.append(record.timestamp)
    return routing_ms, stamps
