"""A tenant's rate limit on the real pipeline with two routers: together they admit no more
than the limit, and every job over it gets a ``rate_limited`` reply saying when to retry.

acme may send 5 requests a minute (a bucket of 5, refilled one every 12 s). 60 of its jobs,
on every requests partition, keyed and not, reach both routers; each is moved to acme's
home partition, where one router decides them all from the one sealed snapshot.
"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from schemas.errors import AccessDenied
from streams.local.broker import EmbeddedBroker, free_port
from streams.local.stack import Stack
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue
from tests.helpers import SAMPLE_CONFIG, running_stack
from tests.test_tenancy_pipeline import budget_pages, held_by_one, job, produce, read_replies

pytestmark = pytest.mark.slow

PER_MINUTE = 5


@pytest.fixture
def stack(broker: EmbeddedBroker, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["tenants"]["acme"]["rate_limits"] = {"requests_per_minute": PER_MINUTE}
    config = tmp_path / "rate-limits.yaml"
    config.write_text(yaml.safe_dump(raw))
    with running_stack(broker, namespace, tmp_path, config) as running:
        yield running


def test_two_routers_admit_no_more_than_the_limit_and_say_when_to_retry(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    requests, replies_topic = catalogue.requests.name, catalogue.replies.name
    second = free_port()
    stack.spawn("router-2", "worker", "router", "--web-port", str(second))
    ports = [stack.router_web_port or 0, second]
    # globex and initech warm up both routers: both answer and both tenants were routed.
    deadline = time.monotonic() + 90
    warm = 0
    while True:
        batch = [
            (requests, p, None, job(tenant, f"warm-{tenant}-{warm}-{p}", replies_topic))
            for tenant in ("globex", "initech")
            for p in range(ROUTING_PARTITIONS)
        ]
        asyncio.run(produce(stack.bootstrap, batch))
        warm += len(batch)
        try:
            pages = budget_pages(stack, ports)
        except (httpx.HTTPError, AccessDenied):  # the second router is still starting
            pages = [{}, {}]
        if {"globex", "initech"} <= set(pages[0]) | set(pages[1]):
            break
        assert time.monotonic() < deadline, f"the routers did not start: {pages}"
        time.sleep(1)
    asyncio.run(read_replies(stack.bootstrap, replies_topic, warm))

    sent = [
        (
            requests,
            i % ROUTING_PARTITIONS,
            b"acme" if i % 2 else None,
            job("acme", f"a-{i}", replies_topic),
        )
        for i in range(60)
    ]
    started = time.monotonic()
    asyncio.run(produce(stack.bootstrap, sent))
    replies = [
        r
        for r in asyncio.run(read_replies(stack.bootstrap, replies_topic, warm + 60))
        if r.tenant == "acme"
    ]
    took_s = time.monotonic() - started

    assert len(replies) == 60
    ok = [r for r in replies if r.status == "ok"]
    limited = [r for r in replies if r.error is not None and r.error.code == "rate_limited"]
    # A bucket of 5, and one more per 12 s the run lasted.
    assert PER_MINUTE <= len(ok) <= PER_MINUTE + int(took_s // 12), took_s
    assert len(ok) + len(limited) == 60
    assert all(r.error and r.error.retryable and (r.error.retry_after_s or 0) > 0 for r in limited)
    assert held_by_one(budget_pages(stack, ports), "acme")["requests"] == len(ok)
