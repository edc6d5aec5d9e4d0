"""Publishing outcome feedback: ``switchyard feedback``.

A consumer judges a reply (thumbs, task success, or a score) and the judgement
goes to the feedback topic, keyed by request_id, signed with the tenant's key like
a job; the telemetry worker checks the signature and writes it to ClickHouse,
where ``decision_feedback`` joins it to the routing decision.
"""

from datetime import datetime

from pydantic import ValidationError

from processors.authenticate import SigningKey, sign
from schemas.codec import dumps
from schemas.feedback import Feedback, FeedbackKind
from sinks.kafka_out import KafkaPublisher, producer_for
from streams.kafka.reading import require_topic
from streams.topics import TopicCatalogue

# The command's verdict flags and what each records.
VERDICTS: dict[str, tuple[FeedbackKind, float]] = {
    "up": ("thumbs", 1.0),
    "down": ("thumbs", 0.0),
    "success": ("success", 1.0),
    "failure": ("success", 0.0),
}
_OPTION = {
    "request_id": "REQUEST_ID",
    "tenant": "--tenant",
    "value": "--score",
    "source": "--source",
}


def build_feedback(
    request_id: str,
    tenant: str,
    verdict: str | None,
    score: float | None,
    source: str,
    now: datetime,
) -> Feedback:
    """A Feedback from the command's flags; raises ValidationError for bad values."""
    kind, value = ("score", score) if score is not None else VERDICTS[verdict or ""]
    return Feedback(
        request_id=request_id, tenant=tenant, kind=kind, value=value, source=source, at=now
    )


def describe_invalid(exc: ValidationError) -> list[str]:
    """One line per problem, named by the command-line option that caused it."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        lines.append(f"{_OPTION.get(field, field or 'feedback')}: {error['msg']}")
    return lines


async def publish_feedback(
    bootstrap: str,
    catalogue: TopicCatalogue,
    feedback: Feedback,
    key: SigningKey | None,
    now: datetime,
) -> None:
    """Send ``feedback``, signed with ``key`` when given (``processors.feedback_check``),
    to the feedback topic and wait for the broker's acknowledgement.

    Raises TopicMissing if the topic does not exist (checked without creating it:
    the embedded broker would auto-create it with the wrong settings).
    """
    topic = catalogue.feedback.name
    await require_topic(bootstrap, topic)
    producer = producer_for(bootstrap, 1_048_576)
    await producer.start()
    try:
        value = dumps(feedback)
        headers = sign(value, key, now) if key is not None else None
        await KafkaPublisher(producer).deliver((topic, feedback.request_id, value, headers))
    finally:
        await producer.stop()
