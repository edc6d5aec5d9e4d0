"""Turning a hop's ``processors.outputs.Output`` list into Kafka records."""

from collections.abc import Iterable

from processors.outputs import Output
from schemas.codec import dumps
from schemas.errors import InternalError
from sinks.kafka_out import Headers
from streams.topics import TopicCatalogue

Record = tuple[str, str | None, bytes, Headers | None]


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
    outputs: Iterable[Output], catalogue: TopicCatalogue, headers: Headers | None
) -> list[Record]:
    """``(topic, key, value, headers)`` per output, in order, serialised once with orjson."""
    return [
        (
            topic_for(o, catalogue),
            o.key,
            o.message if isinstance(o.message, bytes) else dumps(o.message),
            headers if o.headers else None,
        )
        for o in outputs
    ]
