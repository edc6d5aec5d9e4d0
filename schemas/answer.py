"""The answer ledger: the reply each request_id got, for idempotent re-delivery."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.decision import SourcePosition
from schemas.messages import InferenceReply


class AnsweredRequest(BaseModel):
    """A request_id's final reply and the submissions (request positions) it answered.

    Written beside the reply, in the same produce request, so a worker that
    replays a job after a crash can tell that it was already answered.
    """

    request_id: str
    sources: list[SourcePosition] = Field(default_factory=list)
    reply: InferenceReply
    answered_at: datetime
