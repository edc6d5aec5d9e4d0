"""The exact-match response cache: which requests share an answer, and for how long.

Two requests share a key when they come from the same tenant with the same
messages (whitespace normalised) and the same generation parameters and
routing hints. The key is a SHA-256 digest, so the cache topic holds no
prompt text; the cached *answer* is the tenant's own data, kept only for
tenants that opt in (``tenants.<name>.cache``), for at most their TTL.
"""

import hashlib
from datetime import datetime, timedelta

import orjson

from schemas.cache import CachedAnswer
from schemas.config import CacheSettings
from schemas.messages import ChatMessage, InferenceRequest, Usage

# Fields that change what an answer may be, besides the messages.
_PARAMS = (
    "max_tokens", "temperature", "top_p", "stop", "seed", "response_format",
    "task", "quality", "quality_target", "model", "data_classification",
)  # fmt: skip


def _normalised(message: ChatMessage) -> dict[str, object]:
    body = message.model_dump(exclude_none=True)
    if isinstance(message.content, str):
        body["content"] = " ".join(message.content.split())
    return body


def cache_key(request: InferenceRequest) -> str:
    material = {
        "tenant": request.tenant,
        "messages": [_normalised(m) for m in request.messages],
        "params": {name: getattr(request, name) for name in _PARAMS},
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def usable(entry: CachedAnswer | None, tenant: str, now: datetime) -> CachedAnswer | None:
    """The entry if it may answer now (same tenant, not expired)."""
    if entry is None or entry.tenant != tenant or entry.expires_at <= now:
        return None
    return entry


def within_ttl(entry: CachedAnswer, settings: CacheSettings, now: datetime) -> bool:
    """Whether an entry keeps to the tenant's own TTL: stored in the past, expiring no
    later than ``ttl_s`` after it was stored. An entry claiming more (a forged expiry in
    2099, say) never serves."""
    return entry.stored_at <= now and (entry.expires_at - entry.stored_at) <= timedelta(
        seconds=settings.ttl_s
    )


def entry_for(
    request: InferenceRequest,
    settings: CacheSettings,
    message: ChatMessage,
    usage: Usage | None,
    model: str,
    provider: str,
    now: datetime,
) -> CachedAnswer:
    return CachedAnswer(
        key=cache_key(request),
        tenant=request.tenant,
        message=message,
        usage=usage,
        model=model,
        provider=provider,
        source_request_id=request.request_id,
        stored_at=now,
        expires_at=now + timedelta(seconds=settings.ttl_s),
    )
