"""The HTTP face of the simulator: an OpenAI-compatible aiohttp app.

Endpoints:
    POST   /v1/chat/completions   chat.completion bodies, or OpenAI-style errors
    GET    /v1/models             the fake models, OpenAI list shape
    GET    /health                {"status": "ok"}
    POST   /admin/models/{name}   runtime faults: down, error_rate, latency_ms, rate_limit_rps...
    GET    /admin/stats           per-model counters (requests, ok, errors, rate_limited, ...)
                                  and the calls in flight now
    POST   /admin/watch           {"markers": [...]}: count requests containing each, per model
    DELETE /admin/stats           zero the counters

The ``/admin/...`` endpoints want ``Authorization: Bearer <token>`` (401
otherwise): the token given to ``build_app``, or for ``run_simulator`` the one
in ``SWITCHYARD_ADMIN_TOKEN`` (``schemas.access``); without one they refuse
every caller. The ``/v1/...`` endpoints stay open, as a provider's would be.
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from schemas.access import ADMIN_TOKEN_ENV, AUTHORIZATION, token_matches
from schemas.errors import UsageError
from schemas.simulator import SimulatorSettings
from simulator.behaviour import Failure
from simulator.state import SimulatorState
from simulator.wire import (
    WireError,
    completion_body,
    error_body,
    failure_body,
    models_body,
    parse_chat_request,
)

STATE = web.AppKey("simulator_state", SimulatorState)
ADMIN_TOKEN = web.AppKey("admin_token", str)
# Prompts larger than the biggest context window must still reach the
# context-length check (a 400 like OpenAI's) instead of aiohttp's 413.
_MAX_BODY_BYTES = 8 * 1024 * 1024


def build_app(
    settings: SimulatorSettings,
    clock: Callable[[], float] = time.monotonic,
    admin_token: str | None = None,
) -> web.Application:
    """A ready-to-serve app; ``clock`` (seconds) drives outages and rate limits; the admin
    endpoints want ``admin_token`` (None: they refuse everyone).

    Outage windows count from the clock's value when this is called.
    """
    app = web.Application(client_max_size=_MAX_BODY_BYTES, middlewares=[_admin_only_with_token])
    app[STATE] = SimulatorState(settings, clock)
    app[ADMIN_TOKEN] = admin_token or ""
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_post("/admin/models/{name}", _admin_update)
    app.router.add_get("/admin/stats", _stats)
    app.router.add_post("/admin/watch", _watch)
    app.router.add_delete("/admin/stats", _reset_stats)
    return app


async def run_simulator(
    settings: SimulatorSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Callable[[str], None] | None = None,
    admin_token: str | None = None,
) -> None:
    """Serve until cancelled; port 0 picks a free port.

    ``ready`` receives the OpenAI base URL (``http://HOST:PORT/v1``) once the
    socket is listening. ``admin_token`` defaults to ``SWITCHYARD_ADMIN_TOKEN``.
    """
    token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV)
    # access_log=None: no per-request log lines, load tests send thousands.
    runner = web.AppRunner(build_app(settings, admin_token=token), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        if ready is not None:
            shown = f"[{host}]" if ":" in host else host
            ready(f"http://{shown}:{bound_port}/v1")
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _admin_only_with_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The route matched, not the raw path: no spelling of a path reaches an admin
    # handler around the check.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    if route.startswith("/admin/") and not token_matches(
        request.headers.get(AUTHORIZATION), request.app[ADMIN_TOKEN]
    ):
        message = "the admin endpoints want Authorization: Bearer <SWITCHYARD_ADMIN_TOKEN>"
        return _json(error_body(message, "invalid_request_error", "invalid_api_key"), 401)
    return await handler(request)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


async def _chat_completions(request: web.Request) -> web.Response:
    state = request.app[STATE]
    parsed = parse_chat_request(await request.read())
    if isinstance(parsed, WireError):
        return _json(failure_body(parsed), parsed.status)
    if parsed.stream:
        body = error_body("streaming not supported by the simulator", "invalid_request_error",
                          "unsupported_value", "stream")  # fmt: skip
        return _json(body, 400)
    if not state.knows(parsed.model):
        message = f"The model `{parsed.model}` does not exist or you do not have access to it."
        return _json(error_body(message, "invalid_request_error", "model_not_found"), 404)
    outcome = state.answer(parsed.model, parsed.prompt())
    state.in_flight += 1
    try:
        if outcome.latency_ms > 0:
            await asyncio.sleep(outcome.latency_ms / 1000)
    finally:
        state.in_flight -= 1
    if isinstance(outcome, Failure):
        headers = None
        if outcome.retry_after_s is not None:
            headers = {"Retry-After": str(outcome.retry_after_s)}
        return _json(failure_body(outcome), outcome.status, headers)
    fingerprint = f"fp_sim_{state.settings.seed}"
    return _json(completion_body(outcome, parsed.model, int(time.time()), fingerprint))


async def _models(request: web.Request) -> web.Response:
    names = list(request.app[STATE].settings.models)
    return _json(models_body(names, int(time.time())))


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _admin_update(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name = request.match_info["name"]
    if not state.knows(name):
        message = f"The model `{name}` does not exist."
        return _json(error_body(message, "invalid_request_error", "model_not_found"), 404)
    try:
        changes = orjson.loads(await request.read())
        if not isinstance(changes, dict):
            raise UsageError("the body must be a JSON object")
        view = state.update(name, changes)
    except ValueError as exc:  # also orjson and pydantic errors, both ValueErrors
        return _json(error_body(str(exc), "invalid_request_error", "invalid_value"), 400)
    return _json(view)


async def _stats(request: web.Request) -> web.Response:
    return _json(request.app[STATE].stats())


async def _watch(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        body = None
    markers = body.get("markers") if isinstance(body, dict) else None
    if not isinstance(markers, list) or not all(isinstance(m, str) and m for m in markers):
        message = 'the body must be {"markers": [non-empty strings]}'
        return _json(error_body(message, "invalid_request_error", "invalid_value"), 400)
    request.app[STATE].watch(markers)
    return _json({"markers": markers})


async def _reset_stats(request: web.Request) -> web.Response:
    request.app[STATE].reset_stats()
    return _json(request.app[STATE].stats())
