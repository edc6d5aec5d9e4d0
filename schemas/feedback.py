"""Outcome feedback a consumer reports for a request it got a reply to."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.messages import ID_PATTERN, UtcDatetime

FeedbackKind = Literal["thumbs", "success", "score"]


class Feedback(BaseModel):
    """One judgement of one reply: ``value`` is 1/0 for thumbs and success, [0, 1] for score.

    No free text: feedback joins routing telemetry, which never holds prompt
    or answer text.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=ID_PATTERN)
    tenant: str = Field(pattern=ID_PATTERN)
    kind: FeedbackKind
    value: float = Field(ge=0, le=1)
    source: str = Field(default="", max_length=64, description="who judged: app, user, evaluator")
    at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _binary_kinds(self) -> "Feedback":
        if self.kind in ("thumbs", "success") and self.value not in (0.0, 1.0):
            raise ValueError(f"{self.kind} feedback is 1 (up/success) or 0 (down/failure)")
        return self

    def received(self, now: datetime) -> "Feedback":
        """Stamped when it arrives: ``at`` is kept if given, but never later than ``now``,
        so feedback dated in the future cannot outrank what is judged after it."""
        if self.at is not None and self.at <= now:
            return self
        return self.model_copy(update={"at": now})
