"""What every provider client promises, and the HTTP round trip they share."""

import asyncio
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from schemas.config import ModelSpec
from schemas.errors import ProviderTimeout, ProviderUnavailable
from schemas.messages import ChatMessage, InferenceRequest, Usage
from streams.providers.errors import error_for_status, map_transport_errors


@dataclass(frozen=True)
class Completion:
    message: ChatMessage
    usage: Usage
    finish_reason: str | None
    logprobs: list[float] | None = None  # per output token, when the provider sent them


class ProviderClient(ABC):
    """One model behind one HTTP endpoint.

    Subclasses say where to post (``path``), what to send (``body``) and how to
    read the answer (``parse``); the round trip and its error mapping are here.
    """

    path: str

    def __init__(self, model: ModelSpec, http: httpx.AsyncClient) -> None:
        self.model = model
        self.http = http
        # Parsed once: httpx would parse a string URL again on every call.
        self.url = httpx.URL(str(model.base_url).rstrip("/") + self.path)
        self.endpoint = f"{model.provider}/{model.name}"
        # The key lives only in these headers: never logged, never in telemetry.
        key = api_key(model)
        self.headers = {"content-type": "application/json", **self.auth_headers(key)}
        self._secrets = (key,) if key else ()

    @abstractmethod
    def auth_headers(self, key: str | None) -> dict[str, str]: ...

    @abstractmethod
    def body(self, request: InferenceRequest, max_tokens: int) -> dict[str, Any]: ...

    @abstractmethod
    def parse(self, data: Any) -> Completion:
        """Read a 2xx answer; raise KeyError/TypeError/ValueError if it is malformed."""

    async def complete(
        self, request: InferenceRequest, max_tokens: int, total_s: float | None = None
    ) -> Completion:
        """Ask the model once; raise a ``SwitchyardError`` subclass on any failure.

        Three limits: connecting, the first byte of the answer (httpx's read
        timeout, as the body is not streamed), and the whole call, which is
        ``total_s`` when given (a job's remaining deadline) else the model's.
        """
        model = self.model
        total = min(total_s, model.timeout_s) if total_s is not None else model.timeout_s
        timeout = httpx.Timeout(
            total,
            connect=min(model.connect_timeout_s, total),
            read=min(model.first_byte_timeout_s or total, total),
        )
        with map_transport_errors(self.endpoint):
            try:
                async with asyncio.timeout(total):
                    response = await self.http.post(
                        self.url,
                        content=orjson.dumps(self.body(request, max_tokens)),
                        headers=self.headers,
                        timeout=timeout,
                    )
            except TimeoutError as exc:
                raise ProviderTimeout(f"{self.endpoint}: no answer within {total:.1f}s") from exc
        if response.status_code >= 300:
            raise error_for_status(self.endpoint, response, self._secrets)
        try:
            return self.parse(orjson.loads(response.content))
        except (
            orjson.JSONDecodeError,
            AttributeError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
        ) as exc:
            raise ProviderUnavailable(f"{self.endpoint}: malformed answer ({exc!r})") from exc


def api_key(model: ModelSpec) -> str | None:
    return os.environ.get(model.api_key_env) if model.api_key_env else None
