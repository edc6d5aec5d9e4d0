"""OpenAI chat completions: also reaches vLLM, Ollama, llama.cpp, Together, Groq, OpenRouter."""

from typing import Any

from schemas.messages import ChatMessage, InferenceRequest, Usage
from streams.providers.base import Completion, ProviderClient

_PASSTHROUGH = ("temperature", "top_p", "stop", "seed", "response_format")


class OpenAICompatibleClient(ProviderClient):
    path = "/chat/completions"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"} if key else {}

    def body(self, request: InferenceRequest, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model.wire_model,
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            "max_tokens": max_tokens,
        }
        for field in _PASSTHROUGH:
            value = getattr(request, field)
            if value is not None:
                body[field] = value
        return body

    def parse(self, data: Any) -> Completion:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(
            message=ChatMessage.model_validate(choice["message"]),
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", 0)),
            ),
            finish_reason=choice.get("finish_reason"),
            logprobs=_token_logprobs(choice.get("logprobs")),
        )


def _token_logprobs(block: Any) -> list[float] | None:
    """``choices[0].logprobs.content[*].logprob`` when the request asked for them."""
    content = block.get("content") if isinstance(block, dict) else None
    if not isinstance(content, list):
        return None
    found = [float(t["logprob"]) for t in content if isinstance(t, dict) and "logprob" in t]
    return found or None
