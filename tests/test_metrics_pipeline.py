"""Each worker's /metrics on a real stack (broker, simulator, router, provider, telemetry
as processes): after a run of jobs, the counts match the jobs sent and the state gauges
are there, read over HTTP from the addresses the workers announced."""

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from commands.demo import demo_requests, publish_and_collect, wait_for_telemetry
from streams.local.stack import Stack
from streams.observe.endpoint import endpoints
from streams.topics import TopicCatalogue
from tests.helpers import Engine, fresh_namespace, running_stack, sample_config, sample_keys

pytestmark = pytest.mark.slow

JOBS = 60
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def stack(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(engine, fresh_namespace(), tmp_path_factory.mktemp("metrics")) as s:
        yield s


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def until(check: Callable[[], bool], timeout_s: float = 60) -> None:
    """Wait for ``check`` (counts settle after replies: settlements, telemetry inserts)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the metrics never showed it"
        time.sleep(0.5)


def test_each_worker_exports_its_metrics_while_jobs_run(stack: Stack) -> None:
    urls = dict(stack.metric_urls())
    pids = {name: p.pid for name, p in stack.processes.items()}
    url = {role: urls[f"{role} (pid {pids[role]})"] for role in ("router", "provider", "telemetry")}
    assert {e["role"] for e in endpoints(stack.env.state_dir)} == set(url)
    assert all(u.startswith("http://127.0.0.1:") for u in url.values())

    requests = demo_requests(sample_config(), JOBS, "metrics")
    catalogue = TopicCatalogue(stack.env.namespace)
    replies, _ = asyncio.run(
        publish_and_collect(stack.bootstrap, catalogue, requests, 120, keys=sample_keys())
    )
    assert len(replies) == JOBS and {r.status for r in replies.values()} == {"ok"}
    assert wait_for_telemetry(stack.env, "metrics", JOBS, timeout_s=60) == JOBS

    router = scrape(url["router"])
    assert total(router, "switchyard_records_in_total", topic="requests") == JOBS
    assert total(router, "switchyard_routing_decisions_total") == JOBS
    assert total(router, "switchyard_records_out_total", output="dispatch") == JOBS
    assert total(router, "switchyard_router_batch_duration_seconds_count") >= 1
    assert total(router, "switchyard_budget_limit_usd", tenant="acme") == 50
    assert {ls for n, ls in router if n == "switchyard_consumer_lag_records"}

    provider = scrape(url["provider"])
    assert total(provider, "switchyard_records_in_total", topic="dispatch") == JOBS
    assert total(provider, "switchyard_replies_total", status="ok") == JOBS
    calls = total(provider, "switchyard_provider_request_duration_seconds_count", outcome="ok")
    assert calls == JOBS
    buckets = total(provider, "switchyard_provider_request_duration_seconds_bucket", le="+Inf")
    assert buckets == JOBS
    model_count = len(sample_config().models)
    states = [v for (n, _), v in provider.items() if n == "switchyard_circuit_state"]
    assert states == [0.0] * model_count
    assert total(provider, "switchyard_jobs_in_flight") == 0
    cost = total(provider, "switchyard_provider_cost_usd_total")
    assert cost > 0

    # Every reply's cost is settled into the tenants' budgets, which the router shows.
    until(
        lambda: total(scrape(url["router"]), "switchyard_budget_spent_usd") == pytest.approx(cost)
    )
    until(
        lambda: (
            total(
                scrape(url["telemetry"]),
                "switchyard_clickhouse_insert_rows_total",
                table="requests",
            )
            >= JOBS
        )
    )
    telemetry = scrape(url["telemetry"])
    assert total(telemetry, "switchyard_records_in_total", topic="telemetry") >= JOBS
    assert total(telemetry, "switchyard_clickhouse_insert_duration_seconds_count") >= 1
    assert total(telemetry, "switchyard_clickhouse_insert_failures_total") == 0
