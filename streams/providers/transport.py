"""The HTTP client under the provider clients: httpx's API over aiohttp's connection pool.

httpx's own pool (httpcore) looks at every connection of the pool for every request.
At thousands of connections that scan was most of a provider worker's CPU: py-spy
showed 56% of it in ``AsyncConnectionPool._assign_requests_to_connections`` with
4,096 jobs in flight. Against the simulator at 256 calls in flight, the same httpx
client did 213-245 calls/s on its own pool and 2,552-2,637 calls/s on aiohttp's
connector (10-12x, two rounds of one script). The ``httpx-aiohttp`` transport keeps
the httpx API the provider clients are written against.
"""

from collections.abc import Callable

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class _Transport(AiohttpTransport):
    """httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``,
    a refused connection included; a refused connection is an endpoint that is down
    (``ProviderUnavailable``), not a slow one (``ProviderTimeout``)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            if isinstance(exc.__cause__, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(exc), request=request) from exc.__cause__
            raise


def _session_factory(max_connections: int) -> Callable[[], aiohttp.ClientSession]:
    def session() -> aiohttp.ClientSession:
        # Made on the first request, inside the worker's running loop.
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections)
        return aiohttp.ClientSession(connector=connector)

    return session


def pooled_client(max_connections: int) -> httpx.AsyncClient:
    """An httpx client on an aiohttp pool of at most ``max_connections`` connections."""
    return httpx.AsyncClient(transport=_Transport(client=_session_factory(max_connections)))
