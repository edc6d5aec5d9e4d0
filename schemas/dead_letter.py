"""A message the pipeline could not process, kept with the reason for it."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.messages import Attempt, ErrorInfo


class DeadLetter(BaseModel):
    """A rejected input and why; ``payload`` is the original, truncated if oversized.

    ``stage`` is ``validate`` (the router could not read it) or ``dispatch``
    (every provider attempt failed); ``attempts`` lists the calls made.
    ``switchyard dlq replay`` publishes ``payload`` back to the requests topic.
    """

    error: ErrorInfo
    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    request_id: str | None = None
    tenant: str | None = None
    reply_to: str | None = None
    payload: str
    payload_bytes: int
    payload_truncated: bool
    dead_lettered_at: datetime
    attempts: list[Attempt] = Field(default_factory=list)

    @classmethod
    def of_payload(cls, raw: bytes | None, limit: int | None, **fields: Any) -> "DeadLetter":
        """A letter keeping ``raw`` as text, cut to ``limit`` bytes (None: whole), marked if cut."""
        payload = raw or b""
        cut = limit is not None and len(payload) > limit
        return cls(
            payload=(payload[:limit] if cut else payload).decode("utf-8", errors="replace"),
            payload_bytes=len(payload),
            payload_truncated=cut,
            **fields,
        )
