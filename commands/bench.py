"""``switchyard bench``: stage throughput on this machine, one stage at a time.

Publishes N jobs, runs the router alone until it has routed them all (its
budget table counts them), then starts the provider worker and waits for every
reply. Figures are wall-clock rates from one run: compare ratios within a run.

``--router DIR`` instead compares routing strategies: the router stage alone,
once per strategy and twice in alternation (rules, learned, rules, learned,
...) on one broker, each on its own topics, reporting each strategy's best
rate and learned/rules.
"""

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer

from commands.demo import demo_requests
from commands.progress import Progress, say
from schemas.config import REVEAL_SECRETS, SwitchyardConfig
from streams.client import SwitchyardClient
from streams.kafka.admin import ensure_topics
from streams.local.environment import Environment
from streams.local.stack import Stack
from streams.tenant_keys import signing_keys
from streams.topics import TopicCatalogue


def run_bench(env: Environment, config: SwitchyardConfig, n: int) -> dict[str, Any]:
    # A namespace of its own: the bench never mixes with a running stack's topics.
    env = replace(env, namespace=f"bench-{uuid.uuid4().hex[:8]}")
    catalogue = TopicCatalogue(env.namespace)
    stack = Stack.connect(env, start_broker=True, notify=say)
    try:
        asyncio.run(ensure_topics(stack.bootstrap, catalogue.all()))
        stack.start_simulator()
        stack.start_worker("router")
        stack.wait_router_web()
        requests = demo_requests(config, n, "bench")
        asyncio.run(_publish(stack.bootstrap, catalogue, requests, config))
        routed_s = _wait_routed(stack, n)
        stack.start_worker("provider")
        answered, answered_s = asyncio.run(_wait_replies(stack.bootstrap, catalogue, n))
    finally:
        stack.stop()
    return {
        "jobs": n,
        "router_seconds": round(routed_s, 2),
        "router_jobs_per_s": round(n / routed_s, 1),
        "replies": answered,
        "provider_seconds_incl_start": round(answered_s, 2),
        "provider_jobs_per_s": round(answered / answered_s, 1),
    }


async def _publish(
    bootstrap: str, catalogue: TopicCatalogue, requests: list[Any], config: SwitchyardConfig
) -> None:
    async with SwitchyardClient(bootstrap, catalogue, keys=signing_keys(config)) as client:
        for request in requests:
            await client.submit(request)
        await client.flush()


def _wait_routed(stack: Stack, n: int, timeout_s: float = 300) -> float:
    started = time.monotonic()
    progress = Progress("routed", n)
    while time.monotonic() - started < timeout_s:
        routed = sum(int(s["requests"]) for s in stack.budget().values())
        progress.update(routed)
        if routed >= n:
            break
        time.sleep(0.1)
    return time.monotonic() - started


async def _wait_replies(
    bootstrap: str, catalogue: TopicCatalogue, n: int, timeout_s: float = 300
) -> tuple[int, float]:
    consumer = AIOKafkaConsumer(
        catalogue.replies.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    started = time.monotonic()
    progress = Progress("answered", n)
    answered = 0
    try:
        while answered < n and time.monotonic() - started < timeout_s:
            batch = await consumer.getmany(timeout_ms=200)
            answered += sum(len(records) for records in batch.values())
            progress.update(answered)
    finally:
        await consumer.stop()
    return answered, time.monotonic() - started


# Bench-only routing for the strategy comparison: a rules table over the sample
# models, and the learned artifact's two models standing for the sample's
# cheapest and strongest.
_BENCH_RULES = {
    "*": {
        "economy": ["sim-small", "sim-local"],
        "balanced": ["sim-medium", "sim-small"],
        "premium": ["sim-large", "sim-medium"],
    }
}
STRATEGIES = ("rules", "learned", "cheapest-capable")


def run_strategy_bench(
    env: Environment, config: SwitchyardConfig, n: int, router_dir: Path, rounds: int = 2
) -> dict[str, Any]:
    from sinks.router_artifact import load_router

    artifact = load_router(router_dir)
    known = artifact.models
    names = [m.name for m in sorted(config.models, key=lambda m: m.price_out_per_mtok)]
    # Cheapest catalogue model -> the artifact's first model, and so on (any mapping
    # exercises the same code path: featurise, predict, choose).
    aliases = dict(zip(names, known, strict=False))
    home = Stack.connect(env, start_broker=True, notify=say)
    rates: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    try:
        for round_ in range(rounds):
            for strategy in STRATEGIES:
                raw = config.model_dump(
                    mode="json", exclude_none=True, context={REVEAL_SECRETS: True}
                )
                raw["routing"]["strategy"] = strategy
                raw["routing"]["rules"] = _BENCH_RULES
                raw["routing"]["learned"] = {"artifact": str(router_dir), "aliases": aliases}
                path = env.state_dir / f"bench-{strategy}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(yaml.safe_dump(raw))
                run_env = replace(env, namespace=f"bench-{uuid.uuid4().hex[:8]}", config_path=path)
                rate = _router_rate(run_env, home.bootstrap, config, n, f"{strategy} #{round_ + 1}")
                rates[strategy].append(rate)
    finally:
        home.stop()
    best = {s: max(r) for s, r in rates.items()}
    return {
        "jobs": n,
        "router_jobs_per_s": {s: [round(x, 1) for x in r] for s, r in rates.items()},
        "best_jobs_per_s": {s: round(x, 1) for s, x in best.items()},
        "learned_vs_rules": round(best["learned"] / best["rules"], 3),
        "router_version": artifact.version,
    }


def _router_rate(
    env: Environment, bootstrap: str, config: SwitchyardConfig, n: int, label: str
) -> float:
    catalogue = TopicCatalogue(env.namespace)
    stack = Stack(env=env, bootstrap=bootstrap)
    try:
        asyncio.run(ensure_topics(bootstrap, catalogue.all()))
        stack.start_worker("router")
        stack.wait_router_web()
        asyncio.run(_publish(bootstrap, catalogue, demo_requests(config, n, "bench"), config))
        say(f"routing with {label}")
        return n / _wait_routed(stack, n)
    finally:
        stack.stop()
