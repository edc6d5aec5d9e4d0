"""Turning a hop's ``processors.outputs.Output`` list into Kafka records, sealed.

Every record for an internal topic gets the cluster key's ``sy-seal`` header
(``processors.seal``). Replies (to the job's reply_to or the shared replies topic)
and pre-step forwards leave Switchyard for producers and tenants' services, which
do not hold the cluster key: they are not sealed, and no Switchyard worker reads
them. A job's headers passed on to a record never carry an earlier seal along,
nor its tenant's signature, except on a ``rekey``: that is the job as the producer
wrote it, moved to its tenant's home partition, where a router verifies it again.

A routed or parked job also gets lane headers (tenant and priority), so a provider
worker can queue it by fair share without decoding it; lane headers a producer
wrote are dropped, never passed on.

Traces (``streams.observe.tracing``): a routed or parked job carries the context of
the span that wrote it in ``sy-traceparent`` (W3C format), so the next hop's spans
continue its trace; the producer's own ``traceparent`` passes on untouched and comes
back on the reply. A ``sy-traceparent`` a producer wrote is dropped like a lane header.
"""

from collections.abc import Iterable, Sequence

from processors.authenticate import SIGNATURE_HEADERS
from processors.budget import Position
from processors.origin import ORIGIN_HEADER, origin_header
from processors.outputs import Output, OutputKind
from processors.seal import AnyHeaders, seal_header, without_seal
from schemas.codec import dumps
from schemas.decision import DispatchJob
from schemas.errors import InternalError
from sinks.kafka_out import Headers
from streams.topics import TopicCatalogue

Record = tuple[str, str | None, bytes, Headers | None]

# Outputs that leave Switchyard: everything else is an internal record and is sealed.
UNSEALED: frozenset[OutputKind] = frozenset({"reply", "pre_step", "rekey"})

LANE_TENANT, LANE_PRIORITY = "sy-lane-tenant", "sy-lane-priority"
LANE_HEADERS = frozenset({LANE_TENANT, LANE_PRIORITY})
TRACE_HEADER = "sy-traceparent"
# Never passed on as written: each hop sets its own (a forward's origin included).
INTERNAL_HEADERS = LANE_HEADERS | {TRACE_HEADER, ORIGIN_HEADER}
# Outputs that carry a job to the next hop, so its trace context with it.
TRACED: frozenset[OutputKind] = frozenset({"dispatch", "retry"})


def topic_for(output: Output, catalogue: TopicCatalogue) -> str:
    """The topic an output goes to in this deployment."""
    if output.topic is not None:
        return output.topic
    if output.kind == "retry":
        return catalogue.retry[output.retry_tier].name
    by_kind = {
        "reply": catalogue.replies,
        "answer": catalogue.answers,
        "telemetry": catalogue.telemetry,
        "settlement": catalogue.settlements,
        "dispatch": catalogue.dispatch,
        "cache": catalogue.cache,
        "dead_letter": catalogue.dead_letter,
    }
    spec = by_kind.get(output.kind)
    if spec is None:
        raise InternalError(f"an output of kind {output.kind!r} needs an explicit topic")
    return spec.name


def records(
    outputs: Iterable[Output],
    catalogue: TopicCatalogue,
    headers: AnyHeaders,
    cluster_key: bytes,
    trace: Sequence[tuple[str, bytes]] = (),
) -> list[Record]:
    """``(topic, key, value, headers)`` per output, in order, serialised once with orjson;
    internal records sealed with ``cluster_key``; ``trace`` (the writing span's
    ``sy-traceparent``, if any) added to the records that carry the job on."""
    as_written = [(k, v) for k, v in without_seal(headers) if k not in INTERNAL_HEADERS]
    unsigned = [(k, v) for k, v in as_written if k not in SIGNATURE_HEADERS]
    return [
        _record(o, catalogue, as_written if o.kind == "rekey" else unsigned, cluster_key, trace)
        for o in outputs
    ]


def _record(
    o: Output,
    catalogue: TopicCatalogue,
    passed_on: Headers,
    cluster_key: bytes,
    trace: Sequence[tuple[str, bytes]],
) -> Record:
    topic = topic_for(o, catalogue)
    value = o.message if isinstance(o.message, bytes) else dumps(o.message)
    sent = list(passed_on) if o.headers else []
    if trace and o.kind in TRACED:
        sent += trace
    if isinstance(o.message, DispatchJob):
        decided = o.message.decision
        sent += [(LANE_TENANT, decided.tenant.encode()), (LANE_PRIORITY, decided.priority.encode())]
    if o.origin is not None:
        where = Position(topic, *o.origin)
        sent.append(origin_header(cluster_key, topic, (o.key or "").encode(), value, where))
    if o.kind not in UNSEALED:
        sent.append(seal_header(cluster_key, topic, o.key.encode() if o.key else None, value))
    return topic, o.key, value, sent or None
