"""OpenAI wire shapes: parsing chat requests and building response bodies.

Pure functions over plain data, so the server stays a thin HTTP layer and the
shapes can be checked without a socket.
"""

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.behaviour import Completion, Failure, Prompt, content_hash


@dataclass(frozen=True)
class WireError:
    """A request the simulator refuses before any model sees it (always a 4xx)."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None
    error_type: str = "invalid_request_error"


class _Message(BaseModel):
    # Unknown fields (name, tool_calls...) are accepted, as OpenAI does.
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatRequest(BaseModel):
    """The part of an OpenAI chat completion request the simulator reads."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool | None = False

    @property
    def output_limit(self) -> int | None:
        # Newer clients send max_completion_tokens; it wins like it does at OpenAI.
        return self.max_completion_tokens or self.max_tokens

    def prompt(self) -> Prompt:
        """Texts and digest; the digest covers messages and output limit only."""
        messages = [m.model_dump(mode="json", exclude_none=True) for m in self.messages]
        texts = tuple(m.text() for m in self.messages)
        users = [t for m, t in zip(self.messages, texts, strict=True) if m.role == "user"]
        digest = content_hash({"messages": messages, "max_tokens": self.output_limit})
        return Prompt(texts, users[-1] if users else "", digest, self.output_limit)


def parse_chat_request(raw: bytes) -> ChatRequest | WireError:
    """The validated request, or the 400 OpenAI would answer to it."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return WireError(400, "We could not parse the JSON body of your request.")
    if not isinstance(data, dict):
        return WireError(400, "The request body must be a JSON object.")
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        if first["type"] == "missing":
            return WireError(400, f"Missing required parameter: '{param}'.",
                             "missing_required_parameter", param)  # fmt: skip
        return WireError(400, f"Invalid value for '{param}': {first['msg']}.",
                         "invalid_value", param)  # fmt: skip


def error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def failure_body(failure: Failure | WireError) -> dict[str, Any]:
    return error_body(failure.message, failure.error_type, failure.code, failure.param)


def completion_body(
    completion: Completion, model: str, created: int, fingerprint: str
) -> dict[str, Any]:
    """Exactly OpenAI's ``chat.completion`` object."""
    usage = completion.usage
    return {
        "id": completion.request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text, "refusal": None},
                "finish_reason": completion.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        "system_fingerprint": fingerprint,
    }


def models_body(names: list[str], created: int) -> dict[str, Any]:
    """OpenAI's model list."""
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": created, "owned_by": "switchyard-simulator"}
            for n in names
        ],
    }
