"""The edge: raw bytes from the requests topic become a validated request, once.

Refused here, each with its own code: a null value or a value that is not JSON
(``invalid_request``), more than ``limits.max_message_bytes`` (``message_too_large``),
JSON nested deeper than ``MAX_JSON_DEPTH`` (``nesting_too_deep``: orjson reads up to
1,024 levels but cannot write more than 255, so a deeper job would pass validation
and fail at the first re-serialisation), a wrong schema (``invalid_request``) and a
tenant not configured (``unknown_tenant``).
"""

import re
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.config import SwitchyardConfig
from schemas.errors import InvalidRequest, MessageTooLarge, NestingTooDeep, UnknownTenant
from schemas.messages import ID_PATTERN, TOPIC_PATTERN, InferenceRequest

_ID = re.compile(ID_PATTERN)
_TOPIC = re.compile(TOPIC_PATTERN)

# Deepest JSON nesting a job may have; a real request needs about 6 levels.
MAX_JSON_DEPTH = 64


def parse_request(raw: bytes | None, config: SwitchyardConfig) -> InferenceRequest:
    """Decode and validate one job; raises an ``InvalidRequest`` subclass saying why."""
    if raw is None:
        raise InvalidRequest("empty message (null value)")
    limit = config.limits.max_message_bytes
    if len(raw) > limit:
        raise MessageTooLarge(f"message is {len(raw)} bytes, the limit is {limit}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"not valid JSON: {exc}") from exc
    depth = json_depth(data, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise NestingTooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        request = InferenceRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from exc
    if request.tenant not in config.tenants:
        raise UnknownTenant(f"tenant {request.tenant!r} is not configured")
    return request


def json_depth(data: Any, stop_after: int) -> int:
    """How deep containers nest in decoded JSON (a scalar: 0), counting no further than
    ``stop_after + 1``; iterative, so any depth is safe to measure."""
    if not isinstance(data, dict | list):
        return 0
    deepest = 0
    pending: list[tuple[dict[str, Any] | list[Any], int]] = [(data, 1)]
    while pending and deepest <= stop_after:
        value, level = pending.pop()
        deepest = max(deepest, level)
        children = value.values() if isinstance(value, dict) else value
        pending.extend((c, level + 1) for c in children if isinstance(c, dict | list))
    return deepest


def describe_validation_error(exc: ValidationError, most: int = 5) -> str:
    """A short, path-first summary of a pydantic error that never echoes input values."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)[:most]
    ]
    extra = exc.error_count() - most
    return "; ".join(parts) + (f"; and {extra} more" if extra > 0 else "")


def salvage_address(raw: bytes | None, max_bytes: int) -> tuple[str | None, str | None, str | None]:
    """Best effort (request_id, tenant, reply_to) from an invalid message, for an error reply.

    Messages far beyond the limit are not parsed at all: salvaging must stay cheap.
    """
    if raw is None or len(raw) > 16 * max_bytes:
        return None, None, None
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None

    def pick(key: str, pattern: re.Pattern[str]) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and pattern.match(value) else None

    return pick("request_id", _ID), pick("tenant", _ID), pick("reply_to", _TOPIC)
