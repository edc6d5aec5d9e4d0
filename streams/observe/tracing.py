"""OpenTelemetry traces: one trace per job, across the workers' processes.

Set up once per worker by ``configure_tracing``: with ``OTEL_EXPORTER_OTLP_ENDPOINT``
set, a ``TracerProvider`` (service ``<service_name>-<worker>``, sampling
``sample_ratio`` of new traces and following a parent's decision) exports in
batches over OTLP/HTTP; without it nothing is installed and workers hold no
``Tracing`` at all, so a job pays one ``is None`` test per hop. Tests hand a
provider of their own (the SDK's in-memory exporter) to the workers instead.

The tree of a job, every span in the producer's trace when its ``traceparent``
header has one, else in a trace of its own (here the job found every model of its
chain failing once, waited on a retry topic, then was answered)::

    switchyard.route              router: events classify, policy, strategy, budget
    └─ switchyard.job             provider: one run over the job's chain (round 0)
       ├─ chat sim-small          one span per call (GenAI conventions): error ...
       ├─ chat sim-medium         ... error
       ├─ switchyard.park         publishing its parked copy to a retry topic
       └─ switchyard.parked       the wait on that topic, from parked to resumed
          └─ switchyard.job       the next run (round 1)
             ├─ chat sim-small    ok: tokens and cost
             └─ switchyard.reply  publishing the reply

Workers are separate processes, so a span's context travels in the record that
carries the job on, as a W3C traceparent in the ``sy-traceparent`` header
(``streams.outputs``): the producer's own ``traceparent`` is left as written,
since it comes back on the reply. What spans say is ``processors.trace_view``'s:
no prompt, answer, key or secret.
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from processors.outputs import Output
from processors.provider_hop import CallResult
from processors.seal import AnyHeaders, header_pairs
from processors.trace_view import SpanView, attempt_view, finish_view, job_view, route_view
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.runtime_settings import TracingSettings
from streams.outputs import TRACE_HEADER

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACER_NAME = "switchyard"
TraceHeaders = Sequence[tuple[str, bytes]]

_W3C = TraceContextTextMapPropagator()
_SKIPPED = ("circuit_open", "throttled")  # attempts that made no call


def configure_tracing(
    settings: TracingSettings, worker: str, environ: Mapping[str, str] = os.environ
) -> trace.TracerProvider | None:
    """The worker's provider, exporting over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (the exporter reads that and the other ``OTEL_EXPORTER_OTLP_*`` variables itself);
    None, and nothing installed, when the variable is unset or empty."""
    if not environ.get(OTLP_ENDPOINT_ENV):
        return None
    # Imported here: a worker without tracing never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"{settings.service_name}-{worker}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracing_from(provider: trace.TracerProvider | None) -> "Tracing | None":
    """What a worker holds: spans on ``provider``, or None (no tracing) without one."""
    return Tracing(provider) if provider is not None else None


class Tracing:
    """One worker's spans, on ``provider`` (the SDK's, or a test's)."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.tracer = provider.get_tracer(TRACER_NAME)

    def route(
        self, headers: AnyHeaders, outputs: Sequence[Output], start_ns: int, topic: str
    ) -> TraceHeaders:
        """Record the router's span for one job, decided from ``start_ns`` until now, under
        the producer's ``traceparent`` if any; the header that carries it on to the next hop."""
        parent = _W3C.extract(_producer_context(headers))
        span = self.tracer.start_span(
            "switchyard.route", parent, SpanKind.CONSUMER, start_time=start_ns
        )
        span.set_attribute("messaging.source.name", topic)
        _apply(span, route_view(outputs))
        span.end()
        return trace_header(span)

    def job(self, job: DispatchJob, headers: AnyHeaders, parked_at_ms: int | None) -> "JobTrace":
        """Start the provider's span for one run of ``job``; ``parked_at_ms`` is when it was
        parked, for a job read back from a retry topic (its wait becomes a span too)."""
        parent = _W3C.extract(_hop_context(headers))
        if parked_at_ms is not None:
            wait = self.tracer.start_span(
                "switchyard.parked", parent, SpanKind.CONSUMER, start_time=parked_at_ms * 1_000_000
            )
            wait.set_attribute("switchyard.round", job.round)
            wait.end()
            parent = trace.set_span_in_context(wait)
        span = self.tracer.start_span("switchyard.job", parent, SpanKind.CONSUMER)
        _apply(span, job_view(job))
        calls = sum(1 for a in job.attempts if a.outcome not in _SKIPPED)
        return JobTrace(self.tracer, span, calls)


class JobTrace:
    """The spans of one run of a job on a provider worker; ``end`` closes its span."""

    def __init__(self, tracer: Tracer, span: Span, calls: int) -> None:
        self.tracer = tracer
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.calls = calls  # calls made for the job so far, earlier rounds included

    def attempt(
        self, result: CallResult, config: SwitchyardConfig, tenant: str, start_ns: int
    ) -> None:
        """Record one call, made from ``start_ns`` until now."""
        self.calls += 1
        attempt = result.attempt
        spec = config.model(attempt.model)
        api_model = (spec.api_model or spec.name) if spec is not None else attempt.model
        span = self.tracer.start_span(
            f"chat {api_model}", self.context, SpanKind.CLIENT, start_time=start_ns
        )
        usage = result.answer.usage if result.answer is not None else None
        _apply(span, attempt_view(attempt, self.calls, tenant, api_model, usage))
        span.end()

    @contextmanager
    def sending(self, outputs: Sequence[Output]) -> Iterator[None]:
        """A span around publishing the run's reply (``switchyard.reply``) or parked copy
        (``switchyard.park``); none when the run sends neither."""
        view = finish_view(outputs)
        outcome = str(view.attributes["switchyard.outcome"])
        self.span.set_attribute("switchyard.outcome", outcome)
        if outcome == "skipped":
            yield
            return
        name = "switchyard.park" if outcome == "parked" else "switchyard.reply"
        span = self.tracer.start_span(name, self.context, SpanKind.PRODUCER)
        _apply(span, view)
        with trace.use_span(span, end_on_exit=True):
            yield

    def header(self) -> TraceHeaders:
        """The header a parked copy of the job carries, so its next run continues here."""
        return trace_header(self.span)

    def end(self) -> None:
        self.span.end()


class NoTrace(JobTrace):
    """A job's trace where tracing is off: every call does nothing."""

    def __init__(self) -> None:
        pass

    def attempt(
        self, result: CallResult, config: SwitchyardConfig, tenant: str, start_ns: int
    ) -> None:
        pass

    @contextmanager
    def sending(self, outputs: Sequence[Output]) -> Iterator[None]:
        yield

    def header(self) -> TraceHeaders:
        return ()

    def end(self) -> None:
        pass


NO_TRACE = NoTrace()


def trace_header(span: Span) -> TraceHeaders:
    """``sy-traceparent`` naming ``span``, for the record that carries its job on."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, trace.set_span_in_context(span))
    parent = carrier.get("traceparent")
    return [(TRACE_HEADER, parent.encode())] if parent else []


def _producer_context(headers: AnyHeaders) -> dict[str, str]:
    """The producer's W3C headers (``traceparent``, ``tracestate``) as a carrier."""
    return {
        k: v.decode("latin-1")
        for k, v in header_pairs(headers)
        if k in ("traceparent", "tracestate") and v
    }


def _hop_context(headers: AnyHeaders) -> dict[str, str]:
    """The previous hop's span (``sy-traceparent``), else the producer's."""
    for k, v in header_pairs(headers):
        if k == TRACE_HEADER and v:
            return {"traceparent": v.decode("latin-1")}
    return _producer_context(headers)


def _apply(span: Span, view: SpanView) -> None:
    span.set_attributes(view.attributes)
    for name, attributes in view.events:
        span.add_event(name, attributes)
    if view.error is not None:
        span.set_status(Status(StatusCode.ERROR))


__all__ = [
    "NO_TRACE",
    "OTLP_ENDPOINT_ENV",
    "JobTrace",
    "Tracing",
    "configure_tracing",
    "trace_header",
    "tracing_from",
]
