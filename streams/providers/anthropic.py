"""Anthropic Messages API: system prompt apart, content as blocks, usage in/out."""

from typing import Any

from schemas.messages import ChatMessage, InferenceRequest, Usage
from streams.providers.base import Completion, ProviderClient

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicClient(ProviderClient):
    path = "/messages"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def body(self, request: InferenceRequest, max_tokens: int) -> dict[str, Any]:
        system = "\n\n".join(
            m.text() for m in request.messages if m.role in ("system", "developer")
        )
        body: dict[str, Any] = {
            "model": self.model.wire_model,
            "messages": [
                {"role": m.role, "content": m.content if m.content is not None else ""}
                for m in request.messages
                if m.role in ("user", "assistant")
            ],
            "max_tokens": max_tokens,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is [0, 1]
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop is not None:
            stop = request.stop
            body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        return body

    def parse(self, data: Any) -> Completion:
        text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
        usage = data.get("usage") or {}
        return Completion(
            message=ChatMessage(role="assistant", content=text),
            usage=Usage(
                input_tokens=int(usage.get("input_tokens", 0)),
                output_tokens=int(usage.get("output_tokens", 0)),
            ),
            finish_reason=data.get("stop_reason"),
        )
