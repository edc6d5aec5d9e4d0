"""The response cache's records, on a compacted topic keyed by cache key."""

from datetime import datetime

from pydantic import BaseModel

from schemas.messages import ChatMessage, Usage


class CachedAnswer(BaseModel):
    """An answer that may serve later requests with the same key until ``expires_at``.

    The key is a digest of tenant, normalised messages and generation
    parameters (``processors.cache.cache_key``): never the prompt itself.
    """

    key: str
    tenant: str
    message: ChatMessage
    usage: Usage | None = None
    model: str
    provider: str
    source_request_id: str
    stored_at: datetime
    expires_at: datetime
