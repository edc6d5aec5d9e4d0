"""Governance on the real pipeline: rate limits with each behaviour over a limit, and
redaction, on one stack (its config below) that every test here shares, in file order.

- acme's team ``limited`` may send 5 requests a minute, ``reject`` over it; acme logs
  content ``redacted`` and keeps ``redacted`` dead letters.
- globex's team ``batch`` may send 12 a minute, ``queue`` over it (at most 12 s of waiting);
  globex keeps the content defaults (``off``, ``hash``).
- initech's team ``bulk`` may send 2 a minute, ``downgrade`` over it; its team ``capped``
  has a hard budget of $1.00.

Jobs without a team fall under no limit. The first test starts a second router, so the
rest run with two. Then a hard team budget under failover, and 1,000 random jobs that
must keep restricted and confidential data off models not cleared for it; the redaction
test stops the stack to read the workers' whole logs.
"""

import asyncio
import copy
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from commands.cli import main
from commands.telemetry_reader import run_query, telemetry_table
from processors.authenticate import SigningKey, sign
from processors.seal import CLUSTER_KEY_ENV
from schemas.config_file import load_config
from schemas.dead_letter import DeadLetter
from schemas.errors import AccessDenied
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from streams.client import SwitchyardClient
from streams.kafka.reading import read_to_end
from streams.local.broker import free_port
from streams.local.stack import Stack
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue
from tests.helpers import (
    SAMPLE_CONFIG,
    Engine,
    fresh_namespace,
    point_cli_at,
    running_stack,
    sample_keys,
)
from tests.processors.test_redact import PLANTED
from tests.test_tenancy_pipeline import budget_pages, held_by_one, job, produce, read_replies

pytestmark = pytest.mark.slow

PER_MINUTE = 5
TEAM_CAP_USD = 1.00
# About 1,000 input tokens: on sim-large about half a cent a job, so 1,000 jobs would
# spend $5 if the budget reserved only what the cheap first model costs.
LONG_PROMPT = "Tell me how harbour cranes lift containers. " * 90
ROUTER_PORTS: list[int] = []
VALUES = [value for value, _ in PLANTED] + ["EMP-004211"]
PROMPT = "Please keep these safe: " + " ; ".join(VALUES)
TENANTS = ("acme", "globex")


@pytest.fixture(scope="module")
def stack(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("governance")
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    tenants = raw["tenants"]
    tenants["acme"] |= {
        "content_logging": "redacted",
        "dead_letter_payload": "redacted",
        "rate_limits": {"teams": {"limited": {"requests_per_minute": PER_MINUTE}}},
    }
    tenants["globex"]["rate_limits"] = {
        "teams": {"batch": {"requests_per_minute": 12}},
        "on_limit": "queue",
        "max_queue_s": 12,
    }
    tenants["initech"]["rate_limits"] = {
        "teams": {"bulk": {"requests_per_minute": 2}},
        "on_limit": "downgrade",
    }
    tenants["initech"]["budgets"] = {"teams": {"capped": {"usd": TEAM_CAP_USD}}}
    raw["redaction"] = {
        "patterns": {"employee_id": r"\bEMP-\d{6}\b"},
        "before_external": ["confidential"],
    }
    config = home / "governance.yaml"
    config.write_text(yaml.safe_dump(raw))
    with running_stack(engine, fresh_namespace(), home, config) as running:
        yield running


def team_job(tenant: str, request_id: str, reply_to: str, team: str, **fields: Any) -> bytes:
    request = orjson.loads(job(tenant, request_id, reply_to))
    return orjson.dumps({**request, "team": team, **fields})


def test_two_routers_admit_no_more_than_the_limit_and_say_when_to_retry(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    requests, replies_topic = catalogue.requests.name, catalogue.replies.name
    second = free_port()
    stack.spawn("router-2", "worker", "router", "--web-port", str(second))
    ports = [stack.router_web_port or 0, second]
    ROUTER_PORTS[:] = ports  # the later tests read both routers' budget pages
    # globex and initech warm up both routers: both answer and both tenants were routed.
    deadline = time.monotonic() + 90
    warm = 0
    while True:
        batch = [
            (requests, p, None, job(tenant, f"warm-{tenant}-{warm}-{p}", replies_topic))
            for tenant in ("globex", "initech")
            for p in range(ROUTING_PARTITIONS)
        ]
        asyncio.run(produce(stack.bootstrap, batch))
        warm += len(batch)
        try:
            pages = budget_pages(stack, ports)
        except (httpx.HTTPError, AccessDenied):  # the second router is still starting
            pages = [{}, {}]
        if {"globex", "initech"} <= set(pages[0]) | set(pages[1]):
            break
        assert time.monotonic() < deadline, f"the routers did not start: {pages}"
        time.sleep(1)
    asyncio.run(read_replies(stack.bootstrap, replies_topic, warm))

    sent = [
        (
            requests,
            i % ROUTING_PARTITIONS,
            b"acme" if i % 2 else None,
            team_job("acme", f"a-{i}", replies_topic, "limited"),
        )
        for i in range(60)
    ]
    started = time.monotonic()
    asyncio.run(produce(stack.bootstrap, sent))
    replies = [
        r
        for r in asyncio.run(read_replies(stack.bootstrap, replies_topic, warm + 60))
        if r.tenant == "acme"
    ]
    took_s = time.monotonic() - started

    assert len(replies) == 60
    ok = [r for r in replies if r.status == "ok"]
    limited = [r for r in replies if r.error is not None and r.error.code == "rate_limited"]
    # A bucket of 5, and one more per 12 s the run lasted.
    assert PER_MINUTE <= len(ok) <= PER_MINUTE + int(took_s // 12), took_s
    assert len(ok) + len(limited) == 60
    assert all(r.error and r.error.retryable and (r.error.retry_after_s or 0) > 0 for r in limited)
    assert held_by_one(budget_pages(stack, ports), "acme")["requests"] == len(ok)


def _replies_to(
    stack: Stack, sent: list[tuple[str, int | None, bytes | None, bytes]]
) -> dict[str, InferenceReply]:
    topic = TopicCatalogue(stack.env.namespace).replies.name
    ids = {orjson.loads(value)["request_id"] for *_, value in sent}
    asyncio.run(produce(stack.bootstrap, sent))
    deadline = time.monotonic() + 90
    while True:  # the reply topic from its start: earlier tests' replies come first
        every = asyncio.run(read_replies(stack.bootstrap, topic, 10**6, timeout_s=3))
        replies = {r.request_id: r for r in every if r.request_id in ids}
        if len(replies) == len(ids) or time.monotonic() > deadline:
            return replies
        time.sleep(1)


def test_a_queued_job_waits_its_turn_and_a_downgraded_one_gets_the_cheapest_model(
    stack: Stack,
) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    requests, replies_topic = catalogue.requests.name, catalogue.replies.name
    queue = [
        (requests, None, b"globex", team_job("globex", f"q-{i}", replies_topic, "batch"))
        for i in range(15)
    ]
    premium = {"quality": "premium"}
    down = [
        (
            requests,
            None,
            b"initech",
            team_job("initech", f"d-{i}", replies_topic, "bulk", **premium),
        )
        for i in range(4)
    ]
    replies = _replies_to(stack, queue + down)

    # globex: 12 at once (a minute's burst), the next two queued 5 s apart (less the time
    # sending took), in order; the 15th would wait over 12 s, so it is refused.
    queued = [replies[f"q-{i}"] for i in range(15)]
    assert [r.status for r in queued[:14]] == ["ok"] * 14
    assert queued[14].error is not None and queued[14].error.code == "rate_limited"
    assert not any(_took(r, "rate_queued") for r in queued[:12])
    waited = [r for r in queued[12:14] if _took(r, "rate_queued")]
    assert len(waited) == 2, [r.steps for r in queued[12:14]]
    burst_done = max(r.finished_at for r in queued[:12])
    first, second = waited
    assert first.finished_at < second.finished_at  # the queue kept their order
    assert (second.finished_at - burst_done).total_seconds() > 5  # and they did wait

    # initech: two at the routed model, two over the limit served by the cheapest allowed.
    downs = [replies[f"d-{i}"] for i in range(4)]
    assert [r.status for r in downs] == ["ok"] * 4
    routed = {r.model for r in downs[:2]}
    assert len(routed) == 1 and not any(_took(r, "rate_downgraded") for r in downs[:2])
    routed_model = routed.pop() or ""
    config = load_config(stack.env.config_path)
    price = {m.name: m.price_in_per_mtok + m.price_out_per_mtok for m in config.models}
    for reply in downs[2:]:
        step = next(s for s in reply.steps if s.kind == "rate_downgraded")
        assert reply.model == step.model != routed_model
        assert price[reply.model or ""] < price[routed_model]


def _took(reply: InferenceReply, kind: str) -> bool:
    return any(step.kind == kind for step in reply.steps)


def _set_down(stack: Stack, models: list[str], down: bool) -> None:
    admin = (stack.simulator_url or "").removesuffix("/v1")
    for model in models:
        response = httpx.post(
            f"{admin}/admin/models/{model}",
            json={"down": down},
            headers=stack.admin_headers(),
            timeout=5,
        )
        response.raise_for_status()


def _team_spend(stack: Stack, tenant: str, scope: str) -> dict[str, float]:
    snapshot = held_by_one(budget_pages(stack, ROUTER_PORTS), tenant)
    spend: dict[str, float] = snapshot.get("scopes", {}).get(scope, {})
    return spend


def test_a_hard_team_budget_holds_when_jobs_fail_over_to_a_dearer_model(stack: Stack) -> None:
    """1,000 jobs at once against a $1.00 team budget, while the two cheaper models are
    down: every job routed to sim-small fails over to sim-large, about 40 times dearer.
    (Reserving only the first model's cost, all 1,000 were admitted and spent about $5.)"""
    catalogue = TopicCatalogue(stack.env.namespace)
    requests = [
        InferenceRequest(
            request_id=f"cap-{i}",
            tenant="initech",
            team="capped",
            task="chat",
            max_tokens=256,
            messages=[ChatMessage(role="user", content=f"({i}) {LONG_PROMPT}")],
        )
        for i in range(1000)
    ]

    async def send() -> list[InferenceReply]:
        async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
            futures = [await client.submit(r) for r in requests]
            await client.flush()
            return list(await asyncio.wait_for(asyncio.gather(*futures), 180))

    _set_down(stack, ["sim-small", "sim-medium"], down=True)
    try:
        replies = asyncio.run(send())
    finally:
        _set_down(stack, ["sim-small", "sim-medium"], down=False)
    deadline = time.monotonic() + 60
    while (spend := _team_spend(stack, "initech", "team:capped")).get("reserved_usd", 1) > 1e-9:
        assert time.monotonic() < deadline, f"reservations never settled: {spend}"
        time.sleep(0.5)

    ok = [r for r in replies if r.status == "ok"]
    refused = [r for r in replies if r.error is not None and r.error.code == "budget_exhausted"]
    assert len(ok) + len(refused) == 1000 and ok and refused
    failed_over = [r for r in ok if r.attempts and r.attempts[0].model != r.model]
    assert failed_over, "no job failed over: the test would prove nothing"
    assert {r.model for r in ok} == {"sim-large"}
    # Spent is what the answered jobs cost, and it stays within the cap: each job held
    # what its dearest model would cost, so no failover spent what was not reserved.
    assert spend["spent_usd"] == pytest.approx(sum(r.cost_usd for r in ok), rel=1e-6)
    assert spend["spent_usd"] <= TEAM_CAP_USD


MARKERS = {"restricted": "[class-restricted]", "confidential": "[class-confidential]"}
# In every confidential prompt: redacted before any provider but onprem sees it.
CONFIDENTIAL_EMAIL = "jo.bloggs@example.com"


def _random_job(rng: random.Random, i: int) -> InferenceRequest:
    """A job with random data class, tier, task, priority, and sometimes a pinned model or
    a provider list: everything that could steer restricted data somewhere it must not go."""
    data_class = rng.choice(
        [None, "public", "internal", "confidential", "restricted", "restricted"]
    )
    marker = MARKERS.get(data_class or "", "")
    if data_class == "confidential":
        marker += f" mail {CONFIDENTIAL_EMAIL}"
    fields: dict[str, Any] = {
        "quality": rng.choice([None, "economy", "balanced", "premium"]),
        "task": rng.choice([None, "chat", "code", "math", "extraction"]),
        "priority": rng.choice([None, "interactive", "batch"]),
    }
    if rng.random() < 0.2:
        fields["model"] = rng.choice(["sim-small", "sim-medium", "sim-large", "sim-local"])
    if rng.random() < 0.1:
        fields["allowed_providers"] = rng.sample(["sim", "onprem"], rng.randint(1, 2))
    return InferenceRequest(
        request_id=f"dc-{i}",
        tenant=rng.choice((*TENANTS, "initech")),
        data_classification=data_class,
        max_tokens=32,
        messages=[ChatMessage(role="user", content=f"{marker} record {i}: {rng.random()}")],
        **fields,
    )


def test_restricted_data_reaches_no_disallowed_model_in_a_random_run(stack: Stack) -> None:
    """1,000 random jobs while sim-local, the one model cleared for restricted data, fails
    a third of its calls. The simulator counts the prompts carrying each class's marker per
    model: the providers' own record of where the data went."""
    config = load_config(stack.env.config_path)
    cleared = {c: {m.name for m in config.models if c in m.data_classes} for c in MARKERS}
    rng = random.Random(1406)
    jobs = [_random_job(rng, i) for i in range(1000)]
    admin = (stack.simulator_url or "").removesuffix("/v1")
    headers = stack.admin_headers()

    async def send() -> list[InferenceReply]:
        catalogue = TopicCatalogue(stack.env.namespace)
        async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
            futures = [await client.submit(job) for job in jobs]
            await client.flush()
            _, waiting = await asyncio.wait(futures, timeout=180)
            missing = [jobs[i] for i, f in enumerate(futures) if f in waiting]
            assert not missing, f"{len(missing)} jobs unanswered after 180 s: " + ", ".join(
                f"{j.request_id} ({j.tenant}, {j.data_classification}, model {j.model}, "
                f"providers {j.allowed_providers})"
                for j in missing[:10]
            )
            return [f.result() for f in futures]

    watched = [*MARKERS.values(), CONFIDENTIAL_EMAIL]
    httpx.post(f"{admin}/admin/watch", json={"markers": watched},
               headers=headers, timeout=5).raise_for_status()  # fmt: skip
    httpx.post(f"{admin}/admin/models/sim-local", json={"error_rate": 0.33},
               headers=headers, timeout=5).raise_for_status()  # fmt: skip
    try:
        replies = asyncio.run(send())
    finally:
        httpx.post(f"{admin}/admin/models/sim-local", json={"error_rate": 0.0},
                   headers=headers, timeout=5).raise_for_status()  # fmt: skip
    stats = httpx.get(f"{admin}/admin/stats", headers=headers, timeout=5).json()["models"]

    for data_class, marker in MARKERS.items():
        reached = {name for name, model in stats.items() if model["watched"].get(marker)}
        assert reached, f"no {data_class} job reached any model: the run proves nothing"
        assert reached <= cleared[data_class], f"{data_class} data reached {reached}"
    # Confidential prompts reached external models only with the address redacted.
    external = {m.name for m in config.models if m.provider not in ("onprem",)}
    assert any(stats[m]["watched"].get(MARKERS["confidential"]) for m in external)
    assert not any(stats[m]["watched"].get(CONFIDENTIAL_EMAIL) for m in external)
    restricted = [r for job, r in zip(jobs, replies, strict=True)
                  if job.data_classification == "restricted"]  # fmt: skip
    answered = [r for r in restricted if r.status == "ok"]
    refused = [r for r in restricted if r.status != "ok"]
    assert answered and refused, "the run must both serve and refuse restricted jobs"
    assert all(a.model in cleared["restricted"] for r in restricted for a in r.attempts)
    assert all(r.error is not None and r.error.code for r in refused)
    failed_calls = sum(1 for r in restricted for a in r.attempts if a.outcome != "ok")
    assert failed_calls, "sim-local never failed: no fallback was tempted"
    seen = {m: stats[m]["watched"] for m in stats}
    print(f"restricted: {len(answered)} answered, {len(refused)} refused, {failed_calls} "
          f"failed calls; markers seen per model: {seen}")  # fmt: skip


def test_a_config_applied_live_changes_routing_on_every_worker(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both routers and the provider worker switch to a version `config apply` publishes,
    and its version is on the rows of what it routed; a config that is invalid or that
    changes what needs a restart is refused and nothing is published."""
    point_cli_at(stack.env, monkeypatch)
    monkeypatch.setenv(CLUSTER_KEY_ENV, stack.cluster_key)
    monkeypatch.setenv("SWITCHYARD_SIMULATOR_URL", stack.simulator_url or "")  # as workers
    file_version = load_config(stack.env.config_path).version
    raw: dict[str, Any] = yaml.safe_load(stack.env.config_path.read_text())

    def variant(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        edited = copy.deepcopy(raw)
        change(edited)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(edited))
        return path

    bad = variant("bad.yaml", lambda c: c["tenants"]["acme"].update(budget_usd=-1))
    restart = variant("restart.yaml", lambda c: c["models"][0].update(max_concurrency=7))
    assert main(["config", "apply", str(bad)]) == 2
    assert main(["config", "apply", str(restart)]) == 2
    assert "max_concurrency" in capsys.readouterr().err
    config_topic = TopicCatalogue(stack.env.namespace).config.name
    assert _versions(stack, config_topic) == {file_version}, "a refused config was published"

    tenants = ("acme", "globex", "initech")
    pages = budget_pages(stack, ROUTER_PORTS)
    holders = [set(page) & set(tenants) for page in pages]
    assert all(holders), f"a router holds none of {tenants}: {holders}"
    onprem = variant("onprem.yaml", lambda c: [
        t.update(allowed_providers=["onprem"]) for t in c["tenants"].values()
    ])  # fmt: skip
    applied_version = load_config(onprem).version
    assert main(["config", "apply", str(onprem), "--by", "ops-test"]) == 0
    applied_at = time.monotonic()
    switched_s, round_ = None, 0
    while switched_s is None:
        replies = asyncio.run(_one_job_each(stack, tenants, f"live-{round_}"))
        # A provider already on the new config refuses a job routed under the old one
        # (its chain leaves onprem); such a refusal carries no plan, hence None here.
        versions = {r.routing.plan.config_version if r.routing and r.routing.plan else None
                    for r in replies}  # fmt: skip
        if versions == {applied_version}:
            switched_s = time.monotonic() - applied_at
            failed = [(r.status, r.error) for r in replies if r.model != "sim-local"]
            assert not failed, f"not answered by sim-local: {failed}"
        assert time.monotonic() - applied_at < 60, f"still {versions}"
        round_ += 1
    print(f"every tenant routed by the applied config {switched_s:.1f} s after it was applied")
    assert main(["config", "apply", str(onprem)]) == 0  # the same again: nothing published
    assert _versions(stack, config_topic) == {file_version, applied_version}

    last = f"live-{round_ - 1}-%"
    rows = _rows(stack, "requests", f"request_id LIKE '{last}'", "config_version", len(tenants))
    assert rows == [(applied_version,)] * len(tenants)
    earlier = _rows(stack, "requests", "request_id LIKE 'dc-%'", "DISTINCT config_version")
    assert earlier == [(file_version,)]
    configs = _rows(stack, "configs", "previous != ''", "version, applied_by, previous, diff")
    assert [c[:3] for c in configs] == [(applied_version, "ops-test", file_version)]
    seeds = _rows(stack, "configs", "previous = ''", "version, applied_by")
    assert seeds == [(file_version, seeds[0][1])] and seeds[0][1].endswith("at start")
    diff = configs[0][3].splitlines()
    assert any(line.startswith("+") and "allowed_providers" in line for line in diff)
    assert not any("demo-only" in line for line in diff)  # the tenants' demo secrets


async def _one_job_each(
    stack: Stack, tenants: tuple[str, ...], prefix: str
) -> list[InferenceReply]:
    catalogue = TopicCatalogue(stack.env.namespace)
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
        futures = [
            await client.submit(InferenceRequest(
                request_id=f"{prefix}-{tenant}", tenant=tenant, max_tokens=16,
                messages=[ChatMessage(role="user", content="which model answers me?")],
            ))
            for tenant in tenants
        ]  # fmt: skip
        await client.flush()
        return list(await asyncio.wait_for(asyncio.gather(*futures), 60))


def _versions(stack: Stack, topic: str) -> set[str]:
    """The versions on the config topic: the workers' seed (each may have written it) and
    every version applied since."""

    async def keys() -> set[str]:
        return {r.key.decode() async for r in read_to_end(stack.bootstrap, topic)}

    return asyncio.run(keys())


def _rows(
    stack: Stack, table: str, where: str, columns: str, at_least: int = 1
) -> list[tuple[Any, ...]]:
    """Rows of ``table`` once ``at_least`` have landed (telemetry takes a second or two)."""
    sql = f"SELECT {columns} FROM {telemetry_table(stack.env, table)} FINAL WHERE {where}"
    deadline = time.monotonic() + 30
    while True:
        _, rows = run_query(stack.env, sql + " ORDER BY 1")
        if len(rows) >= at_least or time.monotonic() > deadline:
            return [tuple(r) for r in rows]
        time.sleep(0.5)


async def _send(stack: Stack) -> None:
    catalogue = TopicCatalogue(stack.env.namespace)
    async with SwitchyardClient(stack.bootstrap, catalogue, keys=sample_keys()) as client:
        good = [
            InferenceRequest(
                request_id=f"{tenant}-good-{i}",
                tenant=tenant,
                max_tokens=32,
                messages=[ChatMessage(role="user", content=f"{PROMPT} ({i})")],
            )
            for tenant in TENANTS
            for i in range(3)
        ]
        futures = [await client.submit(r) for r in good]
        for tenant in TENANTS:  # a wrongly typed field: dead-lettered with its text
            bad = {
                "request_id": f"{tenant}-bad",
                "tenant": tenant,
                "max_tokens": "lots",
                "messages": [{"role": "user", "content": PROMPT}],
            }
            await client.send_raw(orjson.dumps(bad), key=tenant, sign_as=tenant)
        await client.flush()
        replies = await asyncio.wait_for(asyncio.gather(*futures), 120)
    assert [r.status for r in replies] == ["ok"] * len(good)


def _telemetry(stack: Stack, table: str) -> str:
    """Every value of every row of ``table``, as text."""
    _, rows = run_query(stack.env, f"SELECT * FROM {telemetry_table(stack.env, table)}")
    return "\n".join("\t".join(str(v) for v in row) for row in rows)


def _forms(value: str) -> set[str]:
    """The value as written, and JSON-escaped once and twice (a job inside a letter)."""
    once = orjson.dumps(value).decode()[1:-1]
    return {value, once, orjson.dumps(once).decode()[1:-1]}


def _wait_for_rows(stack: Stack, n: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    table = telemetry_table(stack.env, "requests")
    sql = (
        f"SELECT request_id, tenant, content_logged, prompt FROM {table} FINAL"
        " WHERE request_id LIKE '%-good-%'"
    )
    deadline = time.monotonic() + timeout_s
    while True:
        columns, rows = run_query(stack.env, sql)
        if len(rows) >= n or time.monotonic() > deadline:
            return [dict(zip(columns, row, strict=True)) for row in rows]
        time.sleep(0.5)


async def _letters(stack: Stack) -> list[bytes]:
    topic = TopicCatalogue(stack.env.namespace).dead_letter.name
    return [record.value async for record in read_to_end(stack.bootstrap, topic)]


def test_every_governance_action_is_audited_with_its_rule_and_config_version(
    stack: Stack,
) -> None:
    """The earlier tests refused, queued and downgraded jobs over limits, refused them over
    a hard budget and by policy; a forged job is added here. Each is in ``audit``."""
    catalogue = TopicCatalogue(stack.env.namespace)
    forged = job("acme", "forged-1", catalogue.replies.name)
    wrong = SigningKey("acme", sample_keys()["acme"].key_id, b"not-acme-s-secret")

    async def send_forged() -> None:
        async with SwitchyardClient(stack.bootstrap, catalogue) as client:
            signature = sign(forged, wrong, datetime.now(UTC))
            await client.send_raw(forged, key="acme", headers=signature)
            await client.flush()

    asyncio.run(send_forged())
    wanted = {"rate_limited", "queued", "downgraded", "denied", "forged"}
    deadline = time.monotonic() + 30
    while True:
        rows = _rows(stack, "audit", "1", "action, rule, tenant, request_id, detail, "
                     "config_version")  # fmt: skip
        if wanted <= {r[0] for r in rows} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rules = {(r[0], r[1]) for r in rows}
    assert {
        ("rate_limited", "rate_limited"), ("queued", "rate_queued"),
        ("downgraded", "rate_downgraded"), ("denied", "budget_exhausted"),
        ("denied", "policy_denied"), ("forged", "signature_invalid"),
    } <= rules, rules  # fmt: skip
    assert all(r[5] for r in rows), [r for r in rows if not r[5]][:3]
    by_request = {(r[0], r[3]): r for r in rows}
    assert by_request[("forged", "forged-1")][2] == "acme"  # the tenant it claimed
    limited = [r for r in rows if r[0] == "rate_limited"]
    assert {r[4].split("'")[0] for r in limited} == {"over team limited", "over team batch"}
    replies_refused = len([r for r in rows if r[1] == "budget_exhausted"])
    assert replies_refused > 0


def test_planted_values_never_reach_clickhouse_dead_letters_or_logs(stack: Stack) -> None:
    asyncio.run(_send(stack))
    rows = _wait_for_rows(stack, 6)
    letters = asyncio.run(_letters(stack))
    tables = {table: _telemetry(stack, table) for table in ("requests", "attempts", "audit")}
    stack.stop()  # logs flushed and closed
    workers = ("router", "router-2", "provider", "telemetry")
    logs = {name: stack.log_path(name).read_text() for name in workers}

    # What was written, and in the shape each tenant's policy says.
    by_tenant = {t: [r for r in rows if r["tenant"] == t] for t in TENANTS}
    assert len(by_tenant["acme"]) == 3 and len(by_tenant["globex"]) == 3
    for row in by_tenant["acme"]:
        assert row["content_logged"] == "redacted"
        assert "[CARD]" in row["prompt"] and "[EMPLOYEE_ID]" in row["prompt"]
    audited = [line.split("\t") for line in tables["audit"].splitlines()]
    redacted = [r for r in audited if r[0].startswith("acme-good-") and r[4] == "redacted"]
    assert len(redacted) == 3 and all("EMPLOYEE_ID" in r[6].split(",") for r in redacted)
    assert {(r["content_logged"], r["prompt"]) for r in by_tenant["globex"]} == {("off", "")}
    kept = {letter.tenant: letter for letter in map(DeadLetter.model_validate_json, letters)}
    assert kept["acme"].payload_kept == "redacted" and "[IBAN]" in kept["acme"].payload
    assert (kept["globex"].payload_kept, kept["globex"].payload) == ("hash", "")

    # Where nothing planted may be.
    places = {
        **tables,
        "dead letters": b"\n".join(letters).decode(),
        **{f"{name} log": text for name, text in logs.items()},
    }
    found = {
        (place, value)
        for place, text in places.items()
        for value in VALUES
        if any(form in text for form in _forms(value))
    }
    assert found == set()
