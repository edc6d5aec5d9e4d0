"""``switchyard bench``: stage throughput on this machine, one stage at a time.

Publishes N jobs, runs the router alone until it has routed them all (its
budget table counts them), then starts the provider worker and waits for every
reply. Figures are wall-clock rates from one run: compare ratios within a run.
"""

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas.config import SwitchyardConfig
from streams.admin import ensure_topics
from streams.client import SwitchyardClient
from streams.demo import demo_requests
from streams.environment import Environment
from streams.progress import Progress
from streams.stack import Stack
from streams.topics import TopicCatalogue


def run_bench(env: Environment, config: SwitchyardConfig, n: int) -> dict[str, Any]:
    # A namespace of its own: the bench never mixes with a running stack's topics.
    env = replace(env, namespace=f"bench-{uuid.uuid4().hex[:8]}")
    catalogue = TopicCatalogue(env.namespace)
    stack = Stack.connect(env, start_broker=True)
    try:
        asyncio.run(ensure_topics(stack.bootstrap, catalogue.all()))
        stack.start_simulator()
        stack.start_worker("router")
        stack.wait_router_web()
        requests = demo_requests(config, n, "bench")
        asyncio.run(_publish(stack.bootstrap, catalogue, requests))
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


async def _publish(bootstrap: str, catalogue: TopicCatalogue, requests: list[Any]) -> None:
    async with SwitchyardClient(bootstrap, catalogue) as client:
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
