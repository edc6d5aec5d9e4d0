"""``switchyard chaos SCENARIO``: the real pipeline under an injected fault, counted.

Each run starts its own stack in a fresh namespace and state folder: the
simulated providers, the router, two provider workers and the telemetry
worker, each an OS process (the broker is reused if one is running). Jobs are
published at a steady rate while a scenario's faults are applied on a
timeline: provider outages, 429 storms and latency jumps through the
simulator's admin endpoint, SIGKILL and SIGTERM to worker processes. Then
every submitted job's reply is accounted for, provider calls are read from
the simulator's counters, circuit transitions from the health topic, dead
letters from their topic, and telemetry rows from ClickHouse.

Each scenario states its own checks; ``ok`` is true when all hold and no job
was lost or answered twice.
"""

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from pydantic import HttpUrl

from commands.demo import PROMPTS, QUALITIES
from commands.progress import Progress, say
from commands.telemetry_reader import run_query, telemetry_table
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.errors import TopicMissing
from schemas.health import EndpointHealth
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.kafka.admin import ensure_topics
from streams.kafka.reading import read_to_end
from streams.local.environment import Environment
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from streams.workers.provider import MAX_IN_FLIGHT

RATE_PER_S = 100.0
PROVIDER_WORKERS = ("provider-1", "provider-2")
REPLY_TIMEOUT_S = 240.0


@dataclass
class Run:
    """One chaos run in progress: its stack, its timeline and what it observed."""

    scenario: "Scenario"
    env: Environment
    config: SwitchyardConfig
    stack: Stack
    run_id: str
    started: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    @property
    def admin_url(self) -> str:
        return (self.stack.simulator_url or "").removesuffix("/v1")

    def log(self, what: str) -> None:
        self.events.append({"at_s": round(time.monotonic() - self.started, 2), "event": what})

    async def at(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the first job was sent."""
        await asyncio.sleep(max(0.0, self.started + seconds - time.monotonic()))

    async def set_model(self, model: str, **changes: Any) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{self.admin_url}/admin/models/{model}", json=changes)
            response.raise_for_status()
        self.log(f"{model}: {changes}")

    async def provider_stats(self) -> dict[str, dict[str, int]]:
        async with httpx.AsyncClient() as http:
            stats: dict[str, dict[str, int]] = (
                await http.get(f"{self.admin_url}/admin/stats")
            ).json()["models"]
        return stats

    async def kill(self, name: str, graceful: bool = False) -> None:
        await asyncio.to_thread(self.stack.stop_process, name, not graceful)
        self.log(f"{name}: {'SIGTERM (drained)' if graceful else 'SIGKILL'}")

    def restart(self, name: str, kind: str) -> None:
        self.stack.spawn(name, "worker", kind)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.log(f"{name}: restarted")


Shape = Callable[[InferenceRequest, int], InferenceRequest]
Faults = Callable[[Run], Coroutine[Any, Any, None]]
Checks = Callable[[Run, dict[str, Any]], dict[str, bool]]


def _same_request(request: InferenceRequest, i: int) -> InferenceRequest:
    return request


def _same_config(config: SwitchyardConfig) -> SwitchyardConfig:
    return config


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    faults: Faults
    checks: Checks
    shape: Shape = _same_request
    tune: Callable[[SwitchyardConfig], SwitchyardConfig] = _same_config
    poison_every: int = 0


# --- the scenarios ---------------------------------------------------------------


async def _outage(run: Run) -> None:
    await run.at(4)
    await run.set_model("sim-small", down=True)
    await run.at(12)
    await run.set_model("sim-small", down=False)


def _outage_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    small = s["circuits"].get("sim-small", {})
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "fallbacks carried the outage": s["fallbacks"] > 0,
        "sim-small circuit opened": small.get("opened", 0) >= 1,
        "sim-small circuit closed again": small.get("final") == "closed",
    }


STORM_MODELS = ("sim-small", "sim-medium", "sim-large")
STORM_RPS = 15.0
STORM_FROM_S, STORM_TO_S = 4.0, 14.0


async def _storm(run: Run) -> None:
    await run.at(STORM_FROM_S)
    run.marks["before"] = await run.provider_stats()
    for model in STORM_MODELS:
        await run.set_model(model, rate_limit_rps=STORM_RPS)
    await run.at(STORM_TO_S)
    run.marks["during"] = await run.provider_stats()
    for model in STORM_MODELS:
        await run.set_model(model, rate_limit_rps=None)


def _storm_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    before, during = run.marks["before"], run.marks["during"]
    window = STORM_TO_S - STORM_FROM_S
    calls = {m: during[m]["requests"] - before[m]["requests"] for m in STORM_MODELS}
    limited = {m: during[m]["rate_limited"] - before[m]["rate_limited"] for m in STORM_MODELS}
    # The bucket starts full: one second of burst on top of the rate.
    allowed = STORM_RPS * (window + 1)
    s["storm"] = {
        "window_s": window,
        "limit_rps": STORM_RPS,
        "calls": calls,
        "rate_limited": limited,
        "accepted": {m: calls[m] - limited[m] for m in STORM_MODELS},
        "allowed_per_model": allowed,
    }
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "jobs were retried later": s["retried"] > 0,
        "calls within 1.5x of the limit": all(c <= 1.5 * allowed for c in calls.values()),
    }


async def _worker_kill(run: Run) -> None:
    await run.at(5)
    await run.kill("provider-1")
    await run.at(7)
    run.restart("provider-1", "provider")
    await run.at(12)
    await run.kill("provider-2", graceful=True)
    await run.at(13)
    run.restart("provider-2", "provider")


def _kill_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    # Calls the simulator served whose outcome no reply records: lost in a crash.
    extra = s["provider_calls"] - s["calls_in_replies"]
    s["unrecorded_provider_calls"] = extra
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "repeated calls bounded by jobs in flight": 0 <= extra <= MAX_IN_FLIGHT,
    }


async def _telemetry_down(run: Run) -> None:
    await run.at(4)
    await run.kill("telemetry")
    run.marks["down_from"] = datetime.now(UTC)
    await run.at(14)
    run.marks["down_to"] = datetime.now(UTC)
    run.restart("telemetry", "telemetry")


def _telemetry_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    s["replies_while_down"] = run.marks.get("replies_while_down", 0)
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "replies kept flowing while the sink was down": s["replies_while_down"] > 0,
        "every telemetry row there exactly once": s["telemetry_rows"] == s["answered"],
    }


SLOW_DEADLINE_S = 4.0


async def _slow_tail(run: Run) -> None:
    await run.at(4)
    # Median 20x slower (40 -> 800 ms) and a heavy tail: p99 about 8 s.
    await run.set_model("sim-small", latency_ms=800, latency_sigma=1.0)
    await run.at(14)
    await run.set_model("sim-small", latency_ms=40, latency_sigma=0.3)


def _slow_shape(request: InferenceRequest, i: int) -> InferenceRequest:
    deadline = datetime.now(UTC) + timedelta(seconds=SLOW_DEADLINE_S)
    return request.model_copy(update={"deadline": deadline})


def _slow_tune(config: SwitchyardConfig) -> SwitchyardConfig:
    models = [
        m.model_copy(update={"timeout_s": 1.5, "first_byte_timeout_s": 1.5})
        if m.name == "sim-small"
        else m
        for m in config.models
    ]
    return config.model_copy(update={"models": models})


def _slow_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    statuses = s["statuses"]
    return {
        "every job answered ok or expired": statuses.get("ok", 0) + s["expired"] == s["sent"],
        "no answer later than its deadline": s["late_ok"] == 0,
        "timeouts shifted traffic to fallbacks": s["fallbacks"] > 0,
    }


async def _no_faults(run: Run) -> None:
    return None


def _poison_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    expected = run.marks["poison"]
    letters = s["dead_letters_by_code"]
    return {
        "every good job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "every bad message dead-lettered with its reason": letters == expected,
        "no worker restarted": s["workers_alive"],
    }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "provider-outage",
            "the cheapest model's endpoint is down from 4 s to 12 s",
            _outage,
            _outage_checks,
        ),
        Scenario(
            "rate-limit-storm",
            f"the three 'sim' models answer 429 + Retry-After above {STORM_RPS:g} calls/s "
            f"from {STORM_FROM_S:g} s to {STORM_TO_S:g} s",
            _storm,
            _storm_checks,
        ),
        Scenario(
            "worker-kill",
            "provider-1 gets SIGKILL at 5 s (restarted at 7 s); "
            "provider-2 gets SIGTERM at 12 s (restarted at 13 s)",
            _worker_kill,
            _kill_checks,
        ),
        Scenario(
            "telemetry-down",
            "the telemetry worker is killed at 4 s and stays down until 14 s",
            _telemetry_down,
            _telemetry_checks,
        ),
        Scenario(
            "slow-tail",
            "sim-small's median latency jumps 20x (p99 about 8 s) from 4 s to 14 s; "
            f"every job has a {SLOW_DEADLINE_S:g} s deadline",
            _slow_tail,
            _slow_checks,
            shape=_slow_shape,
            tune=_slow_tune,
        ),
        Scenario(
            "poison",
            "one message in 20 is malformed, oversized, wrongly typed or for an unknown tenant",
            _no_faults,
            _poison_checks,
            poison_every=20,
        ),
    ]
}


# --- running one -----------------------------------------------------------------


def run_chaos(env: Environment, config: SwitchyardConfig, name: str, jobs: int) -> dict[str, Any]:
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
        say(f"{name}: simulated providers on {stack.start_simulator()}")
        tuned = _point_at(scenario.tune(config), stack.simulator_url or "")
        config_path = home / "config.json"
        config_path.write_bytes(orjson.dumps(tuned.model_dump(mode="json", exclude_none=True)))
        stack.env = replace(chaos_env, config_path=config_path)
        stack.start_worker("router")
        for worker in PROVIDER_WORKERS:
            stack.spawn(worker, "worker", "provider")
        stack.start_worker("telemetry")
        stack.wait_router_web()
        run = Run(scenario, stack.env, tuned, stack, run_id)
        return asyncio.run(_drive(run, catalogue, jobs))
    finally:
        stack.stop()


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
        run.stack.bootstrap, catalogue, max_message_bytes=max_bytes
    ) as client:
        await _warm_up(client, run)
        async with httpx.AsyncClient() as http:
            await http.delete(f"{run.admin_url}/admin/stats")
        say(f"{run.scenario.name}: {run.scenario.summary}; {n} jobs at {RATE_PER_S:g}/s")
        run.started = time.monotonic()
        faults = asyncio.create_task(run.scenario.faults(run))
        futures: dict[str, asyncio.Future[InferenceReply]] = {}
        poison: dict[str, int] = {}
        progress = Progress("replies", n)
        for i, request in enumerate(requests):
            await run.at(i / RATE_PER_S)
            if run.scenario.poison_every and i % run.scenario.poison_every == 0:
                raw, key, code = _poison(run, i)
                await client.send_raw(raw, key=key)
                poison[code] = poison.get(code, 0) + 1
            request = run.scenario.shape(request, i)
            by_id[request.request_id] = request
            futures[request.request_id] = await client.submit(request)
            if i % 50 == 0:
                progress.update(sum(f.done() for f in futures.values()))
                _note_replies_while_down(run, futures)
        await client.flush()
        run.marks["poison"] = poison
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            _note_replies_while_down(run, futures)
            done = sum(f.done() for f in futures.values())
            progress.update(done)
            if done == n and faults.done():
                break
            await asyncio.sleep(0.25)
        await faults
        await asyncio.sleep(2.0)  # a grace period in which duplicate replies would show
        replies = {rid: f.result() for rid, f in futures.items() if f.done()}
        duplicates = client.duplicate_replies
    return await _summarise(run, catalogue, by_id, replies, duplicates)


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


async def _summarise(
    run: Run,
    catalogue: TopicCatalogue,
    requests: dict[str, InferenceRequest],
    replies: dict[str, InferenceReply],
    duplicates: int,
) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for reply in replies.values():
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
    ok = [r for r in replies.values() if r.status == "ok"]
    late_ok = 0
    for reply in ok:
        deadline = requests[reply.request_id].deadline
        if deadline is not None and reply.finished_at > deadline:
            late_ok += 1
    stats = await run.provider_stats()
    bootstrap = run.stack.bootstrap
    health = [
        EndpointHealth.model_validate_json(v)
        for v in await read_topic(bootstrap, catalogue.health.name)
    ]
    letters = [
        DeadLetter.model_validate_json(v)
        for v in await read_topic(bootstrap, catalogue.dead_letter.name)
    ]
    rows = await asyncio.to_thread(_telemetry_rows, run, len(replies))
    summary: dict[str, Any] = {
        "scenario": run.scenario.name,
        "run_id": run.run_id,
        "sent": len(requests),
        "answered": len(replies),
        "lost": len(requests) - len(replies),
        "duplicate_replies": duplicates,
        "statuses": statuses,
        "provider_calls": sum(m["requests"] for m in stats.values()),
        "calls_in_replies": sum(
            1
            for r in replies.values()
            for a in r.attempts
            if a.outcome not in ("circuit_open", "throttled")
        ),
        "fallbacks": sum(1 for r in ok if r.routing is not None and r.model != r.routing.chosen),
        "retried": sum(1 for r in replies.values() if any(a.round > 0 for a in r.attempts)),
        "expired": statuses.get("expired", 0),
        "late_ok": late_ok,
        "p50_ms": _quantile([r.timings.total_ms for r in ok], 0.5),
        "p99_ms": _quantile([r.timings.total_ms for r in ok], 0.99),
        "provider_stats": stats,
        "circuits": _circuits(health),
        "dead_letters_by_code": _count(letter.error.code for letter in letters),
        "telemetry_rows": rows["final"],
        "telemetry_raw_rows": rows["raw"],
        "workers_alive": _workers_alive(run),
        "restarts": run.restarts,
        "events": run.events,
    }
    checks = run.scenario.checks(run, summary)
    summary["checks"] = checks
    summary["ok"] = summary["lost"] == 0 and duplicates == 0 and all(checks.values())
    return summary


def _count(codes: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for code in codes:
        out[code] = out.get(code, 0) + 1
    return out


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 1)


def _circuits(health: list[EndpointHealth]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for h in health:
        entry = out.setdefault(
            h.model, {"opened": 0, "closed": 0, "cool_downs": 0, "final": "closed"}
        )
        if h.kind == "rate_limit":
            entry["cool_downs"] += 1
            continue
        entry["opened" if h.state == "open" else "closed"] += 1
        entry["final"] = h.state
    return out


def _workers_alive(run: Run) -> bool:
    return all(p.poll() is None for p in run.stack.processes.values())


def _telemetry_rows(run: Run, expected: int) -> dict[str, int]:
    """Rows for this run's jobs, once the sink has caught up (or after a minute)."""
    table = telemetry_table(run.env, "requests")
    # ``app`` is the run id this module generated, not user input.
    final_sql = f"SELECT count() FROM {table} FINAL WHERE app = '{run.run_id}'"  # noqa: S608
    raw_sql = f"SELECT count() FROM {table} WHERE app = '{run.run_id}'"  # noqa: S608
    deadline = time.monotonic() + 90
    final = 0
    while time.monotonic() < deadline:
        try:
            final = int(run_query(run.env, final_sql)[1][0][0])
        except (RuntimeError, httpx.HTTPError):
            final = 0  # the sink is restarting
        if final >= expected:
            break
        time.sleep(0.5)
    raw = int(run_query(run.env, raw_sql)[1][0][0])
    return {"final": final, "raw": raw}


async def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value of ``topic`` from its start to its current end ([] if it is missing)."""
    try:
        return [r.value async for r in read_to_end(bootstrap, topic) if r.value is not None]
    except TopicMissing:
        return []


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"scenario {s['scenario']}: {'OK' if s['ok'] else 'FAILED'}",
        f"sent {s['sent']}  answered {s['answered']}  lost {s['lost']}  "
        f"duplicate_replies {s['duplicate_replies']}  provider_calls {s['provider_calls']}  "
        f"fallbacks {s['fallbacks']}  retried {s['retried']}  expired {s['expired']}",
        "statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(s["statuses"].items())),
        f"latency ok p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms; "
        f"telemetry rows {s['telemetry_rows']} (raw {s['telemetry_raw_rows']})",
    ]
    for model, c in sorted(s["circuits"].items()):
        lines.append(
            f"circuit {model}: opened {c['opened']}, closed {c['closed']}, "
            f"cool-downs {c['cool_downs']}, now {c['final']}"
        )
    if s["dead_letters_by_code"]:
        lines.append(
            "dead letters: "
            + ", ".join(f"{k} {v}" for k, v in sorted(s["dead_letters_by_code"].items()))
        )
    for event in s["events"]:
        lines.append(f"  t+{event['at_s']:>6}s  {event['event']}")
    for check, held in s["checks"].items():
        lines.append(f"  [{'x' if held else ' '}] {check}")
    return "\n".join(lines)
