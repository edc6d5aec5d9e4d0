"""Route plans on the real pipeline: cache hits, cascades, pre-steps (processes, real broker)."""

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.kafka.admin import ensure_topics
from streams.local.broker import EmbeddedBroker
from streams.local.stack import Stack
from streams.topics import TopicCatalogue, TopicSpec
from tests.helpers import (
    SAMPLE_CONFIG,
    fresh_namespace,
    provider_calls,
    running_stack,
    sample_keys,
)

pytestmark = pytest.mark.slow

# The simulator's answers are words drawn from the prompt (plus filler), so a
# prompt full of "approved" gives an answer that passes this check, and a
# prompt without it an answer that fails.
CHECK = {"kind": "regex", "pattern": r"\bapproved\b"}


def plan_config(tmp_path: Path, pre_step_topic: str) -> Path:
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["tenants"]["cachey"] = {"cache": {"enabled": True, "ttl_s": 600}}
    raw["tenants"]["laddered"] = {"strategy": "cascade"}
    raw["tenants"]["prepped"] = {"pre_step_topic": pre_step_topic}
    raw["routing"]["cascade"] = {"max_rungs": 2, "check": CHECK}
    path = tmp_path / "plans.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the module: each test uses its own tenant and request_ids."""
    home, namespace = tmp_path_factory.mktemp("plans"), fresh_namespace()
    with running_stack(
        broker, namespace, home, plan_config(home, f"{namespace}.prestep")
    ) as running:
        yield running


def ask(stack: Stack, request: InferenceRequest) -> InferenceReply:
    catalogue = TopicCatalogue(stack.env.namespace)

    async def one() -> InferenceReply:
        async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
            return await client.request(request, timeout_s=90)

    return asyncio.run(one())


def request(request_id: str, tenant: str, prompt: str, **fields: Any) -> InferenceRequest:
    return InferenceRequest(
        request_id=request_id,
        tenant=tenant,
        messages=[ChatMessage(role="user", content=prompt)],
        task="chat",
        max_tokens=64,
        **fields,
    )


def test_a_cache_hit_answers_without_a_provider_call(stack: Stack) -> None:
    first = ask(stack, request("cache-1", "cachey", "What is the capital of France?"))
    assert first.status == "ok" and first.routing and first.routing.plan
    assert first.routing.plan.cache == "miss"
    assert [s.kind for s in first.steps] == ["cache_store"]
    calls = provider_calls(stack)

    # Same messages (whitespace aside), another request_id: served from the cache.
    # The router follows the cache topic; the entry reaches it within a fetch.
    time.sleep(1.5)
    second = ask(stack, request("cache-2", "cachey", "What is the  capital of France? "))
    assert second.status == "ok"
    assert [s.kind for s in second.steps] == ["cache_hit"]
    assert second.steps[0].detail == "cache-1"
    assert second.message == first.message and second.model == first.model
    assert second.cost_usd == 0 and second.attempts == []
    assert provider_calls(stack) == calls

    # Another tenant with the same prompt is not served from cachey's entries.
    other = ask(stack, request("cache-3", "acme", "What is the capital of France?"))
    assert other.status == "ok" and other.attempts and not other.steps


def test_a_cascade_escalates_exactly_when_its_check_fails(stack: Stack) -> None:
    passes = ask(stack, request("casc-pass", "laddered", "approved " * 40, quality="premium"))
    assert passes.status == "ok" and passes.routing and passes.routing.plan
    cheap, top = passes.routing.plan.cascade  # cheapest eligible, then what premium needs
    assert top == "sim-medium"
    assert [(s.kind, s.model) for s in passes.steps] == [("check_passed", cheap)]
    assert [(a.model, a.outcome) for a in passes.attempts] == [(cheap, "ok")]
    assert passes.model == cheap

    fails = ask(stack, request("casc-fail", "laddered", "Tell me about the weather in Oslo.",
                               quality="premium"))  # fmt: skip
    assert fails.status == "ok"
    assert [(s.kind, s.model) for s in fails.steps] == [("check_failed", cheap)]
    assert [(a.model, a.outcome) for a in fails.attempts] == [(cheap, "rejected"), (top, "ok")]
    assert fails.model == top
    # Both calls are paid for: the rejected rung's cost is part of the reply's.
    assert fails.cost_usd == pytest.approx(sum(a.cost_usd for a in fails.attempts))
    assert all(a.cost_usd > 0 for a in fails.attempts)


def test_a_pre_step_service_prepares_the_job_before_routing(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    pre_step = f"{stack.env.namespace}.prestep"
    spec = TopicSpec(pre_step, "tenant", InferenceRequest, 4, None, "delete", "test pre-step")
    asyncio.run(ensure_topics(stack.bootstrap, [spec]))

    async def scenario() -> tuple[InferenceReply, list[str]]:
        service = PreStepService(stack.bootstrap, pre_step, catalogue)
        await service.start()
        try:
            async with SwitchyardClient(stack.bootstrap, catalogue) as client:
                job = request("prep-1", "prepped", "Summarise our refund policy.")
                return await client.request(job, timeout_s=90), service.seen
        finally:
            await service.close()

    reply, seen = asyncio.run(scenario())
    assert seen == ["prep-1"]
    assert reply.status == "ok" and reply.routing and reply.routing.plan
    assert reply.routing.plan.pre_step == pre_step
    assert [s.kind for s in reply.steps] == ["pre_step"]
    # The router counted the prepared job's context: two messages, not one.
    assert reply.usage is not None and reply.usage.input_tokens > 0


class PreStepService:
    """Stands in for a tenant's retrieval service: adds context, sends the job back."""

    def __init__(self, bootstrap: str, topic: str, catalogue: TopicCatalogue) -> None:
        self.seen: list[str] = []
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=f"{topic}-svc",
            auto_offset_reset="earliest", fetch_max_wait_ms=50,
        )  # fmt: skip
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        self.catalogue = catalogue
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.producer.start()
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        async for record in self.consumer:
            job = InferenceRequest.model_validate_json(record.value or b"")
            self.seen.append(job.request_id)
            context = ChatMessage(role="system", content="Refunds within 30 days.")
            prepared = job.model_copy(update={"messages": [context, *job.messages]})
            await self.producer.send_and_wait(
                self.catalogue.prepared.name,
                key=job.tenant.encode(),
                value=prepared.model_dump_json().encode(),
            )

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.consumer.stop()
        await self.producer.stop()
