"""The whole pipeline as separate OS processes on the real broker and real embedded ClickHouse."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from commands.demo import demo_requests, publish_and_collect, wait_for_telemetry
from schemas.messages import InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from tests.helpers import (
    Engine,
    fresh_namespace,
    provider_calls,
    running_stack,
    sample_config,
    sample_keys,
)

pytestmark = pytest.mark.slow

TRACE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def stack(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the tests that only add their own jobs (own request_ids) to it."""
    home = tmp_path_factory.mktemp("e2e")
    with running_stack(engine, fresh_namespace(), home) as running:
        yield running


@pytest.fixture
def own_stack(engine: Engine, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own, for a test that restarts workers and counts every request."""
    with running_stack(engine, namespace, tmp_path) as running:
        yield running


def collect(stack: Stack, n: int, run_id: str) -> tuple[dict[str, InferenceReply], int]:
    requests = demo_requests(sample_config(), n, run_id)
    catalogue = TopicCatalogue(stack.env.namespace)
    return asyncio.run(
        publish_and_collect(stack.bootstrap, catalogue, requests, timeout_s=180, keys=sample_keys())
    )


def test_500_requests_answered_once_each_with_telemetry(stack: Stack) -> None:
    replies, duplicates = collect(stack, 500, "e2e")
    assert len(replies) == 500
    assert set(replies) == {f"e2e-{i:06d}" for i in range(500)}
    assert duplicates == 0
    assert {r.status for r in replies.values()} == {"ok"}
    assert {r.tenant for r in replies.values()} == {"acme", "globex", "initech"}
    assert all(r.routing is not None and r.routing.chosen == r.model for r in replies.values())
    assert wait_for_telemetry(stack.env, "e2e", 500, timeout_s=60) == 500
    stack.check_alive()


async def _send_bad_inputs(stack: Stack) -> dict[str, InferenceReply]:
    catalogue = TopicCatalogue(stack.env.namespace)
    good = demo_requests(sample_config(), 1, "after-bad")[0]
    async with SwitchyardClient(
        stack.bootstrap, catalogue, max_message_bytes=8_000_000, keys=sample_keys()
    ) as client:
        waiting = {
            "wrong-types": client.expect("acme", "wrong-types"),
            "unknown-tenant": client.expect("nobody", "unknown-tenant"),
        }
        reply_to = catalogue.replies.name
        # acme's own producer sending malformed jobs: signed, so they are read and answered.
        await client.send_raw(b"this is not json {", key="acme", sign_as="acme")
        await client.send_raw(
            orjson.dumps(
                {
                    "request_id": "wrong-types",
                    "tenant": "acme",
                    "reply_to": reply_to,
                    "messages": "hello",
                    "max_tokens": "lots",
                }
            ),
            sign_as="acme",
        )
        # no request_id, no messages
        await client.send_raw(orjson.dumps({"tenant": "acme"}), sign_as="acme")
        await client.send_raw(
            orjson.dumps(
                {
                    "request_id": "too-big",
                    "tenant": "acme",
                    "messages": [{"role": "user", "content": "x" * 5_000_000}],
                }
            ),
            sign_as="acme",
        )
        await client.send_raw(
            orjson.dumps(
                {
                    "request_id": "unknown-tenant",
                    "tenant": "nobody",
                    "reply_to": reply_to,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            )
        )
        good_reply = await client.request(good, timeout_s=60, headers=[("traceparent", TRACE)])
        replies = {k: await asyncio.wait_for(f, 30) for k, f in waiting.items()}
        replies["good"] = good_reply
        return replies


async def _reply_headers(bootstrap: str, topic: str, request_id: str) -> list[tuple[str, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for rs in batch.values() for r in rs):
                if record.key == request_id.encode():
                    return list(record.headers)
    finally:
        await consumer.stop()
    return []


async def _read_dead_letters(bootstrap: str, topic: str, expected: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=10_000_000,
    )
    await consumer.start()
    letters: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 30
        while len(letters) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            letters += [orjson.loads(r.value) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return letters


def test_malformed_input_is_dead_lettered_and_the_worker_keeps_going(stack: Stack) -> None:
    replies = asyncio.run(_send_bad_inputs(stack))
    assert replies["good"].status == "ok"
    # Headers survive the router (faust) and the provider worker onto the reply.
    reply_topic = TopicCatalogue(stack.env.namespace).replies.name
    assert asyncio.run(_reply_headers(stack.bootstrap, reply_topic, "after-bad-000000")) == [
        ("traceparent", TRACE)
    ]
    assert replies["wrong-types"].status == "rejected"
    assert replies["wrong-types"].error is not None
    assert replies["wrong-types"].error.code == "invalid_request"
    assert "max_tokens" in replies["wrong-types"].error.message
    assert replies["unknown-tenant"].error is not None
    assert replies["unknown-tenant"].error.code == "unknown_tenant"

    topic = TopicCatalogue(stack.env.namespace).dead_letter.name
    letters = asyncio.run(_read_dead_letters(stack.bootstrap, topic, 5))
    codes = sorted(str(letter["error"]["code"]) for letter in letters)  # type: ignore[index]
    assert codes == sorted(
        [
            "invalid_request",
            "invalid_request",
            "invalid_request",
            "message_too_large",
            "unknown_tenant",
        ]
    )
    too_big = next(x for x in letters if x["error"]["code"] == "message_too_large")  # type: ignore[index]
    assert too_big["payload_truncated"] is True
    assert int(too_big["payload_bytes"]) > 5_000_000  # type: ignore[call-overload]
    stack.check_alive()  # no worker died on any of it


def _budget_when(
    stack: Stack, expected_requests: dict[str, int], settled: bool, timeout_s: float = 60
) -> dict[str, dict[str, float]]:
    """Poll the router's in-memory budget until it has counted the expected requests."""
    deadline = time.monotonic() + timeout_s
    budget: dict[str, dict[str, float]] = {}
    while time.monotonic() < deadline:
        try:
            budget = stack.budget()
        except Exception:
            budget = {}
        counts = {t: int(s["requests"]) for t, s in budget.items()}
        if counts == expected_requests and (
            not settled or all(s["reserved_usd"] < 1e-12 for s in budget.values())
        ):
            return budget
        time.sleep(0.5)
    return budget


def _per_tenant(replies: dict[str, InferenceReply] | list[InferenceRequest]) -> dict[str, int]:
    items = list(replies.values()) if isinstance(replies, dict) else replies
    return {t: sum(1 for r in items if r.tenant == t) for t in ("acme", "globex", "initech")}


async def _publish_only(stack: Stack, requests: list[InferenceRequest]) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
        for request in requests:
            await client.submit(request)
        await client.flush()


def test_router_restart_mid_run_recovers_exact_budget_state(own_stack: Stack) -> None:
    stack = own_stack
    first, _ = collect(stack, 300, "before")
    assert len(first) == 300
    settled = _budget_when(stack, _per_tenant(first), settled=True)
    for tenant, snap in settled.items():
        spent = sum(r.cost_usd for r in first.values() if r.tenant == tenant)
        assert snap["spent_usd"] == pytest.approx(spent, rel=1e-9)

    # Mid-run: a burst is routed (reserved) while no provider answers, so the
    # changelog ends in multi-record batches, the case the broker misreports.
    stack.stop_process("provider")
    burst = demo_requests(sample_config(), 240, "burst")
    asyncio.run(_publish_only(stack, burst))
    expected = {
        t: n + m
        for (t, n), m in zip(_per_tenant(first).items(), _per_tenant(burst).values(), strict=True)
    }
    before = _budget_when(stack, expected, settled=False)
    assert {t: int(s["requests"]) for t, s in before.items()} == expected
    assert all(s["reserved_usd"] > 0 for s in before.values())

    stack.stop_process("router")
    stack.start_worker("router")
    stack.wait_router_web()
    after = _budget_when(stack, expected, settled=False)
    assert after == before  # every field, offsets included: nothing lost, nothing applied twice

    stack.start_worker("provider")  # the burst is answered and settled after the restart
    final = _budget_when(stack, expected, settled=True)
    assert {t: int(s["requests"]) for t, s in final.items()} == expected
    assert all(s["reserved_usd"] < 1e-12 for s in final.values())
    assert all(s["spent_usd"] > settled[t]["spent_usd"] for t, s in final.items())


def _provider_calls(stack: Stack) -> int:
    return sum(provider_calls(stack).values())


def test_resent_request_id_gets_the_same_reply_without_a_second_provider_call(
    stack: Stack,
) -> None:
    request = demo_requests(sample_config(), 1, "resend")[0]
    catalogue = TopicCatalogue(stack.env.namespace)

    async def ask() -> InferenceReply:
        # A fresh client each time: one client treats a second reply as a duplicate.
        async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
            return await client.request(request, timeout_s=60)

    first = asyncio.run(ask())
    calls_after_first = _provider_calls(stack)
    second = asyncio.run(ask())

    assert first.status == "ok"
    assert _provider_calls(stack) == calls_after_first
    assert second.model_dump() == first.model_dump()  # the stored reply, byte for byte
