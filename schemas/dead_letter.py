"""A message the pipeline could not process, kept with the reason for it.

What a letter keeps of the message follows the tenant's ``dead_letter_payload``
policy (``TenantSpec``): ``hash`` (the default) keeps only its size and SHA-256,
so a prompt never rests in the dead-letter topic; ``redacted`` keeps the text with
every secret and piece of personal data replaced by a typed placeholder
(``processors.redact``), readable but not replayable; ``full`` keeps the text (cut
to the size limit), which ``switchyard dlq replay`` needs. A message whose tenant is
unknown or unreadable is kept as ``hash``.
"""

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.config import TenantSpec
from schemas.errors import InternalError
from schemas.messages import Attempt, ErrorInfo

PayloadKept = Literal["hash", "redacted", "full"]


class DeadLetter(BaseModel):
    """A rejected input and why; ``payload`` is the original (``payload_kept`` ``full``,
    truncated if oversized) or empty (``hash``: only ``payload_bytes`` and
    ``payload_sha256`` describe it).

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
    # Letters written before the policy existed kept their payload whole.
    payload_kept: PayloadKept = "full"
    payload_sha256: str | None = Field(default=None, description="hex, of the whole payload")
    dead_lettered_at: datetime
    attempts: list[Attempt] = Field(default_factory=list)

    @classmethod
    def of_payload(
        cls,
        raw: bytes | None,
        limit: int | None,
        keep: PayloadKept = "hash",
        redact: Callable[[str], str] | None = None,
        **fields: Any,
    ) -> "DeadLetter":
        """A letter describing ``raw`` by ``keep``: ``full`` keeps it as text, cut to ``limit``
        bytes (None: whole) and marked if cut; ``redacted`` the same passed through
        ``redact``; ``hash`` keeps its size and SHA-256 only."""
        payload = raw or b""
        digest = hashlib.sha256(payload).hexdigest()
        if keep == "hash":
            return cls(
                payload="",
                payload_bytes=len(payload),
                payload_truncated=False,
                payload_kept="hash",
                payload_sha256=digest,
                **fields,
            )
        cut = limit is not None and len(payload) > limit
        text = (payload[:limit] if cut else payload).decode("utf-8", errors="replace")
        if keep == "redacted":
            if redact is None:
                raise InternalError("a redacted dead letter needs a redactor")
            text = redact(text)
        return cls(
            payload=text,
            payload_bytes=len(payload),
            payload_truncated=cut,
            payload_kept=keep,
            payload_sha256=digest,
            **fields,
        )

    @property
    def replayable(self) -> bool:
        """True when ``payload`` is the whole original message."""
        return self.payload_kept == "full" and not self.payload_truncated


def payload_policy(tenants: Mapping[str, TenantSpec], tenant: str | None) -> PayloadKept:
    """What a letter keeps for ``tenant``'s message: its policy, ``hash`` if it is unknown."""
    spec = tenants.get(tenant) if tenant is not None else None
    return spec.dead_letter_payload if spec is not None else "hash"
