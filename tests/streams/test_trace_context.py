"""How a job's trace context travels: which records carry ``sy-traceparent``, and which
span each hop's spans hang under (the producer's, the previous hop's, a parked wait)."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processors.outputs import Output
from schemas.messages import InferenceReply
from streams.observe.tracing import Tracing
from streams.outputs import TRACE_HEADER, records
from streams.topics import TopicCatalogue
from tests.helpers import dispatch_job

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER = f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode()
KEY = b"cluster-key-for-tests-0123456789"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


def _tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


def test_the_trace_header_goes_with_the_job_and_never_back_to_the_producer() -> None:
    job = dispatch_job(NOW)
    reply = InferenceReply(request_id="r-1", tenant="acme", status="ok", finished_at=NOW)
    outputs = [
        Output("dispatch", "r-1", job, headers=True),
        Output("retry", "r-1", job, retry_tier=1, headers=True),
        Output("reply", "r-1", reply, headers=True),
        Output("telemetry", "r-1", reply),
    ]
    # A producer's own sy-traceparent is never passed on: only a worker's.
    written = [("traceparent", PRODUCER), (TRACE_HEADER, b"forged")]
    ours = [(TRACE_HEADER, b"00-ours")]
    sent = records(outputs, TopicCatalogue("sy"), written, KEY, ours)
    carried = [[v for k, v in headers or [] if k == TRACE_HEADER] for *_, headers in sent]
    assert carried == [[b"00-ours"], [b"00-ours"], [], []]
    assert [v for k, v in sent[2][3] or [] if k == "traceparent"] == [PRODUCER]
    untraced = records(outputs, TopicCatalogue("sy"), written, KEY)
    assert not [k for *_, headers in untraced for k, _ in headers or [] if k == TRACE_HEADER]


def test_the_router_span_continues_the_producers_trace_or_starts_one(
    exporter: InMemorySpanExporter,
) -> None:
    tracing = _tracing(exporter)
    dispatched = [Output("dispatch", "r-1", dispatch_job(NOW), headers=True)]
    ((name, value),) = tracing.route({"traceparent": PRODUCER}, dispatched, 1, "sy.requests")
    tracing.route({}, dispatched, 1, "sy.requests")
    continued, fresh = exporter.get_finished_spans()
    assert f"{continued.context.trace_id:032x}" == TRACE_ID
    assert continued.parent is not None and continued.parent.span_id == 0x00F067AA0BA902B7
    assert name == TRACE_HEADER
    assert value.decode() == f"00-{TRACE_ID}-{continued.context.span_id:016x}-01"
    assert fresh.parent is None and fresh.context.trace_id != continued.context.trace_id


def test_a_parked_wait_is_a_span_from_parking_to_resuming_under_the_run_that_parked_it(
    exporter: InMemorySpanExporter,
) -> None:
    tracing = _tracing(exporter)
    job = dispatch_job(NOW)
    first = tracing.job(job, [(TRACE_HEADER, PRODUCER)], None)
    parked_copy = first.header()
    first.end()
    parked_at_ms = 1_700_000_000_000
    resumed = tracing.job(job.model_copy(update={"round": 1}), list(parked_copy), parked_at_ms)
    resumed.end()
    run, wait, rerun = exporter.get_finished_spans()
    assert [s.name for s in (run, wait, rerun)] == [
        "switchyard.job",
        "switchyard.parked",
        "switchyard.job",
    ]
    assert _parent(wait) == run.context.span_id
    assert _parent(rerun) == wait.context.span_id
    assert wait.start_time == parked_at_ms * 1_000_000
    assert {f"{s.context.trace_id:032x}" for s in (run, wait, rerun)} == {TRACE_ID}


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None
