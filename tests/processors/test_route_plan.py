"""route_request's plan: strategy per tenant and task, targets, cascades, shadows,
learned latency in policy, demotion of failing models, and prepared-topic budgets."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.budget import Position, reserve
from processors.latency import LatencyEstimate
from processors.router import Rejected, Replayed, Routed, RoutingContext, route_request
from processors.strategies import Learned
from schemas.budget import BudgetSnapshot
from schemas.config import SwitchyardConfig, TenantSpec
from schemas.messages import InferenceRequest
from schemas.plan import AnswerCheck
from tests.helpers import FakePredictor, make_request, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = sample_config()

# "hello there" as chat with the sample's 256 output tokens: cheapest first
# sim-local (chat 0.65), sim-small (0.75), sim-medium (0.85), sim-large (0.92).
CODE = "Fix this bug in my python function"
MATH = "solve 2 + 2"


def configure(
    tenants: dict[str, dict[str, Any]] | None = None, routing: dict[str, Any] | None = None
) -> SwitchyardConfig:
    raw = BASE.model_dump()
    for name, changes in (tenants or {}).items():
        raw["tenants"][name] = {**raw["tenants"].get(name, {}), **changes}
    raw["routing"].update(routing or {})
    return SwitchyardConfig.model_validate(raw)


def routed(
    request: InferenceRequest,
    config: SwitchyardConfig = BASE,
    context: RoutingContext | None = None,
    snapshot: BudgetSnapshot | None = None,
    offset: int = 0,
    pre_step: str | None = None,
) -> Routed:
    at = Position("prepared" if pre_step else "requests", 0, offset)
    result = route_request(
        request, config, snapshot, at, NOW, context or RoutingContext(), pre_step=pre_step
    )
    assert isinstance(result, Routed), result
    return result


def cost(result: Routed, model: str) -> float:
    return next(v.estimated_cost_usd for v in result.decision.candidates if v.model == model)


def chain_cost(result: Routed) -> float:
    """What a chain reserves: its dearest model's estimate (any of them may answer)."""
    decision = result.decision
    return max(cost(result, m) for m in [decision.chosen_model, *decision.fallback_models])


def observed(ewma_ms: float = 100, p95_ms: float = 200, error_rate: float = 0.0) -> LatencyEstimate:
    return LatencyEstimate(ewma_ms=ewma_ms, p95_ms=p95_ms, error_rate=error_rate, samples=50)


# --- which strategy --------------------------------------------------------------

PRECEDENCE = configure(
    tenants={
        "acme": {"strategy": "learned", "strategy_by_task": {"math": "cheapest-capable"}},
        "initech": {"strategy_by_task": {"chat": "rules"}},
    },
    routing={"strategy": "rules", "strategy_by_task": {"code": "cascade", "math": "cascade"}},
)


@pytest.mark.parametrize(
    ("tenant", "task", "expected"),
    [
        ("acme", "math", "cheapest-capable"),  # tenant.strategy_by_task
        ("acme", "code", "learned"),  # tenant.strategy beats routing.strategy_by_task
        ("acme", "chat", "learned"),  # tenant.strategy
        ("initech", "chat", "rules"),  # tenant.strategy_by_task without tenant.strategy
        ("initech", "code", "cascade"),  # then routing.strategy_by_task
        ("globex", "math", "cascade"),  # routing.strategy_by_task
        ("globex", "chat", "rules"),  # routing.strategy
        ("nobody", "code", "cascade"),  # unknown tenants get the routing defaults
    ],
)
def test_strategy_for_precedence(tenant: str, task: str, expected: str) -> None:
    assert PRECEDENCE.strategy_for(tenant, task) == expected


def test_requests_without_a_data_class_get_the_configured_default() -> None:
    # Every stage (policy, router and provider telemetry, rejections) asks the config.
    confidential = configure(routing={"data_classification": "confidential"})
    assert confidential.data_class_for(None) == "confidential"
    assert confidential.data_class_for("public") == "public"
    assert BASE.data_class_for(None) == "internal"


def test_sample_config_routes_cheapest_capable_by_default() -> None:
    assert BASE.strategy_for("acme", "chat") == "cheapest-capable"
    assert routed(make_request()).explanation.strategy == "cheapest-capable"


@pytest.mark.parametrize(
    ("tenant", "prompt", "expected"),
    [
        ("acme", MATH, "cheapest-capable"),
        ("acme", CODE, "learned"),
        ("globex", CODE, "cascade"),
        ("initech", "hello there", "rules"),
    ],
)
def test_route_request_uses_the_strategy_for_tenant_and_classified_task(
    tenant: str, prompt: str, expected: str
) -> None:
    result = routed(make_request(prompt, tenant=tenant), PRECEDENCE)
    assert result.explanation.strategy == expected
    assert result.decision.strategy == expected


def test_rules_strategy_reads_the_routing_table() -> None:
    config = configure(
        routing={"strategy": "rules", "rules": {"chat": {"balanced": ["sim-large"]}}}
    )
    result = routed(make_request(), config)
    assert result.decision.chosen_model == "sim-large"
    assert result.explanation.reason.startswith("rule chat/balanced")


# --- quality target --------------------------------------------------------------


def test_tier_floor_is_the_default_target() -> None:
    result = routed(make_request())
    assert result.decision.chosen_model == "sim-small"
    assert result.decision.plan.quality_target == 0.7


def test_quality_target_overrides_the_tier_floor() -> None:
    result = routed(make_request(quality_target=0.9))
    assert result.decision.chosen_model == "sim-large"
    assert result.decision.plan.quality_target == 0.9
    assert "quality >= 0.90" in result.explanation.reason
    lower = routed(make_request(quality="premium", quality_target=0.6))
    assert lower.decision.chosen_model == "sim-local"
    assert lower.explanation.quality == "premium"


def test_zero_quality_target_is_a_target_too() -> None:
    result = routed(make_request(quality_target=0.0))
    assert result.decision.plan.quality_target == 0.0
    assert result.decision.chosen_model == "sim-local"


# --- plan fields -----------------------------------------------------------------


def test_plain_route_plan_mirrors_the_decision() -> None:
    result = routed(make_request())
    plan = result.decision.plan
    assert plan.model == result.decision.chosen_model == "sim-small"
    assert plan.fallbacks == result.decision.fallback_models == ["sim-medium", "sim-large"]
    assert (plan.cache, plan.pre_step, plan.shadow, plan.router_version) == (
        "off",
        None,
        None,
        None,
    )
    assert plan.cascade == []
    assert plan.check is None
    assert plan.predicted_quality == {}
    assert result.explanation.plan == plan
    assert result.decision.estimated_cost_usd == chain_cost(result)
    assert chain_cost(result) > cost(result, "sim-small")  # a fallback costs more


def test_cache_is_a_miss_only_for_tenants_that_opt_in() -> None:
    config = configure(tenants={"cachey": {"cache": {"enabled": True, "ttl_s": 60}}})
    assert routed(make_request(tenant="cachey"), config).decision.plan.cache == "miss"
    assert routed(make_request(tenant="acme"), config).decision.plan.cache == "off"


CASCADING = configure(
    tenants={"acme": {"strategy": "cascade"}},
    routing={"cascade": {"max_rungs": 2, "check": {"kind": "regex", "pattern": "ok"}}},
)


def test_cascade_plan_carries_ladder_and_check() -> None:
    result = routed(make_request(), CASCADING)
    plan = result.decision.plan
    assert plan.cascade == ["sim-local", "sim-small"]
    assert plan.check == AnswerCheck(kind="regex", pattern="ok")
    assert plan.model == result.decision.chosen_model == "sim-local"
    assert plan.fallbacks[0] == "sim-small"
    assert result.explanation.strategy == "cascade"


def test_cascade_reserves_every_rungs_estimate() -> None:
    result = routed(make_request(), CASCADING)
    expected = cost(result, "sim-local") + cost(result, "sim-small")
    assert result.decision.estimated_cost_usd == pytest.approx(expected)
    assert result.snapshot.reserved_usd == pytest.approx(expected)


def test_three_rung_cascade_reserves_all_three() -> None:
    config = configure(
        tenants={"acme": {"strategy": "cascade"}}, routing={"cascade": {"max_rungs": 3}}
    )
    result = routed(make_request(quality="premium"), config)
    assert result.decision.plan.cascade == ["sim-local", "sim-small", "sim-medium"]
    expected = sum(cost(result, m) for m in ("sim-local", "sim-small", "sim-medium"))
    assert result.snapshot.reserved_usd == pytest.approx(expected)


def test_cascade_with_nothing_cheaper_has_no_check() -> None:
    result = routed(make_request(quality="economy"), CASCADING)  # sim-local reaches 0.5
    plan = result.decision.plan
    assert plan.model == "sim-local"
    assert plan.cascade == []
    assert plan.check is None
    assert result.decision.estimated_cost_usd == chain_cost(result)


def test_full_shadow_share_shadows_the_first_fallback() -> None:
    config = configure(routing={"shadow": {"share": 1.0}})
    plan = routed(make_request(), config).decision.plan
    assert plan.shadow == plan.fallbacks[0] == "sim-medium"


def test_zero_shadow_share_shadows_nothing() -> None:
    config = configure(routing={"shadow": {"share": 0.0}})
    assert routed(make_request(), config).decision.plan.shadow is None


def test_learned_plan_carries_predictions_and_router_version() -> None:
    config = configure(tenants={"acme": {"strategy": "learned"}})
    fake = FakePredictor({"sim-local": 0.8, "sim-small": 0.5})
    result = routed(make_request(), config, RoutingContext(learned=Learned(fake, {})))
    plan = result.decision.plan
    assert plan.model == "sim-local"  # predicted 0.8 reaches 0.7; configured 0.65 did not
    assert plan.predicted_quality == {"sim-local": 0.8, "sim-small": 0.5}
    assert plan.router_version == "router-v7"


def test_router_version_only_for_the_learned_strategy() -> None:
    context = RoutingContext(learned=Learned(FakePredictor({"sim-local": 0.99}), {}))
    plan = routed(make_request(), BASE, context).decision.plan
    assert plan.router_version is None
    assert plan.predicted_quality == {}
    assert plan.model == "sim-small"


def test_learned_strategy_without_a_model_has_no_version() -> None:
    config = configure(tenants={"acme": {"strategy": "learned"}})
    plan = routed(make_request(), config).decision.plan
    assert plan.router_version is None
    assert plan.model == "sim-small"


def test_pre_step_is_recorded_in_the_plan() -> None:
    plan = routed(make_request(), pre_step="acme.prepared").decision.plan
    assert plan.pre_step == "acme.prepared"


def test_rejection_still_explains_the_plan() -> None:
    config = configure(tenants={"acme": {"cache": {"enabled": True}}})
    request = make_request(model="sim-large", data_classification="restricted")
    result = route_request(request, config, None, Position("requests", 0, 0), NOW)
    assert isinstance(result, Rejected)
    assert result.explanation.plan is not None
    assert result.explanation.plan.model is None
    assert result.explanation.plan.cache == "miss"


# --- observed latency in policy ----------------------------------------------------


def test_observed_p95_over_max_latency_rules_a_model_out() -> None:
    request = make_request(max_latency_ms=1000)
    assert routed(request).decision.chosen_model == "sim-small"  # typical 300 ms
    context = RoutingContext(latency={"sim-small": observed(ewma_ms=400, p95_ms=5000)})
    result = routed(request, context=context)
    assert result.decision.chosen_model == "sim-medium"
    assert result.explanation.rejected["sim-small"] == (
        "expected p95 latency 5000 ms over max_latency_ms"
    )


def test_p95_at_max_latency_is_allowed_and_mean_is_not_what_counts() -> None:
    request = make_request(max_latency_ms=1000)
    at_limit = RoutingContext(latency={"sim-small": observed(ewma_ms=400, p95_ms=1000)})
    assert routed(request, context=at_limit).decision.chosen_model == "sim-small"
    slow_mean = RoutingContext(latency={"sim-small": observed(ewma_ms=5000, p95_ms=900)})
    assert routed(request, context=slow_mean).decision.chosen_model == "sim-small"


def test_observed_mean_beyond_the_deadline_rules_a_model_out() -> None:
    request = make_request(deadline=NOW + timedelta(seconds=1))
    context = RoutingContext(
        latency={
            "sim-small": observed(ewma_ms=1500, p95_ms=1600),
            # a slow tail but a quick mean: the deadline is judged on the mean
            "sim-medium": observed(ewma_ms=700, p95_ms=5000),
        }
    )
    result = routed(request, context=context)
    assert result.decision.chosen_model == "sim-medium"
    assert result.explanation.rejected["sim-small"] == (
        "expected latency 1500 ms exceeds the 1000 ms to the deadline"
    )
    # unobserved models are judged on typical_latency_ms (sim-large: 2000 ms)
    assert "sim-large" in result.explanation.rejected


def test_deadline_without_observations_uses_typical_latency() -> None:
    result = routed(make_request(deadline=NOW + timedelta(seconds=1)))
    assert result.decision.chosen_model == "sim-small"
    assert result.explanation.rejected == {
        "sim-large": "expected latency 2000 ms exceeds the 1000 ms to the deadline"
    }


# --- demotion of failing models -------------------------------------------------------


def test_model_with_a_high_observed_error_rate_is_demoted() -> None:
    context = RoutingContext(latency={"sim-small": observed(error_rate=0.9)})
    result = routed(make_request(), context=context)
    assert result.decision.chosen_model == "sim-medium"
    assert result.decision.fallback_models == ["sim-small", "sim-large"]
    assert result.decision.plan.model == "sim-medium"
    assert result.explanation.chosen == "sim-medium"
    assert "sim-small failing 90% of recent calls; sim-medium first" in result.explanation.reason
    # the budget holds the dearest model of the chain, whatever the order
    assert result.decision.estimated_cost_usd == cost(result, "sim-large")


def test_error_rate_within_the_configured_limit_is_not_demoted() -> None:
    config = configure(routing={"latency": {"max_error_rate": 0.95}})
    context = RoutingContext(latency={"sim-small": observed(error_rate=0.9)})
    assert routed(make_request(), config, context).decision.chosen_model == "sim-small"


def test_a_share_of_jobs_still_goes_to_the_failing_model_first_as_probes() -> None:
    context = RoutingContext(latency={"sim-small": observed(error_rate=0.9)})
    firsts = [
        routed(make_request(request_id=f"job-{i}"), context=context).decision.chosen_model
        for i in range(1000)
    ]
    probes = firsts.count("sim-small")
    assert 30 <= probes <= 70  # probe_share 0.05 of 1,000, by a stable hash of the id
    assert set(firsts) == {"sim-small", "sim-medium"}
    never = configure(routing={"latency": {"probe_share": 0.0}})
    assert all(
        routed(make_request(request_id=f"job-{i}"), never, context).decision.chosen_model
        == "sim-medium"
        for i in range(200)
    )


def test_cascade_ladders_are_not_demoted() -> None:
    context = RoutingContext(latency={"sim-local": observed(error_rate=0.9)})
    plan = routed(make_request(), CASCADING, context).decision.plan
    assert plan.cascade == ["sim-local", "sim-small"]
    assert plan.model == "sim-local"


# --- budget: prepared requests have their own offsets ---------------------------------

TENANT = TenantSpec(budget_usd=1.0, budget_period="month")
REQUESTS = "requests:0"


def prepared(offset: int) -> Position:
    return Position("prepared", 0, offset)


def requested(offset: int) -> Position:
    return Position("requests", 0, offset)


def test_prepared_offset_below_the_request_offset_is_applied_once() -> None:
    snap = BudgetSnapshot(period="2026-11", applied={REQUESTS: 100})
    first = reserve(snap, TENANT, 0.1, prepared(5), now=NOW, prepared=True)
    assert first.allowed
    assert first.reason == "within budget"
    assert first.snapshot.reserved_usd == pytest.approx(0.1)
    assert first.snapshot.requests == 1
    assert first.snapshot.applied == {"prepared:0": 5, REQUESTS: 100}
    replay = reserve(first.snapshot, TENANT, 0.1, prepared(5), now=NOW, prepared=True)
    assert replay.reason == "already applied (redelivery)"
    assert replay.snapshot == first.snapshot
    older = reserve(first.snapshot, TENANT, 0.1, prepared(4), now=NOW, prepared=True)
    assert older.snapshot == first.snapshot


def test_request_and_prepared_offsets_do_not_shadow_each_other() -> None:
    snap = BudgetSnapshot(period="2026-11", applied={REQUESTS: 100, "prepared:0": 7})
    plain = reserve(snap, TENANT, 0.1, requested(5), now=NOW)
    assert plain.reason == "already applied (redelivery)"
    next_plain = reserve(snap, TENANT, 0.1, requested(101), now=NOW)
    assert next_plain.snapshot.applied == {REQUESTS: 101, "prepared:0": 7}
    next_prepared = reserve(snap, TENANT, 0.1, prepared(8), now=NOW, prepared=True)
    assert next_prepared.snapshot.reserved_usd == pytest.approx(0.1)
    assert next_prepared.snapshot.applied == {REQUESTS: 100, "prepared:0": 8}


def test_prepared_rejection_moves_only_the_prepared_offset() -> None:
    snap = BudgetSnapshot(period="2026-11", spent_usd=0.95, applied={REQUESTS: 100})
    verdict = reserve(snap, TENANT, 0.1, prepared(3), now=NOW, prepared=True)
    assert not verdict.allowed
    assert verdict.snapshot.applied == {REQUESTS: 100, "prepared:0": 3}
    assert verdict.snapshot.reserved_usd == 0


def test_route_request_with_a_pre_step_reserves_on_the_prepared_offset() -> None:
    snap = BudgetSnapshot(period="2026-11", applied={REQUESTS: 100})
    first = routed(make_request(), snapshot=snap, offset=5, pre_step="acme.prepared")
    assert first.snapshot.reserved_usd == pytest.approx(first.decision.estimated_cost_usd)
    assert first.snapshot.applied == {"prepared:0": 5, REQUESTS: 100}
    at = Position("prepared", 0, 5)
    replay = route_request(make_request(), BASE, first.snapshot, at, NOW, pre_step="acme.prepared")
    assert isinstance(replay, Replayed) and replay.snapshot == first.snapshot
    # without a pre-step, offset 5 is an old position of the requests topic
    plain = route_request(make_request(), BASE, snap, Position("requests", 0, 5), NOW)
    assert isinstance(plain, Replayed) and plain.snapshot == snap
