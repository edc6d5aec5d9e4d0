"""The answer ledger: the reply each (tenant, request_id) got, for idempotent re-delivery."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from schemas.decision import SourcePosition
from schemas.messages import InferenceReply

# Not a character of ``ID_PATTERN``: "a|b:c" and "a:b|c" stay different keys.
_KEY_SEPARATOR = "|"


def ledger_key(tenant: str, request_id: str) -> str:
    """The answers topic's record key: request_ids are chosen by producers, so two tenants
    may pick the same one, and compaction must never let one tenant's entry replace
    another's."""
    return f"{tenant}{_KEY_SEPARATOR}{request_id}"


class AnsweredRequest(BaseModel):
    """A (tenant, request_id)'s final reply and the submissions (request positions) it
    answered.

    Written beside the reply, in the same produce request, so a worker that
    replays a job after a crash can tell that it was already answered.
    ``tenant`` is the reply's own for entries written before it was a field.
    """

    tenant: str
    request_id: str
    sources: list[SourcePosition] = Field(default_factory=list)
    reply: InferenceReply
    answered_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _tenant_of_reply(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tenant" not in data:
            reply = data.get("reply")
            tenant = reply.get("tenant") if isinstance(reply, dict) else None
            if isinstance(reply, InferenceReply):
                tenant = reply.tenant
            if isinstance(tenant, str):
                return {**data, "tenant": tenant}
        return data

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.request_id)
