"""The official openai SDK must accept the simulator as if it were OpenAI."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai
import pytest

from simulator import SimulatorSettings
from tests.simulator.serving import FakeClock, fast_settings, serving

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def sdk(settings: SimulatorSettings, clock: FakeClock) -> AsyncIterator[openai.AsyncOpenAI]:
    async with serving(settings, clock) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0)
        async with client:
            yield client


async def test_sdk_parses_completion_and_usage() -> None:
    async with sdk(fast_settings(), FakeClock()) as client:
        result = await client.chat.completions.create(
            model="sim-medium",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "explain consumer groups"},
            ],
            max_tokens=5,
        )
        models = await client.models.list()
    assert result.object == "chat.completion" and result.model == "sim-medium"
    choice = result.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith("[sim")
    assert result.usage is not None
    assert result.usage.prompt_tokens == len("be brief" + "explain consumer groups") // 4 + 2
    assert 1 <= result.usage.completion_tokens <= 5
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert [m.id for m in models.data] == ["sim-small", "sim-medium", "sim-large", "sim-local"]


async def test_sdk_raises_rate_limit_error_on_429() -> None:
    async with sdk(fast_settings(rate_limit_rps=1), FakeClock()) as client:
        await client.chat.completions.create(
            model="sim-small", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="sim-small", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "1"


async def test_sdk_raises_not_found_for_unknown_model_and_bad_request_for_long_prompt() -> None:
    async with sdk(fast_settings(context_window=10), FakeClock()) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(
                model="gpt-9", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.BadRequestError) as too_long:
            await client.chat.completions.create(
                model="sim-small", messages=[{"role": "user", "content": "x" * 100}]
            )
    assert missing.value.code == "model_not_found"
    assert too_long.value.code == "context_length_exceeded"


async def test_sdk_sees_server_errors_and_outages() -> None:
    clock = FakeClock()
    settings = fast_settings(error_rate=1.0, outages=[{"start_s": 60, "end_s": 120}])
    async with sdk(settings, clock) as client:
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(
                model="sim-small", messages=[{"role": "user", "content": "hi"}]
            )
        clock.advance(60)
        with pytest.raises(openai.InternalServerError) as outage:
            await client.chat.completions.create(
                model="sim-small", messages=[{"role": "user", "content": "hi"}]
            )
    assert failed.value.status_code == 500
    assert outage.value.status_code == 503
