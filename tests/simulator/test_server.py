import asyncio
import time
from typing import Any

import httpx
import pytest

from simulator import OutageWindow, run_simulator
from tests.simulator.serving import ADMIN, ADMIN_TOKEN, FakeClock, chat, fast_settings, serving

pytestmark = pytest.mark.asyncio


async def post(client: httpx.AsyncClient, body: Any, path: str = "/v1/chat/completions") -> Any:
    return await client.post(path, json=body)


async def test_health_and_models() -> None:
    async with (
        serving(fast_settings()) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        assert (await client.get("/health")).json() == {"status": "ok"}
        models = (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    names = [m["id"] for m in models["data"]]
    assert names == ["sim-small", "sim-medium", "sim-large", "sim-local"]
    assert {m["object"] for m in models["data"]} == {"model"}


async def test_completion_has_openai_shape_and_is_deterministic() -> None:
    bodies = []
    for _ in range(2):  # two fresh servers answer the first request identically
        async with (
            serving(fast_settings()) as url,
            httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
        ):
            response = await post(client, chat("what is a kafka topic", max_tokens=100))
            again = (await post(client, chat("what is a kafka topic", max_tokens=100))).json()
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        bodies.append(response.json())
    body = bodies[0]
    assert set(body) == {
        "id", "object", "created", "model", "choices", "usage", "system_fingerprint",
    }  # fmt: skip
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "sim-small" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert (choice["index"], choice["finish_reason"], choice["logprobs"]) == (0, "stop", None)
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith("[sim-small] ")
    usage = body["usage"]
    assert usage["prompt_tokens"] == len("what is a kafka topic") // 4 + 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert [b["id"] for b in bodies] == [body["id"]] * 2
    assert bodies[1]["choices"] == body["choices"]
    assert again["id"] != body["id"]  # a repeat is a new occurrence with fresh draws


@pytest.mark.parametrize(
    ("raw", "status", "code", "param"),
    [
        (b"{not json", 400, None, None),
        (b"[1, 2]", 400, None, None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', 400,
         "missing_required_parameter", "model"),
        (b'{"model": "sim-small"}', 400, "missing_required_parameter", "messages"),
        (b'{"model": "sim-small", "messages": []}', 400, "invalid_value", "messages"),
        (b'{"model": "sim-small", "messages": [{"role": "user"}], "stream": true}', 400,
         "unsupported_value", "stream"),
        (b'{"model": "gpt-9", "messages": [{"role": "user"}]}', 404, "model_not_found", None),
    ],
)  # fmt: skip
async def test_bad_requests_get_openai_errors(
    raw: bytes, status: int, code: str | None, param: str | None
) -> None:
    async with (
        serving(fast_settings()) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        response = await client.post("/v1/chat/completions", content=raw)
        stats = (await client.get("/admin/stats")).json()
    error = response.json()["error"]
    assert response.status_code == status
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    assert error["message"]
    assert stats["models"]["sim-small"]["requests"] == 0


async def test_rate_limit_gives_429_with_retry_after_until_refilled() -> None:
    clock = FakeClock()
    settings = fast_settings(rate_limit_rps=1)
    async with (
        serving(settings, clock) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        assert (await post(client, chat())).status_code == 200
        limited = await post(client, chat())
        clock.advance(1.0)
        after = await post(client, chat())
        stats = (await client.get("/admin/stats")).json()["models"]["sim-small"]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert after.status_code == 200
    assert (stats["requests"], stats["ok"], stats["rate_limited"]) == (3, 2, 1)


async def test_outage_window_is_503_only_inside() -> None:
    clock = FakeClock()
    settings = fast_settings(outages=[OutageWindow(start_s=5, end_s=10)])
    statuses = []
    async with (
        serving(settings, clock) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        for step in (4.9, 0.1, 4.8, 0.2):  # elapsed 4.9, 5.0, 9.8, 10.0
            clock.advance(step)
            statuses.append((await post(client, chat())).status_code)
        other = await post(client, chat(model="sim-medium"))
    assert statuses == [200, 503, 503, 200]
    assert other.status_code == 200


async def test_admin_faults_and_counters() -> None:
    async with (
        serving(fast_settings()) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        view = (await post(client, {"down": True}, "/admin/models/sim-small")).json()
        down = await post(client, chat())
        await post(client, {"down": False, "error_rate": 1.0}, "/admin/models/sim-small")
        failing = await post(client, chat())
        await post(client, {"error_rate": 0.0}, "/admin/models/sim-small")
        healthy = await post(client, chat())
        too_long = await post(client, chat("x" * 70000))
        stats = (await client.get("/admin/stats")).json()["models"]
        unknown = await post(client, {"down": True}, "/admin/models/nope")
        invalid = await post(client, {"error_rate": 2}, "/admin/models/sim-small")
        extra = await post(client, {"colour": "red"}, "/admin/models/sim-small")
        reset = (await client.delete("/admin/stats")).json()["models"]["sim-small"]
    assert view["down"] is True and view["profile"]["latency_ms"] == 40
    assert [r.status_code for r in (down, failing, healthy, too_long)] == [503, 500, 200, 400]
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert stats["sim-small"] == {
        "down": False, "requests": 4, "ok": 1, "errors": 1,
        "rate_limited": 0, "unavailable": 1, "rejected": 1, "watched": {},
    }  # fmt: skip
    assert stats["sim-large"]["requests"] == 0
    assert [unknown.status_code, invalid.status_code, extra.status_code] == [404, 400, 400]
    assert reset["requests"] == 0


async def test_latency_is_really_waited() -> None:
    settings = fast_settings(latency_ms=20000, latency_sigma=0)  # 20 s x 0.01 = 200 ms
    async with serving(settings) as url, httpx.AsyncClient(base_url=url, headers=ADMIN) as client:
        started = time.perf_counter()
        response = await post(client, chat())
        waited = time.perf_counter() - started
    assert response.status_code == 200
    assert 0.19 < waited < 1.0


async def test_stats_count_the_calls_in_flight_until_they_return() -> None:
    settings = fast_settings(latency_ms=20000, latency_sigma=0)  # 200 ms each
    async with serving(settings) as url, httpx.AsyncClient(base_url=url, headers=ADMIN) as client:
        calls = [asyncio.create_task(post(client, chat(f"q{i}"))) for i in range(3)]
        in_flight = 0
        for _ in range(100):  # until all three have arrived
            in_flight = (await client.get("/admin/stats")).json()["in_flight"]
            if in_flight == 3:
                break
            await asyncio.sleep(0.01)
        statuses = [r.status_code for r in await asyncio.gather(*calls)]
        after = (await client.get("/admin/stats")).json()["in_flight"]
    assert (in_flight, after, statuses) == (3, 0, [200, 200, 200])


async def test_run_simulator_reports_its_url_and_stops_on_cancel() -> None:
    ready: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(run_simulator(fast_settings(), ready=ready.put_nowait))
    base_url = await asyncio.wait_for(ready.get(), timeout=5)
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    async with httpx.AsyncClient() as client:
        assert (await client.get(base_url.removesuffix("/v1") + "/health")).status_code == 200
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(httpx.ConnectError):
            await client.get(base_url + "/models")


async def test_admin_rate_limit_change_takes_effect_at_once() -> None:
    clock = FakeClock()
    async with (
        serving(fast_settings(), clock) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        await post(client, {"rate_limit_rps": 1}, "/admin/models/sim-small")
        statuses = [(await post(client, chat())).status_code for _ in range(2)]
        await post(client, {"rate_limit_rps": 100}, "/admin/models/sim-small")
        statuses += [(await post(client, chat())).status_code for _ in range(2)]
        await post(client, {"rate_limit_rps": None}, "/admin/models/sim-small")
        statuses += [(await post(client, chat())).status_code for _ in range(150)]
    assert statuses == [200, 429, 200, 200] + [200] * 150


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}]
)
async def test_admin_endpoints_want_the_token_and_v1_stays_open(headers: dict[str, str]) -> None:
    async with (
        serving(fast_settings()) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as client,
    ):
        refused = [
            await client.get("/admin/stats"),
            await client.delete("/admin/stats"),
            await post(client, {"down": True}, "/admin/models/sim-small"),
            await client.get("//admin/stats"),
        ]
        served = await post(client, chat())  # the provider's own endpoint: no admin token
    assert [r.status_code for r in refused[:3]] == [401, 401, 401]
    assert refused[3].status_code in (401, 404)
    assert served.status_code == 200  # and the model was not taken down


async def test_a_simulator_started_without_a_token_refuses_every_admin_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SWITCHYARD_ADMIN_TOKEN", raising=False)
    ready: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(run_simulator(fast_settings(), ready=ready.put_nowait))
    root = (await asyncio.wait_for(ready.get(), timeout=5)).removesuffix("/v1")
    try:
        async with httpx.AsyncClient(base_url=root) as client:
            assert (await client.get("/admin/stats", headers=ADMIN)).status_code == 401
            monkeypatch.setenv("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)  # read at start only
            assert (await client.get("/admin/stats", headers=ADMIN)).status_code == 401
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_run_simulator_takes_its_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)
    ready: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(run_simulator(fast_settings(), ready=ready.put_nowait))
    root = (await asyncio.wait_for(ready.get(), timeout=5)).removesuffix("/v1")
    try:
        async with httpx.AsyncClient(base_url=root) as client:
            assert (await client.get("/admin/stats", headers=ADMIN)).status_code == 200
            assert (await client.get("/admin/stats")).status_code == 401
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watched_markers_are_counted_per_model() -> None:
    async with (
        serving(fast_settings()) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as client,
    ):
        bad = await post(client, {"markers": "x"}, "/admin/watch")
        assert (await post(client, {"markers": ["[secret]", "[other]"]}, "/admin/watch")).is_success
        await post(client, chat("this is [secret] data"))
        await post(client, chat("plain"))
        await post(client, {**chat("also [secret] and [other]"), "model": "sim-local"})
        stats = (await client.get("/admin/stats")).json()["models"]
    assert bad.status_code == 400
    assert stats["sim-small"]["watched"] == {"[secret]": 1}
    assert stats["sim-local"]["watched"] == {"[secret]": 1, "[other]": 1}
    assert stats["sim-large"]["watched"] == {}
