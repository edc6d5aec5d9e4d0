"""The bench's client sides, LiteLLM's Router and the bare ceiling, on the real simulator."""

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from commands.bench.ceiling import ceiling_run
from commands.bench.clients import ClientRun
from commands.bench.figures import percentile
from commands.bench.jobs import DEFAULT_MAX_TOKENS, Job, jobs_from_requests
from commands.bench.litellm_side import Provider, litellm_run, router_settings
from schemas.errors import InvalidOption
from schemas.messages import ChatMessage, InferenceRequest
from simulator import FakeModelProfile, OutageWindow, SimulatorSettings
from tests.simulator.serving import ADMIN, serving

GROUPS = {
    "economy": ["sim-small", "sim-local"],
    "balanced": ["sim-medium", "sim-small"],
    "premium": ["sim-large", "sim-medium"],
}


def requests(n: int) -> list[InferenceRequest]:
    return [
        InferenceRequest(
            request_id=f"bench-{i:04d}",
            tenant="acme",
            messages=[
                ChatMessage(role="system", content="be brief"),
                ChatMessage(role="user", content=f"question {i}: what is a partition?"),
            ],
            max_tokens=64 if i % 2 else None,
        )
        for i in range(n)
    ]


def jobs(n: int = 60) -> list[Job]:
    names = list(GROUPS)
    return jobs_from_requests(requests(n), lambda r: names[int(r.request_id[-4:]) % len(names)])


def settings(large_down: bool = False) -> SimulatorSettings:
    models = dict(SimulatorSettings().models)
    if large_down:
        models["sim-large"] = FakeModelProfile(outages=[OutageWindow(start_s=0, end_s=1e9)])
    return SimulatorSettings(models=models, latency_scale=0)


@asynccontextmanager
async def simulator(large_down: bool = False) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The OpenAI base URL of a fresh simulator, and an admin client to read its counters."""
    async with (
        serving(settings(large_down)) as root,
        httpx.AsyncClient(base_url=root, headers=ADMIN) as admin,
    ):
        yield f"{root}/v1", admin


async def answered(admin: httpx.AsyncClient) -> dict[str, Any]:
    """Requests and successes per model, as the simulator counted them."""
    models = (await admin.get("/admin/stats")).json()["models"]
    return {name: (m["requests"], m["ok"]) for name, m in models.items()}


def assert_consistent(run: ClientRun, n: int) -> None:
    assert (run.jobs, run.ok, run.errors) == (n, n, ())
    assert run.seconds > 0
    assert run.jobs_per_s == pytest.approx(n / run.seconds)
    assert 0 < run.p50_ms <= run.p99_ms
    assert run.peak_rss_mb > 0


def test_jobs_carry_openai_messages_group_and_limit() -> None:
    made = jobs(4)
    assert [j.group for j in made] == ["economy", "balanced", "premium", "economy"]
    assert made[1].messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "question 1: what is a partition?"},
    ]
    assert [j.max_tokens for j in made] == [DEFAULT_MAX_TOKENS, 64, DEFAULT_MAX_TOKENS, 64]
    assert (made[0].request_id, made[0].tenant) == ("bench-0000", "acme")


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([], 50) == 0.0


def test_router_has_one_deployment_per_model_and_group_fallbacks() -> None:
    config = router_settings("http://sim/v1", GROUPS)
    deployments = {d["model_name"]: d["litellm_params"]["model"] for d in config["model_list"]}
    assert deployments == {
        "economy": "aiohttp_openai/sim-small",
        "balanced": "aiohttp_openai/sim-medium",
        "premium": "aiohttp_openai/sim-large",
        "sim-local": "aiohttp_openai/sim-local",
    }
    assert {d["litellm_params"]["api_base"] for d in config["model_list"]} == {"http://sim/v1"}
    assert config["fallbacks"] == [
        {"economy": ["sim-local"]},
        {"balanced": ["economy"]},
        {"premium": ["balanced"]},
    ]
    assert config["num_retries"] == 0


@pytest.mark.asyncio
async def test_ceiling_answers_every_job_from_each_primary() -> None:
    async with simulator() as (base_url, admin):
        run = await ceiling_run(base_url, jobs(), GROUPS, concurrency=8)
        counts = await answered(admin)
    assert_consistent(run, 60)
    assert run.label == "ceiling c=8"
    assert counts == {
        "sim-small": (20, 20),
        "sim-medium": (20, 20),
        "sim-large": (20, 20),
        "sim-local": (0, 0),
    }


@pytest.mark.asyncio
async def test_ceiling_has_no_fallback_in_an_outage() -> None:
    async with simulator(large_down=True) as (base_url, _):
        run = await ceiling_run(base_url, jobs(), GROUPS, concurrency=8)
    assert (run.ok, run.errors) == (40, (("HTTP 503", 20),))


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["aiohttp_openai", "openai"])
async def test_litellm_answers_every_job_through_its_groups(provider: Provider) -> None:
    async with simulator() as (base_url, admin):
        run = await litellm_run(base_url, jobs(), GROUPS, concurrency=8, provider=provider)
        counts = await answered(admin)
    assert_consistent(run, 60)
    assert run.label == "litellm c=8"
    assert counts["sim-large"] == (20, 20)
    assert counts["sim-local"] == (0, 0)


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["aiohttp_openai", "openai"])
async def test_litellm_falls_back_when_a_primary_is_down(provider: Provider) -> None:
    async with simulator(large_down=True) as (base_url, admin):
        run = await litellm_run(base_url, jobs(), GROUPS, concurrency=8, provider=provider)
        counts = await answered(admin)
    assert_consistent(run, 60)
    large_requests, large_ok = counts["sim-large"]
    assert large_ok == 0 and large_requests >= 1  # tried, then cooled down or fallen back
    assert counts["sim-medium"] == (40, 40)  # its own 20 and premium's 20


def test_litellm_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # what the import finds when not installed
    with pytest.raises(InvalidOption, match=r"pip install -e '\.\[bench\]'"):
        asyncio.run(litellm_run("http://sim/v1", jobs(3), GROUPS, concurrency=1))
