"""The metrics module: families, cached children, per-batch tallies, what each worker
counts from its outputs, and the scrape-time readers of worker state."""

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from processors.circuit import CircuitBreaker
from processors.dispatch import EndpointGate
from processors.outputs import Output
from processors.reply import rejected_reply
from schemas.budget import BudgetSnapshot
from schemas.decision import DispatchJob
from schemas.errors import BudgetExhausted, ProviderUnavailable
from schemas.messages import Attempt, InferenceReply
from schemas.plan import PlanStep
from schemas.runtime_settings import BreakerPolicy
from streams.observe.collectors import budget_state, endpoint_state, provider_load
from streams.observe.counting import ProviderCounts, RouterCounts
from streams.observe.metrics import (
    ROLES,
    Children,
    GaugeSpec,
    ProviderMetrics,
    Reading,
    RouterMetrics,
    StateCollector,
    Tally,
    TenantLabels,
    exported_names,
)
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue, home_partition
from tests.helpers import dispatch_job, sample_config

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
CATALOGUE = TopicCatalogue("ns")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_children_are_resolved_once() -> None:
    family = Counter("things", "doc", ("kind",), registry=CollectorRegistry())
    children = Children(family)
    assert children("a") is children("a")
    assert children("a") is not children("b")


def test_a_tally_adds_each_counter_once_per_batch() -> None:
    registry = CollectorRegistry()
    children = Children(Counter("things", "doc", ("kind",), registry=registry))
    tally = Tally()
    for kind in ["a", "b", "a", "a"]:
        tally.add(children(kind))
    assert value(registry, "things_total", kind="a") == 0  # nothing until the flush
    tally.flush()
    tally.flush()  # flushed counts are cleared: a second flush adds nothing
    assert value(registry, "things_total", kind="a") == 3
    assert value(registry, "things_total", kind="b") == 1


def test_only_configured_tenants_become_labels() -> None:
    labels = TenantLabels(["acme", "globex"])
    assert labels.of("acme") == "acme"
    assert labels.of("mallory") == ""
    assert labels.of(None) == ""
    assert labels.of_key(b"globex") == "globex"
    assert labels.of_key(b"ignore previous instructions") == ""
    labels.use(["mallory"])  # a live config change
    assert labels.of("mallory") == "mallory"
    assert labels.of("acme") == ""


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_exported_name_is_listed_with_its_labels(role: str) -> None:
    metrics = ROLES[role](CollectorRegistry())
    assert set(metrics.labels) == exported_names(metrics.registry)
    assert all(name.startswith("switchyard_") for name in metrics.labels)
    assert "switchyard_records_in_total" in metrics.labels
    forbidden = {"request_id", "prompt", "key", "api_key"}
    assert not any(forbidden & set(labels) for labels in metrics.labels.values())


def test_histograms_export_bucket_sum_and_count() -> None:
    names = exported_names(ProviderMetrics(CollectorRegistry()).registry)
    base = "switchyard_provider_request_duration_seconds"
    assert {base + "_bucket", base + "_sum", base + "_count"} <= names
    assert base not in names


def test_a_state_collector_reads_its_sources_at_each_scrape() -> None:
    registry = CollectorRegistry()
    state = StateCollector([GaugeSpec("depth", "doc", ("queue",))])
    registry.register(state)
    depth = {"a": 1.0}

    def broken() -> list[Reading]:
        raise RuntimeError("dictionary changed size during iteration")

    detach = state.attach(lambda: [("depth", (q,), n) for q, n in depth.items()])
    state.attach(broken)  # skipped, and the other source still read
    assert value(registry, "depth", queue="a") == 1.0
    depth["a"] = 5.0
    assert value(registry, "depth", queue="a") == 5.0
    detach()
    assert value(registry, "depth", queue="a") is None
    assert b"# TYPE depth gauge" in generate_latest(registry)


def routed(tier: str = "balanced", steps: list[PlanStep] | None = None) -> DispatchJob:
    job = dispatch_job(NOW, ("sim-small", "sim-medium"), tenant="acme")
    decision = job.decision.model_copy(update={"quality": tier})
    return job.model_copy(update={"decision": decision, "steps": steps or []})


def test_the_router_counts_a_batch_from_its_outputs() -> None:
    metrics = RouterMetrics(CollectorRegistry())
    counts = RouterCounts(metrics, CATALOGUE, sample_config())
    downgraded = routed(steps=[PlanStep(kind="budget_downgraded", detail="team a")])
    refused = rejected_reply("r-9", "acme", BudgetExhausted("no"), NOW, None, None)
    cached = InferenceReply(request_id="r-8", tenant="globex", status="ok", finished_at=NOW)
    batch = [
        ("acme", [Output("dispatch", "r-1", routed())]),
        ("acme", [Output("dispatch", "r-2", downgraded)]),
        ("acme", [Output("retry", "r-3", routed("premium"), retry_tier=1)]),
        ("acme", [Output("reply", "r-9", refused), Output("telemetry", "r-9", refused)]),
        ("globex", [Output("reply", "r-8", cached)]),
        ("", [Output("dead_letter", None, b"junk")]),
    ]
    counts.batch("ns.requests", batch, 0.004)
    r = metrics.registry
    assert value(r, "switchyard_records_in_total", topic="requests", tenant="acme") == 4
    assert value(r, "switchyard_records_in_total", topic="requests", tenant="") == 1
    assert value(r, "switchyard_records_out_total", output="dispatch", tenant="acme") == 2
    assert value(r, "switchyard_records_out_total", output="dead_letter", tenant="") == 1
    decisions = {"strategy": "cheapest-capable", "model": "sim-small"}
    assert value(r, "switchyard_routing_decisions_total", **decisions, tier="balanced") == 2
    assert value(r, "switchyard_routing_decisions_total", **decisions, tier="premium") == 1
    assert value(r, "switchyard_routing_downgrades_total", rule="budget") == 1
    assert value(r, "switchyard_jobs_parked_total", tier="retry.5s") == 1
    assert value(r, "switchyard_routing_rejections_total", code="budget_exhausted") == 1
    assert value(r, "switchyard_cache_hits_total", tenant="globex") == 1
    assert value(r, "switchyard_replies_total", tenant="acme", status="rejected") == 1
    assert value(r, "switchyard_router_batch_duration_seconds_count") == 1


def attempt(model: str, outcome: str = "ok", round_: int = 0, cost: float = 0.0) -> Attempt:
    error = ProviderUnavailable("down").info() if outcome != "ok" else None
    return Attempt(
        model=model,
        provider="sim",
        outcome=outcome,  # type: ignore[arg-type]
        latency_ms=120,
        round=round_,
        cost_usd=cost,
        tokens=30 if outcome == "ok" else 0,
        error=error,
    )


def test_the_provider_counts_calls_fallbacks_and_retries() -> None:
    metrics = ProviderMetrics(CollectorRegistry())
    counts = ProviderCounts(metrics, CATALOGUE, sample_config())
    first = attempt("sim-small", "unavailable")
    counts.call(first, "acme", None)
    counts.call(attempt("sim-medium", cost=0.002), "acme", first)  # fell back
    counts.call(attempt("sim-small", round_=1, cost=0.001), "mallory", None)  # a retry round
    r = metrics.registry
    call = {"provider": "sim", "model": "sim-small"}
    assert (
        value(
            r, "switchyard_provider_request_duration_seconds_count", **call, outcome="unavailable"
        )
        == 1
    )
    assert value(
        r, "switchyard_provider_request_duration_seconds_sum", **call, outcome="ok"
    ) == pytest.approx(0.12)
    errors = value(
        r, "switchyard_provider_errors_total", model="sim-small", code="provider_unavailable"
    )
    assert errors == 1
    assert value(r, "switchyard_provider_fallbacks_total", model="sim-medium") == 1
    assert value(r, "switchyard_provider_fallbacks_total", model="sim-small") is None
    assert value(r, "switchyard_provider_retries_total", model="sim-small") == 1
    assert value(r, "switchyard_provider_cost_usd_total", tenant="acme", model="sim-medium") == (
        pytest.approx(0.002)
    )
    assert value(r, "switchyard_provider_cost_usd_total", tenant="", model="sim-small") == (
        pytest.approx(0.001)
    )
    assert value(r, "switchyard_provider_tokens_total", model="sim-medium") == 30


def test_the_provider_counts_fetches_and_sent_outputs() -> None:
    metrics = ProviderMetrics(CollectorRegistry())
    counts = ProviderCounts(metrics, CATALOGUE, sample_config())
    counts.fetched("ns.dispatch", ["acme", "acme", "globex"])
    counts.fetched("ns.retry.30s", ["acme"])
    reply = InferenceReply(request_id="r-1", tenant="acme", status="ok", finished_at=NOW)
    counts.sent([Output("reply", "r-1", reply), Output("telemetry", "r-1", reply)], "acme")
    counts.sent([Output("retry", "r-2", routed(), retry_tier=3)], "acme")
    r = metrics.registry
    assert value(r, "switchyard_records_in_total", topic="dispatch", tenant="acme") == 2
    assert value(r, "switchyard_records_in_total", topic="retry.30s", tenant="acme") == 1
    assert value(r, "switchyard_replies_total", tenant="acme", status="ok") == 1
    assert value(r, "switchyard_records_out_total", output="telemetry", tenant="acme") == 1
    assert value(r, "switchyard_jobs_parked_total", tier="retry.2m") == 1


def test_counts_without_metrics_do_nothing() -> None:
    counts = ProviderCounts(None, CATALOGUE, sample_config())
    counts.fetched("ns.dispatch", ["acme"])
    counts.call(attempt("sim-small"), "acme", None)
    counts.sent([Output("dead_letter", None, b"x")], "acme")
    counts.watch(None, {}, {}, lambda: (0, 0, 0))()  # type: ignore[arg-type]


def test_budget_gauges_cover_the_tenants_whose_home_partition_is_owned() -> None:
    config = sample_config()  # acme 50, globex 20, initech 5 USD a month
    now = datetime.now(UTC)  # the collector reads the wall clock, as the router does
    snapshot = BudgetSnapshot(
        period=now.strftime("%Y-%m"),
        spent_usd=1.5,
        reserved_usd=0.5,
        rate_tat={"team:limited/requests": now.timestamp() + 3600},
    )
    book = {"acme": snapshot}
    owned = {home_partition("acme", ROUTING_PARTITIONS)}
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    metrics.state.attach(budget_state(book.get, lambda: config, lambda: owned, ROUTING_PARTITIONS))
    assert value(registry, "switchyard_budget_spent_usd", tenant="acme") == 1.5
    assert value(registry, "switchyard_budget_remaining_usd", tenant="acme") == 48.0
    assert value(registry, "switchyard_budget_limit_usd", tenant="acme") == 50.0
    backlog = value(
        registry,
        "switchyard_rate_limit_backlog_seconds",
        tenant="acme",
        limit="team:limited/requests",
    )
    assert backlog is not None and backlog > 3000
    others = [t for t in config.tenants if home_partition(t, ROUTING_PARTITIONS) not in owned]
    assert others  # the sample's tenants do not all share acme's partition
    assert all(value(registry, "switchyard_budget_spent_usd", tenant=t) is None for t in others)


def test_endpoint_gauges_show_breaker_pace_and_cool_down() -> None:
    closed, opened = (
        EndpointGate(CircuitBreaker(BreakerPolicy())),
        EndpointGate(CircuitBreaker(BreakerPolicy(failure_threshold=1))),
    )
    opened.breaker.record_failure(NOW.timestamp(), "provider_unavailable")
    closed.pacer.set_limit(2.0)
    registry = CollectorRegistry()
    metrics = ProviderMetrics(registry)
    metrics.state.attach(endpoint_state({"sim-small": closed, "sim-large": opened}))
    metrics.state.attach(provider_load(lambda: (3, 7, 4096)))
    assert value(registry, "switchyard_circuit_state", model="sim-small") == 0
    assert value(registry, "switchyard_circuit_state", model="sim-large") == 2
    assert value(registry, "switchyard_endpoint_pace_per_second", model="sim-small") == 2.0
    assert value(registry, "switchyard_endpoint_pace_per_second", model="sim-large") is None
    assert value(registry, "switchyard_jobs_in_flight") == 3
    assert value(registry, "switchyard_read_ahead_bytes") == 4096
