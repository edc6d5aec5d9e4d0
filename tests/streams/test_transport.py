"""The provider worker's HTTP client: httpx's API over aiohttp's pool, on a real server."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio

from schemas.errors import ProviderTimeout, ProviderUnavailable
from simulator import SimulatorSettings
from streams.local.broker import free_port
from streams.providers.errors import map_transport_errors
from streams.providers.transport import pooled_client
from tests.simulator.serving import serving

BODY = {"model": "sim-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[str]:
    async with serving(SimulatorSettings(latency_scale=0)) as root:
        yield f"{root}/v1/chat/completions"


async def test_many_calls_share_a_bounded_pool_and_read_whole_answers(simulator: str) -> None:
    async with pooled_client(4) as client:
        responses = await asyncio.gather(
            *(client.post(simulator, content=orjson.dumps(BODY)) for _ in range(40))
        )
    assert [r.status_code for r in responses] == [200] * 40
    assert all(orjson.loads(r.content)["choices"][0]["message"]["content"] for r in responses)


async def test_an_error_status_comes_back_as_a_response(simulator: str) -> None:
    async with pooled_client(2) as client:
        response = await client.post(simulator, content=b"not json")
    assert response.status_code == 400


async def test_a_refused_connection_is_an_unavailable_endpoint_not_a_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"  # nothing listens
    async with pooled_client(2) as client:
        with pytest.raises(ProviderUnavailable) as caught, map_transport_errors("sim"):
            await client.post(url, content=orjson.dumps(BODY))
    assert not isinstance(caught.value, ProviderTimeout)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
