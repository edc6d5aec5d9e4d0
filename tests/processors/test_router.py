from datetime import UTC, datetime

import pytest

from processors.budget import BudgetSnapshot
from processors.router import Rejected, Routed, route_request
from tests.helpers import make_request, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return sample_config()


def test_economy_chat_goes_to_cheapest_capable(config) -> None:  # type: ignore[no-untyped-def]
    result = route_request(make_request(quality="economy"), config, None, 0, NOW)
    assert isinstance(result, Routed)
    # The economy floor is 0.5: self-hosted sim-local (chat 0.65) is the cheapest that passes.
    assert result.decision.chosen_model == "sim-local"
    assert result.explanation.task == "chat"
    assert result.explanation.task_source == "default"


def test_premium_code_goes_to_strong_model(config) -> None:  # type: ignore[no-untyped-def]
    request = make_request("Fix this bug in my python function", quality="premium")
    result = route_request(request, config, None, 0, NOW)
    assert isinstance(result, Routed)
    assert result.explanation.task == "code"
    assert result.decision.chosen_model == "sim-large"
    assert "quality >= 0.85" in result.explanation.reason


def test_restricted_data_only_reaches_self_hosted(config) -> None:  # type: ignore[no-untyped-def]
    request = make_request(quality="premium", data_classification="restricted")
    result = route_request(request, config, None, 0, NOW)
    assert isinstance(result, Routed)
    assert result.decision.chosen_model == "sim-local"
    assert result.decision.fallback_models == []
    # A visible downgrade: nothing cleared for restricted data reaches premium quality.
    assert "no eligible model reaches quality 0.85" in result.explanation.reason
    assert result.explanation.rejected["sim-large"] == "not cleared for restricted data"


def test_tenant_region_rule_applies(config) -> None:  # type: ignore[no-untyped-def]
    result = route_request(make_request(tenant="globex"), config, None, 0, NOW)
    assert isinstance(result, Routed)
    assert result.decision.chosen_model in {"sim-medium", "sim-local"}
    assert "region us not allowed by tenant" in result.explanation.rejected["sim-small"]


def test_pinned_model_that_breaks_policy_is_denied(config) -> None:  # type: ignore[no-untyped-def]
    request = make_request(model="sim-large", data_classification="restricted")
    result = route_request(request, config, None, 0, NOW)
    assert isinstance(result, Rejected)
    assert result.error.code == "policy_denied"


def test_budget_exhaustion_rejects_and_reserves_nothing(config) -> None:  # type: ignore[no-untyped-def]
    nearly_spent = BudgetSnapshot(period="2026-11-23", spent_usd=4.99999)  # initech: 5 USD a day
    request = make_request(tenant="initech")
    result = route_request(request, config, nearly_spent, 7, NOW)
    assert isinstance(result, Rejected)
    assert result.error.code == "budget_exhausted"
    assert result.snapshot is not None
    assert result.snapshot.reserved_usd == 0
    assert result.snapshot.spent_usd == nearly_spent.spent_usd


def test_new_budget_period_starts_from_zero(config) -> None:  # type: ignore[no-untyped-def]
    yesterday = BudgetSnapshot(period="2026-11-22", spent_usd=4.99999)
    result = route_request(make_request(tenant="initech"), config, yesterday, 7, NOW)
    assert isinstance(result, Routed)
    assert result.snapshot.period == "2026-11-23"
    assert result.snapshot.spent_usd == 0


def test_reservation_is_applied_once_per_offset(config) -> None:  # type: ignore[no-untyped-def]
    first = route_request(make_request(), config, None, 10, NOW)
    assert isinstance(first, Routed)
    again = route_request(make_request(), config, first.snapshot, 10, NOW)
    assert isinstance(again, Routed)
    assert again.snapshot == first.snapshot
    later = route_request(make_request(), config, first.snapshot, 11, NOW)
    assert isinstance(later, Routed)
    assert later.snapshot.requests == 2
    assert later.snapshot.reserved_usd == pytest.approx(2 * first.snapshot.reserved_usd)
