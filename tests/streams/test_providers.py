"""The real provider clients against a faked HTTP transport (the one thing we may fake)."""

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from schemas.config import ModelSpec
from schemas.errors import (
    ContextTooLong,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SwitchyardError,
)
from schemas.messages import ChatMessage
from streams.providers import Completion, client_for
from streams.providers.anthropic import ANTHROPIC_VERSION, AnthropicClient
from streams.providers.openai_compat import OpenAICompatibleClient
from tests.helpers import make_request

KEY_ENV = "SWITCHYARD_TEST_PROVIDER_KEY"
FAKE_KEY = "test-key-123"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records every request and answers with ``respond``."""

    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def only(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]

    def body(self) -> Any:
        return orjson.loads(self.only.content)


def spec(api: str = "openai", **overrides: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "name": "m1",
        "provider": "acmeai",
        "api": api,
        "base_url": "https://llm.example.test/v1/",
        "api_key_env": KEY_ENV,
        "price_in_per_mtok": 1.0,
        "price_out_per_mtok": 2.0,
        "context_window": 8192,
        "region": "us",
        "timeout_s": 12.5,
    }
    values.update(overrides)
    return ModelSpec(**values)


def json_response(status: int, data: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(data), headers=headers)


def openai_ok(content: str = "hi back") -> httpx.Response:
    return json_response(
        200,
        {
            "id": "chatcmpl-1",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        },
    )


def anthropic_ok() -> httpx.Response:
    return json_response(
        200,
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Hello"},
                {"type": "tool_use", "id": "t1", "name": "x", "input": {}},
                {"type": "text", "text": ", world"},
            ],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 21, "output_tokens": 5},
        },
    )


async def call(
    model: ModelSpec, respond: Handler, limit: int = 64, **request_fields: Any
) -> tuple[Completion, Recorder]:
    recorder = Recorder(respond)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        completion = await client_for(model, http).complete(make_request(**request_fields), limit)
    return completion, recorder


async def call_error(model: ModelSpec, respond: Handler) -> SwitchyardError:
    with pytest.raises(SwitchyardError) as caught:
        await call(model, respond)
    return caught.value


# --- OpenAI-compatible -------------------------------------------------------


@pytest.mark.asyncio
async def test_client_for_picks_the_client_by_api() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(Recorder(openai_ok))) as http:
        assert type(client_for(spec("openai"), http)) is OpenAICompatibleClient
        assert type(client_for(spec("anthropic"), http)) is AnthropicClient


@pytest.mark.asyncio
async def test_openai_posts_wire_model_messages_and_bearer_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    completion, recorder = await call(
        spec(api_model="gpt-wire-name"), lambda _: openai_ok(), limit=99
    )
    request = recorder.only
    assert request.method == "POST"
    assert str(request.url) == "https://llm.example.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.extensions["timeout"]["read"] == 12.5
    assert recorder.body() == {
        "model": "gpt-wire-name",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 99,
    }
    assert completion.message == ChatMessage(role="assistant", content="hi back")
    assert completion.usage.input_tokens == 11
    assert completion.usage.output_tokens == 7
    assert completion.finish_reason == "length"


@pytest.mark.asyncio
async def test_openai_sends_name_when_no_api_model_and_passthrough_params_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    _, recorder = await call(
        spec(),
        lambda _: openai_ok(),
        messages=[
            ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content="hi"),
        ],
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
        seed=42,
        response_format={"type": "json_object"},
        max_tokens=5000,  # the worker passes the cap to send; the request's own is not sent
    )
    assert "authorization" not in recorder.only.headers
    assert recorder.body() == {
        "model": "m1",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 42,
        "response_format": {"type": "json_object"},
    }


@pytest.mark.asyncio
async def test_openai_without_key_env_sends_no_authorization(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    _, recorder = await call(spec(api_key_env=None), lambda _: openai_ok())
    assert "authorization" not in recorder.only.headers
    assert FAKE_KEY not in str(recorder.only.headers)


@pytest.mark.asyncio
async def test_openai_temperature_zero_is_sent_not_dropped() -> None:
    _, recorder = await call(spec(), lambda _: openai_ok(), temperature=0.0)
    body = recorder.body()
    assert body["temperature"] == 0.0
    assert "stop" not in body and "top_p" not in body and "seed" not in body


@pytest.mark.asyncio
async def test_openai_missing_usage_counts_zero() -> None:
    def respond(_: httpx.Request) -> httpx.Response:
        return json_response(200, {"choices": [{"message": {"role": "assistant", "content": "x"}}]})

    completion, _ = await call(spec(), respond)
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (0, 0)
    assert completion.finish_reason is None
    assert completion.message.content == "x"


# --- Anthropic ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_anthropic_posts_messages_with_key_version_and_system_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    completion, recorder = await call(
        spec("anthropic", api_model="claude-wire"),
        lambda _: anthropic_ok(),
        limit=77,
        messages=[
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="hi"),
            ChatMessage(role="developer", content="Answer in English."),
            ChatMessage(role="assistant", content="hello"),
            ChatMessage(role="tool", content="tool output"),
            ChatMessage(role="user", content="again"),
        ],
        temperature=1.7,
        top_p=0.5,
        stop="STOP",
        seed=3,
    )
    request = recorder.only
    assert str(request.url) == "https://llm.example.test/v1/messages"
    assert request.headers["x-api-key"] == FAKE_KEY
    assert request.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert "authorization" not in request.headers
    assert recorder.body() == {
        "model": "claude-wire",
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
        "max_tokens": 77,
        "temperature": 1.0,
        "top_p": 0.5,
        "stop_sequences": ["STOP"],
    }
    assert completion.message == ChatMessage(role="assistant", content="Hello, world")
    assert completion.usage.input_tokens == 21
    assert completion.usage.output_tokens == 5
    assert completion.finish_reason == "end_turn"


@pytest.mark.asyncio
async def test_anthropic_minimal_body_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    _, recorder = await call(
        spec("anthropic"), lambda _: anthropic_ok(), temperature=0.4, stop=["a", "b"]
    )
    assert "x-api-key" not in recorder.only.headers
    assert recorder.only.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert recorder.body() == {
        "model": "m1",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 64,
        "temperature": 0.4,
        "stop_sequences": ["a", "b"],
    }


# --- error mapping -----------------------------------------------------------


def _respond_with(response: httpx.Response) -> Handler:
    return lambda _: response


def _raise(exc_type: type[Exception]) -> Handler:
    def respond(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)  # type: ignore[call-arg]

    return respond


ERROR_CASES: list[Any] = [
    pytest.param(
        lambda: json_response(
            429, {"error": {"message": "slow down", "code": "rate_limit"}}, **{"Retry-After": "7"}
        ),
        RateLimited,
        "rate_limited",
        True,
        id="429-retry-after",
    ),
    pytest.param(
        lambda: httpx.Response(500, text="Internal Server Error"),
        ProviderUnavailable,
        "provider_unavailable",
        True,
        id="500",
    ),
    pytest.param(
        lambda: json_response(503, {"error": {"message": "maintenance"}}),
        ProviderUnavailable,
        "provider_unavailable",
        True,
        id="503",
    ),
    pytest.param(
        lambda: json_response(
            529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        ),
        ProviderUnavailable,
        "provider_unavailable",
        True,
        id="529-overloaded",
    ),
    pytest.param(
        lambda: httpx.Response(504, text="Gateway Timeout"),
        ProviderTimeout,
        "provider_timeout",
        True,
        id="504",
    ),
    pytest.param(
        lambda: httpx.Response(408),
        ProviderTimeout,
        "provider_timeout",
        True,
        id="408",
    ),
    pytest.param(
        lambda: json_response(
            400,
            {
                "error": {
                    "message": "This model's maximum is 8192 tokens.",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
        ),
        ContextTooLong,
        "context_length_exceeded",
        False,
        id="400-context-length-code",
    ),
    pytest.param(
        lambda: json_response(400, {"error": {"message": "Exceeds the context length of 4096"}}),
        ContextTooLong,
        "context_length_exceeded",
        False,
        id="400-context-length-message",
    ),
    pytest.param(
        lambda: json_response(
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 210000 tokens > 200000 maximum",
                },
            },
        ),
        ContextTooLong,
        "context_length_exceeded",
        False,
        id="400-anthropic-prompt-too-long",
    ),
    pytest.param(
        lambda: json_response(
            401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
        ),
        ProviderRejected,
        "provider_rejected",
        False,
        id="401",
    ),
    pytest.param(
        lambda: json_response(422, ["not", "an", "object"]),
        ProviderRejected,
        "provider_rejected",
        False,
        id="422-odd-body",
    ),
    pytest.param(
        lambda: json_response(200, {}),
        ProviderUnavailable,
        "provider_unavailable",
        True,
        id="200-empty-object",
    ),
    pytest.param(
        lambda: httpx.Response(200, text="<html>proxy error</html>"),
        ProviderUnavailable,
        "provider_unavailable",
        True,
        id="200-not-json",
    ),
    pytest.param(
        lambda: json_response(200, {"choices": []}),
        ProviderUnavailable,
        "provider_unavailable",
        True,
        id="200-no-choices",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("make_response", "error_type", "code", "retryable"), ERROR_CASES)
async def test_openai_http_answers_map_to_switchyard_errors(
    make_response: Callable[[], httpx.Response],
    error_type: type[SwitchyardError],
    code: str,
    retryable: bool,
) -> None:
    error = await call_error(spec(), _respond_with(make_response()))
    assert type(error) is error_type
    assert error.code == code
    assert error.retryable is retryable
    assert error.info().retryable is retryable
    assert error.message.startswith("acmeai/m1")


@pytest.mark.asyncio
async def test_rate_limited_carries_retry_after() -> None:
    error = await call_error(
        spec(), _respond_with(httpx.Response(429, headers={"Retry-After": "7"}))
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == 7.0
    assert error.retryable is True
    assert "answered 429" in error.message


@pytest.mark.asyncio
@pytest.mark.parametrize("header", [None, "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_rate_limited_without_numeric_retry_after(header: str | None) -> None:
    headers = {"Retry-After": header} if header else {}
    error = await call_error(spec(), _respond_with(httpx.Response(429, headers=headers)))
    assert isinstance(error, RateLimited)
    assert error.retry_after_s is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("exc_type", "error_type", "name"),
    [
        (httpx.ConnectError, ProviderUnavailable, "ConnectError"),
        (httpx.RemoteProtocolError, ProviderUnavailable, "RemoteProtocolError"),
        (httpx.ReadTimeout, ProviderTimeout, "ReadTimeout"),
        (httpx.ConnectTimeout, ProviderTimeout, "ConnectTimeout"),
    ],
)
async def test_transport_failures_map_to_retryable_errors(
    exc_type: type[Exception], error_type: type[SwitchyardError], name: str
) -> None:
    for api in ("openai", "anthropic"):
        error = await call_error(spec(api), _raise(exc_type))
        assert type(error) is error_type
        assert error.retryable is True
        assert error.message == f"acmeai/m1: {name}"
        assert isinstance(error.__cause__, exc_type)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (429, RateLimited),
        (500, ProviderUnavailable),
        (529, ProviderUnavailable),
        (504, ProviderTimeout),
        (401, ProviderRejected),
    ],
)
async def test_anthropic_statuses_map_like_openai(
    status: int, error_type: type[SwitchyardError]
) -> None:
    body = {"type": "error", "error": {"type": "some_error", "message": "nope"}}
    error = await call_error(spec("anthropic"), _respond_with(json_response(status, body)))
    assert type(error) is error_type
    assert error.message == f"acmeai/m1 answered {status}: nope"


@pytest.mark.asyncio
async def test_anthropic_malformed_answer_is_provider_unavailable() -> None:
    error = await call_error(spec("anthropic"), _respond_with(json_response(200, {})))
    assert type(error) is ProviderUnavailable
    assert "malformed answer" in error.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("api", "data"),
    [
        ("anthropic", {"content": ["just a string"]}),
        ("openai", {"choices": [{"message": {"role": "assistant"}}], "usage": [1, 2]}),
    ],
)
async def test_wrongly_shaped_answer_is_provider_unavailable(api: str, data: Any) -> None:
    error = await call_error(spec(api), _respond_with(json_response(200, data)))
    assert type(error) is ProviderUnavailable


# --- secrets -----------------------------------------------------------------


def _assert_no_key(error: BaseException) -> None:
    assert isinstance(error, SwitchyardError)
    for text in (str(error), repr(error), error.message, error.info().model_dump_json()):
        assert FAKE_KEY not in text


@pytest.mark.asyncio
@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "respond",
    [
        pytest.param(_respond_with(httpx.Response(500, text="oops")), id="500"),
        pytest.param(_respond_with(json_response(429, {"error": {"message": "x"}})), id="429"),
        pytest.param(_respond_with(json_response(200, {})), id="malformed"),
        pytest.param(_raise(httpx.ConnectError), id="connect-error"),
        pytest.param(_raise(httpx.ReadTimeout), id="read-timeout"),
    ],
)
async def test_errors_never_carry_the_api_key(
    monkeypatch: pytest.MonkeyPatch, api: str, respond: Handler
) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    recorder = Recorder(respond)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        client = client_for(spec(api), http)
        with pytest.raises(SwitchyardError) as caught:
            await client.complete(make_request(), 16)
    sent = recorder.only.headers
    assert FAKE_KEY in (sent.get("authorization", "") + sent.get("x-api-key", ""))
    _assert_no_key(caught.value)
    assert FAKE_KEY not in repr(client)


def _echo_key_json(request: httpx.Request) -> httpx.Response:
    """A provider that quotes the credential it was given back in its error message."""
    presented = request.headers.get("authorization") or request.headers.get("x-api-key")
    return json_response(
        401,
        {"error": {"message": f"Invalid credentials: {presented}", "code": "invalid_api_key"}},
    )


def _echo_key_text(request: httpx.Request) -> httpx.Response:
    presented = request.headers.get("authorization") or request.headers.get("x-api-key")
    return httpx.Response(401, text=f"401 Unauthorized (got '{presented}')")


@pytest.mark.asyncio
@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("respond", [_echo_key_json, _echo_key_text], ids=["json", "text"])
async def test_rejection_echoing_the_key_does_not_leak_it(
    monkeypatch: pytest.MonkeyPatch, api: str, respond: Handler
) -> None:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    error = await call_error(spec(api), respond)
    assert type(error) is ProviderRejected
    _assert_no_key(error)


@pytest.mark.asyncio
@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_rejection_quoting_the_prompt_back_has_its_personal_data_replaced(
    api: str,
) -> None:
    def quote_prompt(request: httpx.Request) -> httpx.Response:
        said = "Invalid content: 'card 4111 1111 1111 1111, reach me at jo@example.com'"
        return json_response(400, {"error": {"message": said, "code": "invalid_value"}})

    error = await call_error(spec(api), quote_prompt)
    assert type(error) is ProviderRejected
    assert "card [CARD], reach me at [EMAIL]" in error.message
    assert "4111" not in error.info().model_dump_json()
