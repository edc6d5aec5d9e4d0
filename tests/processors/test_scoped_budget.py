"""Team and app budgets beside the tenant's: held and settled in each, hard and soft."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors import budget
from processors.budget import Position
from processors.router import Rejected, Routed, route_request
from schemas.budget import BudgetSnapshot
from schemas.config import SwitchyardConfig
from schemas.errors import BudgetExhausted
from schemas.scoped_budgets import ScopedBudgets
from schemas.settlement import SpendSettlement
from tests.helpers import make_request, sample_config, with_tenant

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _budgeted(**budgets: Any) -> SwitchyardConfig:
    scoped = ScopedBudgets.model_validate(budgets)
    return with_tenant(sample_config(), "acme", budgets=scoped, budget_usd=None)


def _route(
    config: SwitchyardConfig, snapshot: BudgetSnapshot | None, offset: int, **fields: Any
) -> Routed | Rejected:
    request = make_request(request_id=f"r-{offset}", **fields)
    return route_request(request, config, snapshot, Position("requests", 0, offset), NOW)


def test_a_hard_team_budget_refuses_its_team_only_and_holds_every_reservation() -> None:
    config = _budgeted(teams={"search": {"usd": 0.05}})
    snapshot: BudgetSnapshot | None = None
    outcomes = []
    for offset in range(1, 200):
        result = _route(config, snapshot, offset, team="search")
        snapshot = result.snapshot
        outcomes.append(type(result).__name__)
        if isinstance(result, Rejected):
            break
    assert outcomes[-1] == "Rejected" and len(outcomes) > 1
    assert snapshot is not None
    held = snapshot.scopes["team:search"]
    assert 0.025 < held.reserved_usd <= 0.05  # filled to its cap, never past it
    assert held.reserved_usd == pytest.approx(snapshot.reserved_usd)  # the same jobs
    refused = _route(config, snapshot, 500, team="search")
    assert isinstance(refused, Rejected) and isinstance(refused.error, BudgetExhausted)
    assert "team's budget" in refused.error.message
    other = _route(config, snapshot, 501, team="ads")  # another team: no budget of its own
    assert isinstance(other, Routed)


def test_settlement_replaces_the_reservation_in_the_tenant_and_every_scope() -> None:
    config = _budgeted(teams={"search": {"usd": 1.0}}, apps={"chat": {"usd": 1.0}})
    routed = _route(config, None, 1, team="search", app="chat")
    assert isinstance(routed, Routed)
    estimate = routed.decision.estimated_cost_usd
    snap = routed.snapshot
    assert snap.scopes["team:search"].reserved_usd == pytest.approx(estimate)
    assert snap.scopes["app:chat"].reserved_usd == pytest.approx(estimate)
    paid = SpendSettlement(
        request_id="r-1", tenant="acme", reserved_usd=estimate, actual_usd=0.0002,
        team="search", app="chat",
    )  # fmt: skip
    after = budget.settle(snap, config.tenants["acme"], paid, Position("settle", 0, 1), NOW)
    for key in ("team:search", "app:chat"):
        assert after.scopes[key].reserved_usd == pytest.approx(0.0)
        assert after.scopes[key].spent_usd == pytest.approx(0.0002)
    assert after.spent_usd == pytest.approx(0.0002)
    again = budget.settle(after, config.tenants["acme"], paid, Position("settle", 0, 1), NOW)
    assert again == after  # a redelivered settlement counts once


def test_a_daily_team_budget_starts_again_the_next_day() -> None:
    config = _budgeted(teams={"search": {"usd": 1.0, "period": "day"}})
    routed = _route(config, None, 1, team="search")
    assert isinstance(routed, Routed)
    tomorrow = NOW + timedelta(days=1)
    request = make_request(request_id="r-2", team="search")
    later = route_request(request, config, routed.snapshot, Position("requests", 0, 2), tomorrow)
    assert isinstance(later, Routed)
    assert later.snapshot.scopes["team:search"].period == "2026-12-01"
    assert later.snapshot.scopes["team:search"].reserved_usd == pytest.approx(
        later.decision.estimated_cost_usd
    )


def test_a_soft_budget_downgrades_or_rejects_as_configured() -> None:
    premium = {"quality": "premium", "team": "search"}
    first = _route(_budgeted(), None, 1, **premium)
    assert isinstance(first, Routed)
    routed_cost = first.decision.estimated_cost_usd
    cap = routed_cost / 2  # the routed choice never fits; the cheapest model does
    soft = _budgeted(teams={"search": {"usd": cap, "kind": "soft"}})
    downgraded = _route(soft, None, 1, **premium)
    assert isinstance(downgraded, Routed)
    assert [s.kind for s in downgraded.steps] == ["budget_downgraded"]
    assert downgraded.decision.estimated_cost_usd < routed_cost
    assert downgraded.decision.chosen_model == downgraded.steps[0].model
    rejecting = _budgeted(teams={"search": {"usd": cap, "kind": "soft", "over_soft": "reject"}})
    assert isinstance(_route(rejecting, None, 1, **premium), Rejected)


def test_a_chain_reserves_what_its_dearest_model_would_cost() -> None:
    routed = _route(_budgeted(), None, 1)
    assert isinstance(routed, Routed) and routed.decision.fallback_models
    chain = {routed.decision.chosen_model, *routed.decision.fallback_models}
    costs = [v.estimated_cost_usd for v in routed.decision.candidates if v.model in chain]
    assert routed.decision.estimated_cost_usd == pytest.approx(max(costs))


def _alerts(result: Routed | Rejected) -> list[str]:
    return (
        [s.detail for s in result.steps if s.kind == "budget_alert"]
        if isinstance(result, Routed)
        else []
    )


def test_an_alert_is_raised_once_by_the_job_that_crosses_the_threshold() -> None:
    config = _budgeted(teams={"search": {"usd": 0.05, "kind": "soft", "alert_at": 0.5}})
    config = with_tenant(config, "acme", budget_usd=0.08, budget_alert_at=0.75)
    snapshot: BudgetSnapshot | None = None
    raised: list[tuple[int, str]] = []
    for offset in range(1, 120):
        result = _route(config, snapshot, offset, team="search")
        snapshot = result.snapshot
        raised += [(offset, line) for line in _alerts(result)]
    assert [line for _, line in raised] == [
        "team:search reached 50% of $0.05 a month",
        "tenant reached 75% of $0.08 a month",
    ]
    team_at, tenant_at = (offset for offset, _ in raised)
    assert team_at < tenant_at  # each by the one job whose reservation crossed its line
    assert snapshot is not None and snapshot.committed_usd <= 0.08
