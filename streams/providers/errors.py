"""The one place where HTTP failures become Switchyard errors."""

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import orjson

from processors.redact import BUILT_IN
from schemas.errors import (
    ContextTooLong,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SwitchyardError,
)


@contextlib.contextmanager
def map_transport_errors(endpoint: str) -> Iterator[None]:
    """Translate httpx exceptions raised inside the block; never include headers (keys)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"{endpoint}: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"{endpoint}: {type(exc).__name__}") from exc


# Markers of "your prompt does not fit": OpenAI's code and wording, Anthropic's wording.
_TOO_LONG = ("context length", "context_length", "prompt is too long", "too many tokens")


def error_for_status(
    endpoint: str, response: httpx.Response, secrets: Sequence[str] = ()
) -> SwitchyardError:
    """The error a non-2xx provider answer stands for (OpenAI and Anthropic shapes).

    The provider's own message is kept (it says what was wrong) with every
    ``secrets`` value masked (some providers echo the credential they refused) and
    anything else secret or personal replaced by a placeholder: providers quote the
    prompt back, and the message reaches replies, logs, telemetry and dead letters.
    """
    status = response.status_code
    detail = _error_detail(response)
    said = detail["message"]
    for secret in secrets:
        said = said.replace(secret, "***")
    said = BUILT_IN.redact(said)
    message = f"{endpoint} answered {status}: {said[:200]}"
    if status == 429:
        return RateLimited(message, retry_after_s=_retry_after(response))
    if status in (408, 504):
        return ProviderTimeout(message)
    if status >= 500 or status == 529:  # 529: Anthropic "overloaded"
        return ProviderUnavailable(message)
    code = detail.get("code") or ""
    if code == "context_length_exceeded" or any(m in said.lower() for m in _TOO_LONG):
        return ContextTooLong(message)
    return ProviderRejected(message)


def _error_detail(response: httpx.Response) -> dict[str, str]:
    try:
        body: Any = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {"message": response.text[:200] or response.reason_phrase}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return {"message": str(error.get("message", "")), "code": str(error.get("code") or "")}
    return {"message": str(body)[:200]}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
