"""GCRA cells for requests and tokens per minute: bursts, rates and exact waits, and the
router refusing what is over them."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors import budget
from processors.budget import Position
from processors.rate_limit import Limit, admit, forget_idle
from processors.router import Rejected, Replayed, Routed, route_request
from schemas.budget import BudgetSnapshot
from schemas.config import SwitchyardConfig
from schemas.errors import OverRateLimit
from schemas.messages import InferenceRequest
from schemas.rate_limits import TenantRateLimits
from schemas.settlement import SpendSettlement
from tests.helpers import make_request, sample_config, with_tenant

RPM = Limit("tenant", "requests", 60)  # one a second
TPM = Limit("team:search", "tokens", 6000)  # 100 a second


def test_an_idle_scope_spends_a_minute_at_once_then_waits_exactly_one_interval() -> None:
    tat: dict[str, float] = {}
    for _ in range(60):
        admission = admit(tat, [RPM], {"requests": 1}, now=0.0)
        assert admission.refused is None
        tat = admission.tat
    refused = admit(tat, [RPM], {"requests": 1}, now=0.0).refused
    assert refused is not None and refused.limit == RPM
    assert refused.retry_after_s == pytest.approx(1.0)
    assert admit(tat, [RPM], {"requests": 1}, now=1.0).refused is None


def test_a_long_stretch_admits_one_burst_then_exactly_the_rate() -> None:
    tat: dict[str, float] = {}
    admitted = 0
    for tick in range(10 * 60 * 10):  # ten requests a second for ten minutes
        admission = admit(tat, [RPM], {"requests": 1}, now=tick / 10)
        if admission.refused is None:
            admitted += 1
            tat = admission.tat
    # A minute's 60 at once, then one a second: 599 more by the last tick at 599.9 s.
    assert admitted == 60 + 599


def test_the_wait_for_tokens_is_exact_and_names_the_limit() -> None:
    tat = admit({}, [TPM], {"tokens": 6000}, now=100.0).tat
    refused = admit(tat, [RPM, TPM], {"requests": 1, "tokens": 250}, now=100.0).refused
    assert refused is not None and refused.limit == TPM
    assert refused.retry_after_s == pytest.approx(2.5)  # 250 tokens at 100 a second


def test_a_refusal_charges_no_limit() -> None:
    full = admit({}, [TPM], {"tokens": 6000}, now=0.0).tat
    admission = admit(full, [RPM, TPM], {"requests": 1, "tokens": 10}, now=0.0)
    assert admission.refused is not None and admission.tat == full
    assert RPM.key not in admission.tat


def test_a_request_bigger_than_a_minute_never_fits() -> None:
    refused = admit({}, [TPM], {"tokens": 6001}, now=0.0).refused
    assert refused is not None and math.isinf(refused.retry_after_s)


def test_idle_cells_are_forgotten_without_changing_a_decision() -> None:
    tat = admit({}, [RPM, TPM], {"requests": 1, "tokens": 100}, now=0.0).tat
    assert forget_idle(tat, now=0.5) == tat  # both cells still ahead of now
    assert forget_idle(tat, now=1.0) == {}
    cost = {"requests": 60, "tokens": 6000}
    assert admit(tat, [RPM, TPM], cost, now=2.0) == admit({}, [RPM, TPM], cost, now=2.0)


# --- applied by the router (reject) --------------------------------------------

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _limited(**limits: Any) -> SwitchyardConfig:
    rate_limits = TenantRateLimits.model_validate(limits)
    return with_tenant(sample_config(), "acme", rate_limits=rate_limits, budget_usd=None)


def _route_all(
    config: SwitchyardConfig, requests: list[InferenceRequest], snapshot: BudgetSnapshot | None
) -> tuple[list[Routed | Rejected], BudgetSnapshot | None]:
    results: list[Routed | Rejected] = []
    for offset, request in enumerate(requests, start=1):
        result = route_request(request, config, snapshot, Position("requests", 0, offset), NOW)
        snapshot = result.snapshot
        results.append(result)
    return results, snapshot


def test_the_router_rejects_what_is_over_the_tenants_requests_per_minute() -> None:
    config = _limited(requests_per_minute=3)
    requests = [make_request(request_id=f"r-{i}") for i in range(5)]
    results, snapshot = _route_all(config, requests, None)
    assert [type(r).__name__ for r in results] == ["Routed"] * 3 + ["Rejected"] * 2
    refused = results[3]
    assert isinstance(refused, Rejected) and isinstance(refused.error, OverRateLimit)
    info = refused.error.info()
    assert (info.code, info.retryable) == ("rate_limited", True)
    assert info.retry_after_s == pytest.approx(20.0)  # one request every 20 s
    assert "the tenant's limit of 3 requests per minute" in info.message
    assert snapshot is not None and snapshot.requests == 3  # refusals reserve nothing


def test_a_replayed_request_is_not_charged_twice() -> None:
    config = _limited(requests_per_minute=2)
    _, snapshot = _route_all(config, [make_request(request_id="r-1")], None)
    assert snapshot is not None
    again = route_request(
        make_request(request_id="r-1"), config, snapshot, Position("requests", 0, 1), NOW
    )
    assert isinstance(again, Replayed) and again.snapshot == snapshot
    # Had the replay been charged, the second of two a minute would be refused.
    later = route_request(
        make_request(request_id="r-2"), config, snapshot, Position("requests", 0, 2), NOW
    )
    assert isinstance(later, Routed)


def test_a_teams_token_limit_binds_only_that_team() -> None:
    config = _limited(teams={"search": {"tokens_per_minute": 300}})
    big = {"max_tokens": 200}
    results, _ = _route_all(
        config,
        [
            make_request(request_id="s-1", team="search", **big),
            make_request(request_id="s-2", team="search", **big),
            make_request(request_id="o-1", team="ops", **big),
        ],
        None,
    )
    assert [type(r).__name__ for r in results] == ["Routed", "Rejected", "Routed"]
    refused = results[1]
    assert isinstance(refused, Rejected)
    assert "team search's limit of 300 tokens per minute" in refused.error.message


def test_a_job_the_budget_refuses_is_not_charged_to_the_rate_limit() -> None:
    config = _limited(requests_per_minute=5)
    acme = config.tenants["acme"].model_copy(update={"budget_usd": 0.0})
    config = config.model_copy(update={"tenants": {**config.tenants, "acme": acme}})
    results, snapshot = _route_all(config, [make_request()], None)
    assert isinstance(results[0], Rejected) and results[0].error.code == "budget_exhausted"
    assert snapshot is not None and snapshot.rate_tat == {}


def test_admit_queues_a_job_that_may_wait_and_charges_it_now() -> None:
    tat: dict[str, float] = {}
    for _ in range(60):  # the minute's burst
        tat = admit(tat, [RPM], {"requests": 1}, 100.0).tat
    queued = admit(tat, [RPM], {"requests": 1}, 100.0, queue_up_to_s=5.0)
    assert queued.refused is None and queued.waited_for == RPM
    assert math.isclose(queued.wait_s, 1.0)
    behind = admit(queued.tat, [RPM], {"requests": 1}, 100.0, queue_up_to_s=5.0)
    assert math.isclose(behind.wait_s, 2.0)  # behind the first: the queue keeps its order
    too_far = admit(behind.tat, [RPM], {"requests": 1}, 100.0, queue_up_to_s=2.5)
    assert too_far.refused is not None and too_far.tat == behind.tat


def _routed_models(results: list[Routed | Rejected]) -> list[str | None]:
    return [r.decision.chosen_model if isinstance(r, Routed) else None for r in results]


def test_queue_dispatches_each_job_over_the_limit_in_turn_then_rejects_past_the_wait() -> None:
    config = _limited(requests_per_minute=6, on_limit="queue", max_queue_s=25)
    requests = [make_request(request_id=f"q-{i}") for i in range(11)]
    results, _ = _route_all(config, requests, None)
    waits = [r.wait_s if isinstance(r, Routed) else None for r in results]
    # six at once, then one every 10 s up to 25 s of waiting, then rate_limited replies
    assert waits[:6] == [0.0] * 6
    assert [round(w or 0, 6) for w in waits[6:8]] == [10.0, 20.0]
    assert waits[8:] == [None] * 3
    queued = results[6]
    assert isinstance(queued, Routed) and [s.kind for s in queued.steps] == ["rate_queued"]
    assert "waited 10.0 s" in queued.steps[0].detail
    refused = results[8]
    assert isinstance(refused, Rejected) and isinstance(refused.error, OverRateLimit)


def test_queue_never_waits_past_the_jobs_deadline() -> None:
    config = _limited(requests_per_minute=1, on_limit="queue", max_queue_s=600)
    soon = NOW + timedelta(seconds=30)
    requests = [make_request(request_id="d-1"), make_request(request_id="d-2", deadline=soon)]
    results, _ = _route_all(config, requests, None)
    assert isinstance(results[0], Routed)
    assert isinstance(results[1], Rejected)  # its turn (60 s) comes after its deadline


def test_downgrade_serves_jobs_over_the_limit_with_the_cheapest_model_allowed() -> None:
    config = _limited(requests_per_minute=2, on_limit="downgrade")
    premium = {"quality": "premium"}
    requests = [make_request(request_id=f"g-{i}", **premium) for i in range(4)]
    results, snapshot = _route_all(config, requests, None)
    models = _routed_models(results)
    assert models[0] == models[1] and models[0] is not None
    cheapest = min(
        (v for v in results[0].decision.candidates if v.eligible),  # type: ignore[union-attr]
        key=lambda v: v.estimated_cost_usd,
    )
    assert models[2:] == [cheapest.model] * 2 != models[:2]
    downgraded = results[2]
    assert isinstance(downgraded, Routed)
    assert [s.kind for s in downgraded.steps] == ["rate_downgraded"]
    # it reserves its own chain's dearest model, which costs less than the routed chain's
    chain = {downgraded.decision.chosen_model, *downgraded.decision.fallback_models}
    costs = {v.model: v.estimated_cost_usd for v in downgraded.decision.candidates}
    assert downgraded.decision.estimated_cost_usd == max(costs[m] for m in chain)
    routed = results[0]
    assert isinstance(routed, Routed)
    assert downgraded.decision.estimated_cost_usd < routed.decision.estimated_cost_usd
    # a downgraded job is not counted against the limit: the cells are as after two
    assert snapshot is not None and snapshot.rate_tat == results[1].snapshot.rate_tat


def test_downgrade_with_nothing_cheaper_rejects() -> None:
    config = _limited(requests_per_minute=1, on_limit="downgrade")
    restricted = {"data_classification": "restricted"}  # only sim-local may take it
    requests = [make_request(request_id=f"e-{i}", **restricted) for i in range(2)]
    results, _ = _route_all(config, requests, None)
    first = results[0]
    assert isinstance(first, Routed)
    assert (first.decision.chosen_model, first.decision.fallback_models) == ("sim-local", [])
    assert isinstance(results[1], Rejected)
    assert isinstance(results[1].error, OverRateLimit)


def test_settling_gives_back_the_tokens_a_job_did_not_use() -> None:
    config = _limited(tokens_per_minute=1000)
    big = {"max_tokens": 400}  # each job is charged its input plus 400
    results, snapshot = _route_all(
        config, [make_request(request_id=f"t-{i}", **big) for i in (1, 2, 3)], None
    )
    first, second, third = results
    assert isinstance(first, Routed) and first.decision.rate_tokens > 400
    assert isinstance(second, Routed)
    assert isinstance(third, Rejected)  # 3 x 400+ is over 1,000 a minute

    # The first job used 50 tokens: the rest comes back, and the third job fits.
    used = SpendSettlement(
        request_id="t-1", tenant="acme", reserved_usd=0.0, actual_usd=0.0,
        tokens_charged=first.decision.rate_tokens, tokens_used=50,
    )  # fmt: skip
    tenant = config.tenants["acme"]
    assert snapshot is not None
    settled = budget.settle(snapshot, tenant, used, Position("settle", 0, 1), NOW)
    again = route_request(
        make_request(request_id="t-3", **big), config, settled, Position("requests", 0, 4), NOW
    )
    assert isinstance(again, Routed)
    # A redelivered settlement gives nothing back twice.
    twice = budget.settle(settled, tenant, used, Position("settle", 0, 1), NOW)
    assert twice.rate_tat == settled.rate_tat


def test_a_downgraded_job_is_charged_no_tokens() -> None:
    config = _limited(requests_per_minute=1, tokens_per_minute=100_000, on_limit="downgrade")
    results, _ = _route_all(config, [make_request(request_id=f"d-{i}") for i in range(2)], None)
    charged = [r.decision.rate_tokens for r in results if isinstance(r, Routed)]
    assert charged[0] > 0 and charged[1] == 0
