"""A job's trace across the router and a provider worker, on the real broker and simulator.

The workers run in this process (the router's faust app started in the test's loop,
the provider worker as a task) so the SDK's in-memory exporter sees every span; the
span context still crosses hops only as Kafka record headers, as between processes.
"""

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from simulator import FakeModelProfile, SimulatorSettings
from streams.client import SwitchyardClient
from streams.kafka.admin import ensure_topics
from streams.local.broker import EmbeddedBroker, free_port
from streams.topics import TopicCatalogue
from streams.workers.provider import ProviderWorker
from streams.workers.router import build_router_app
from tests.helpers import make_request, sample_config, sample_keys
from tests.simulator.serving import serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
PROMPT = "Summarise the quarterly numbers for the board, please."
CLUSTER_KEY = b"tracing-test-cluster-key-0123456"


def _failing_small() -> SimulatorSettings:
    """sim-small answers 500 to every call; the rest answer at once."""
    models = dict(SimulatorSettings().models)
    models["sim-small"] = FakeModelProfile(latency_ms=1, error_rate=1.0)
    return SimulatorSettings(models=models, latency_scale=0.01)


async def _job_through_the_pipeline(
    bootstrap: str, namespace: str, state: Path, provider: TracerProvider
) -> None:
    catalogue = TopicCatalogue(namespace)
    await ensure_topics(bootstrap, catalogue.all())
    config = sample_config()
    router = build_router_app(
        config, bootstrap, catalogue, free_port(), state, CLUSTER_KEY, tracer_provider=provider
    )
    await router.start()
    worker = ProviderWorker(config, bootstrap, catalogue, CLUSTER_KEY, provider)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        async with SwitchyardClient(bootstrap, catalogue, keys=sample_keys(config)) as client:
            reply = await client.request(
                make_request(PROMPT, request_id="traced-1", max_tokens=16),
                timeout_s=90,
                headers=[("traceparent", f"00-{TRACE_ID}-{PRODUCER_SPAN}-01".encode())],
            )
        assert reply.status == "ok"
        assert [(a.model, a.outcome) for a in reply.attempts] == [
            ("sim-small", "unavailable"),
            ("sim-medium", "ok"),
        ]
    finally:
        stop.set()
        await running
        await router.stop()


@pytest.mark.slow
def test_a_job_that_fell_back_once_is_one_trace_under_the_producers_span(
    broker: EmbeddedBroker, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def run() -> None:
        async with serving(_failing_small()) as root:
            monkeypatch.setenv("SWITCHYARD_SIMULATOR_URL", f"{root}/v1")
            await _job_through_the_pipeline(broker.bootstrap, namespace, tmp_path, provider)

    asyncio.run(run())
    spans = exporter.get_finished_spans()

    assert {f"{s.context.trace_id:032x}" for s in spans} == {TRACE_ID}
    (route,) = _named(spans, "switchyard.route")
    assert route.parent is not None and f"{route.parent.span_id:016x}" == PRODUCER_SPAN
    assert [e.name for e in route.events] == ["classify", "policy", "strategy", "budget"]
    assert route.attributes is not None
    assert route.attributes["switchyard.outcome"] == "dispatched"
    assert route.attributes["switchyard.model"] == "sim-small"

    (job,) = _children(spans, route)
    assert job.name == "switchyard.job"
    assert job.attributes is not None and job.attributes["switchyard.outcome"] == "replied"
    failed, answered, reply = sorted(_children(spans, job), key=lambda s: s.start_time or 0)
    assert (failed.name, answered.name, reply.name) == (
        "chat sim-small",
        "chat sim-medium",
        "switchyard.reply",
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and answered.attributes is not None
    assert failed.attributes["error.type"] == "provider_unavailable"
    assert failed.attributes["switchyard.attempt"] == 1
    assert answered.status.status_code is StatusCode.UNSET
    assert "error.type" not in answered.attributes
    assert answered.attributes["gen_ai.operation.name"] == "chat"
    assert answered.attributes["gen_ai.provider.name"] == "sim"
    assert answered.attributes["gen_ai.response.model"] == "sim-medium"
    assert int(str(answered.attributes["gen_ai.usage.output_tokens"])) > 0
    assert float(str(answered.attributes["switchyard.cost_usd"])) > 0
    assert answered.attributes["switchyard.attempt"] == 2
    assert reply.attributes is not None and reply.attributes["switchyard.status"] == "ok"
    assert reply.attributes["switchyard.model"] == "sim-medium"

    said = [str(v) for s in spans for v in _values(s)]
    assert not [v for v in said if "quarterly" in v or "demo-only" in v]


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _values(span: ReadableSpan) -> list[object]:
    found = list((span.attributes or {}).values())
    for event in span.events:
        found += list((event.attributes or {}).values())
    return found


NOTHING_SET_UP = """
import os, sys
from opentelemetry import trace
from schemas.runtime_settings import TracingSettings
from streams.observe.tracing import configure_tracing
assert configure_tracing(TracingSettings(), "router", {}) is None
assert configure_tracing(TracingSettings(), "router", {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None
sdk = ("opentelemetry.sdk", "opentelemetry.exporter")
loaded = sorted(m for m in sys.modules if m.startswith(sdk))
assert loaded == [], loaded
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
"""


def test_without_an_otlp_endpoint_nothing_is_set_up() -> None:
    # In a fresh interpreter: this process has loaded the SDK for the other tests.
    done = subprocess.run(
        [sys.executable, "-c", NOTHING_SET_UP], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_an_otlp_endpoint_gets_a_batching_exporter_sampling_by_ratio() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from schemas.runtime_settings import TracingSettings
    from streams.observe.tracing import configure_tracing

    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    settings = TracingSettings(service_name="sy", sample_ratio=0.25)
    provider = configure_tracing(settings, "provider", endpoint)
    assert isinstance(provider, TracerProvider)
    try:
        (processor,) = provider._active_span_processor._span_processors
        assert isinstance(processor, BatchSpanProcessor)
        assert isinstance(processor.span_exporter, OTLPSpanExporter)
        assert provider.resource.attributes["service.name"] == "sy-provider"
        assert "0.25" in provider.sampler.get_description()
    finally:
        provider.shutdown()
