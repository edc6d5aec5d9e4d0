"""Running one scenario: start a stack in a fresh namespace, send jobs at a steady rate
while the scenario's faults play, and collect every reply."""

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

import httpx
import orjson
from pydantic import HttpUrl

from commands.chaos.report import summarise
from commands.chaos.run import Run
from commands.chaos.scenarios import SCENARIOS
from commands.demo import PROMPTS, QUALITIES
from commands.progress import Progress, say
from schemas.config import REVEAL_SECRETS, SwitchyardConfig
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.kafka.admin import delete_namespace, ensure_topics
from streams.local.environment import Environment
from streams.local.stack import Stack
from streams.tenant_keys import signing_keys
from streams.topics import TopicCatalogue

REPLY_TIMEOUT_S = 240.0


def run_chaos(
    env: Environment, config: SwitchyardConfig, name: str, jobs: int | None = None
) -> dict[str, Any]:
    """Run scenario ``name`` with ``jobs`` jobs (default: the scenario's own number)."""
    scenario = SCENARIOS[name]
    run_id = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
    home = env.state_dir / "chaos" / run_id
    home.mkdir(parents=True, exist_ok=True)
    chaos_env = replace(
        env,
        state_dir=home,
        namespace=run_id,
        clickhouse_url=f"chdb://{home / 'chdb'}",
        kafka_bootstrap=env.kafka_bootstrap or _running_broker(env),
    )
    stack = Stack.connect(chaos_env, start_broker=True, notify=say)
    try:
        catalogue = TopicCatalogue(run_id)
        asyncio.run(ensure_topics(stack.bootstrap, catalogue.all(), env.replication_factor))
        say(f"{name}: simulated providers on {stack.start_simulator(wait=False)}")
        tuned = _point_at(scenario.tune(config), stack.simulator_url or "")
        config_path = home / "config.json"
        dumped = tuned.model_dump(mode="json", exclude_none=True, context={REVEAL_SECRETS: True})
        config_path.write_bytes(orjson.dumps(dumped))
        stack.env = replace(chaos_env, config_path=config_path)
        stack.start_worker("router")
        for i in range(1, scenario.providers + 1):
            stack.spawn(f"provider-{i}", "worker", "provider")
        stack.start_worker("telemetry")
        stack.wait_ready()
        run = Run(scenario, stack.env, tuned, stack, run_id)
        return asyncio.run(_drive(run, catalogue, jobs or scenario.jobs))
    finally:
        stack.stop()
        if stack.broker is None:  # a broker that outlives the run keeps none of its topics
            asyncio.run(delete_namespace(stack.bootstrap, run_id))


def _running_broker(env: Environment) -> str | None:
    from streams.local.stack import find_bootstrap

    return find_bootstrap(env)


def _point_at(config: SwitchyardConfig, simulator_url: str) -> SwitchyardConfig:
    url = HttpUrl(simulator_url)
    models = [m.model_copy(update={"base_url": url}) for m in config.models]
    return config.model_copy(update={"models": models})


def _jobs(run: Run, n: int) -> list[InferenceRequest]:
    tenants = list(run.config.tenants)
    out = []
    for i in range(n):
        task, prompt = PROMPTS[i % len(PROMPTS)]
        request = InferenceRequest(
            request_id=f"{run.run_id}-{i:06d}",
            tenant=tenants[i % len(tenants)],
            app=run.run_id,
            messages=[ChatMessage(role="user", content=f"{prompt} (job {i})")],
            task=task,
            quality=QUALITIES[(i // len(PROMPTS)) % len(QUALITIES)],
            max_tokens=64,
        )
        out.append(request)
    return out


def _poison(run: Run, i: int) -> tuple[bytes, str | None, str]:
    """A bad message and the dead-letter code it must get."""
    kind = (i // run.scenario.poison_every) % 4
    request_id = f"{run.run_id}-bad-{i:06d}"
    good = {
        "request_id": request_id,
        "tenant": "acme",
        "messages": [{"role": "user", "content": "hi"}],
    }
    if kind == 0:
        return (
            b'{"request_id": "' + request_id.encode() + b'", "tenant": ',
            "acme",
            "invalid_request",
        )
    if kind == 1:
        # Only a few are oversized: each one is a megabyte held by the in-memory broker.
        if (i // run.scenario.poison_every) % 16 == 1:
            filler = "x" * (run.config.limits.max_message_bytes + 1000)
            big = {**good, "messages": [{"role": "user", "content": filler}]}
            return orjson.dumps(big), "acme", "message_too_large"
        return orjson.dumps({**good, "messages": "hello"}), "acme", "invalid_request"
    if kind == 2:
        return orjson.dumps({**good, "max_tokens": "lots"}), "acme", "invalid_request"
    return orjson.dumps({**good, "tenant": "nobody-corp"}), "nobody-corp", "unknown_tenant"


async def _drive(run: Run, catalogue: TopicCatalogue, n: int) -> dict[str, Any]:
    requests = _jobs(run, n)
    by_id = {r.request_id: r for r in requests}
    max_bytes = 4 * run.config.limits.max_message_bytes
    async with SwitchyardClient(
        run.stack.bootstrap, catalogue, max_message_bytes=max_bytes, keys=signing_keys(run.config)
    ) as client:
        await _warm_up(client, run)
        async with httpx.AsyncClient() as http:
            reset = await http.delete(
                f"{run.admin_url}/admin/stats", headers=run.stack.admin_headers()
            )
            reset.raise_for_status()
        scenario = run.scenario
        say(f"{scenario.name}: {scenario.summary}; {n} jobs at {scenario.rate_per_s:g}/s")
        run.started = time.monotonic()
        faults = asyncio.create_task(run.scenario.faults(run))
        progress = Progress("replies", n)
        futures = await _send(run, client, requests, by_id, progress)
        await _await_replies(run, futures, faults, progress)
        replies = {rid: f.result() for rid, f in futures.items() if f.done()}
        duplicates = client.duplicate_replies
    return await summarise(run, catalogue, by_id, replies, duplicates)


async def _send(
    run: Run,
    client: SwitchyardClient,
    requests: list[InferenceRequest],
    by_id: dict[str, InferenceRequest],
    progress: Progress,
) -> dict[str, asyncio.Future[InferenceReply]]:
    """Send the jobs at the scenario's rate, its poison among them.

    ``by_id`` gets each job as sent (shaped); ``run.marks["poison"]`` counts the
    bad messages by the dead-letter code each must get.
    """
    futures: dict[str, asyncio.Future[InferenceReply]] = {}
    poison: dict[str, int] = {}
    for i, request in enumerate(requests):
        await run.at(i / run.scenario.rate_per_s)
        if run.scenario.poison_every and i % run.scenario.poison_every == 0:
            raw, key, code = _poison(run, i)
            await client.send_raw(raw, key=key, sign_as=key)
            poison[code] = poison.get(code, 0) + 1
        request = run.scenario.shape(request, i)
        by_id[request.request_id] = request
        futures[request.request_id] = await client.submit(request)
        if i % 50 == 0:
            progress.update(sum(f.done() for f in futures.values()))
            _note_replies_while_down(run, futures)
    await client.flush()
    run.marks["poison"] = poison
    return futures


async def _await_replies(
    run: Run,
    futures: dict[str, asyncio.Future[InferenceReply]],
    faults: "asyncio.Task[None]",
    progress: Progress,
) -> None:
    """Wait for every reply and the faults' end (up to REPLY_TIMEOUT_S), then for every
    provider call still running, then a grace period."""
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while time.monotonic() < deadline:
        _note_replies_while_down(run, futures)
        done = sum(f.done() for f in futures.values())
        progress.update(done)
        if done == len(futures) and faults.done():
            break
        await asyncio.sleep(0.25)
    await faults
    # A second answer to a job comes from a call still running when its first reply
    # came (a worker that lost the job's partition mid-call): wait for every call to end.
    await run.wait_calls_done(timeout_s=REPLY_TIMEOUT_S)
    await asyncio.sleep(2.0)  # a grace period in which duplicate replies would show


def _note_replies_while_down(run: Run, futures: dict[str, asyncio.Future[InferenceReply]]) -> None:
    start, end = run.marks.get("down_from"), run.marks.get("down_to")
    if start is None:
        return
    run.marks["replies_while_down"] = sum(
        1
        for f in futures.values()
        if f.done()
        and start <= f.result().finished_at
        and (end is None or f.result().finished_at <= end)
    )


async def _warm_up(client: SwitchyardClient, run: Run) -> None:
    """One job per tenant through the whole path, so start-up is not part of the run."""
    warm = [
        InferenceRequest(
            request_id=f"{run.run_id}-warm-{tenant}",
            tenant=tenant,
            messages=[ChatMessage(role="user", content="warm up")],
            max_tokens=8,
        )
        for tenant in run.config.tenants
    ]
    futures = [await client.submit(r) for r in warm]
    await client.flush()
    await asyncio.wait_for(asyncio.gather(*futures), 120)
