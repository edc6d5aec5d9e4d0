from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from processors.budget import Position
from processors.router import Rejected, Replayed, Routed, route_request
from processors.strategies import cheapest_capable
from schemas.budget import BudgetSnapshot
from schemas.config import SwitchyardConfig
from tests.helpers import make_request, sample_config, verdict

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return sample_config()


def test_economy_chat_goes_to_cheapest_capable(config) -> None:  # type: ignore[no-untyped-def]
    result = route_request(
        make_request(quality="economy"), config, None, Position("requests", 0, 0), NOW
    )
    assert isinstance(result, Routed)
    # The economy floor is 0.5: self-hosted sim-local (chat 0.65) is the cheapest that passes.
    assert result.decision.chosen_model == "sim-local"
    assert result.explanation.task == "chat"
    assert result.explanation.task_source == "default"


def test_premium_code_goes_to_strong_model(config) -> None:  # type: ignore[no-untyped-def]
    request = make_request("Fix this bug in my python function", quality="premium")
    result = route_request(request, config, None, Position("requests", 0, 0), NOW)
    assert isinstance(result, Routed)
    assert result.explanation.task == "code"
    assert result.decision.chosen_model == "sim-large"
    assert "quality >= 0.85" in result.explanation.reason


def test_restricted_data_only_reaches_self_hosted(config) -> None:  # type: ignore[no-untyped-def]
    request = make_request(quality="premium", data_classification="restricted")
    result = route_request(request, config, None, Position("requests", 0, 0), NOW)
    assert isinstance(result, Routed)
    assert result.decision.chosen_model == "sim-local"
    assert result.decision.fallback_models == []
    # A visible downgrade: nothing cleared for restricted data reaches premium quality.
    assert "no eligible model reaches quality 0.85" in result.explanation.reason
    assert result.explanation.rejected["sim-large"] == "not cleared for restricted data"


def test_tenant_region_rule_applies(config) -> None:  # type: ignore[no-untyped-def]
    result = route_request(
        make_request(tenant="globex"), config, None, Position("requests", 0, 0), NOW
    )
    assert isinstance(result, Routed)
    assert result.decision.chosen_model in {"sim-medium", "sim-local"}
    assert "region us not allowed by tenant" in result.explanation.rejected["sim-small"]


def test_pinned_model_that_breaks_policy_is_denied(config) -> None:  # type: ignore[no-untyped-def]
    request = make_request(model="sim-large", data_classification="restricted")
    result = route_request(request, config, None, Position("requests", 0, 0), NOW)
    assert isinstance(result, Rejected)
    assert result.error.code == "policy_denied"


def test_budget_exhaustion_rejects_and_reserves_nothing(config) -> None:  # type: ignore[no-untyped-def]
    nearly_spent = BudgetSnapshot(period="2026-11-23", spent_usd=4.99999)  # initech: 5 USD a day
    request = make_request(tenant="initech")
    result = route_request(request, config, nearly_spent, Position("requests", 0, 7), NOW)
    assert isinstance(result, Rejected)
    assert result.error.code == "budget_exhausted"
    assert result.snapshot is not None
    assert result.snapshot.reserved_usd == 0
    assert result.snapshot.spent_usd == nearly_spent.spent_usd


def test_new_budget_period_starts_from_zero(config) -> None:  # type: ignore[no-untyped-def]
    yesterday = BudgetSnapshot(period="2026-11-22", spent_usd=4.99999)
    result = route_request(
        make_request(tenant="initech"), config, yesterday, Position("requests", 0, 7), NOW
    )
    assert isinstance(result, Routed)
    assert result.snapshot.period == "2026-11-23"
    assert result.snapshot.spent_usd == 0


def test_reservation_is_applied_once_per_offset(config) -> None:  # type: ignore[no-untyped-def]
    first = route_request(make_request(), config, None, Position("requests", 0, 10), NOW)
    assert isinstance(first, Routed)
    again = route_request(make_request(), config, first.snapshot, Position("requests", 0, 10), NOW)
    assert isinstance(again, Replayed)  # decided before: nothing decided or sent again
    assert again.snapshot == first.snapshot
    later = route_request(make_request(), config, first.snapshot, Position("requests", 0, 11), NOW)
    assert isinstance(later, Routed)
    assert later.snapshot.requests == 2
    assert later.snapshot.reserved_usd == pytest.approx(2 * first.snapshot.reserved_usd)


# --- configured fallback chains (cheapest_capable's ``chains``) -----------------


# "a" is the cheapest capable; without a chain the fallbacks go b, c (capable,
# by cost), then d and e (below the 0.7 floor, best first).
VERDICTS = [
    verdict("a", 0.01, 0.75),
    verdict("b", 0.02, 0.80),
    verdict("c", 0.05, 0.90),
    verdict("d", 0.001, 0.60),
    verdict("e", 0.002, 0.50),
    verdict("x", 0.0001, 0.99, eligible=False),
]


def fallbacks(choice_chains: dict[str, list[str]] | None, max_fallbacks: int = 4) -> list[str]:
    choice = cheapest_capable(VERDICTS, 0.7, max_fallbacks, choice_chains)
    assert choice is not None
    assert choice.chosen.model == "a"
    return [v.model for v in choice.fallbacks]


def test_without_chains_fallbacks_are_capable_by_cost_then_the_rest() -> None:
    assert fallbacks(None) == ["b", "c", "d", "e"]
    assert fallbacks({}) == ["b", "c", "d", "e"]


def test_chosen_models_chain_comes_first_in_configured_order() -> None:
    assert fallbacks({"a": ["c", "e"]}) == ["c", "e", "b", "d"]


def test_chain_may_prefer_a_model_below_the_floor() -> None:
    assert fallbacks({"a": ["d", "b"]}) == ["d", "b", "c", "e"]


def test_ineligible_chain_models_are_left_out() -> None:
    assert fallbacks({"a": ["x", "c"]}) == ["c", "b", "d", "e"]
    assert fallbacks({"a": ["x"]}) == ["b", "c", "d", "e"]


def test_chain_of_a_model_not_chosen_is_ignored() -> None:
    assert fallbacks({"b": ["e", "d"], "c": ["d"]}) == ["b", "c", "d", "e"]


def test_max_fallbacks_caps_the_chain() -> None:
    assert fallbacks({"a": ["e", "d", "c"]}, max_fallbacks=2) == ["e", "d"]
    assert fallbacks({"a": ["e", "d", "c"]}, max_fallbacks=0) == []


def test_downgraded_choice_uses_its_own_chain() -> None:
    verdicts = [verdict("lo", 0.01, 0.4), verdict("mid", 0.02, 0.6), verdict("hi", 0.03, 0.5)]
    choice = cheapest_capable(verdicts, 0.9, 2, {"mid": ["lo", "hi"]})
    assert choice is not None
    assert choice.chosen.model == "mid"
    assert "no eligible model reaches quality 0.90" in choice.reason
    assert [v.model for v in choice.fallbacks] == ["lo", "hi"]


def test_nothing_eligible_gives_no_choice_even_with_chains() -> None:
    only_x = [verdict("x", 0.1, 0.9, eligible=False)]
    assert cheapest_capable(only_x, 0.7, 2, {"x": []}) is None


def with_fallbacks(config: SwitchyardConfig, **chains: list[str]) -> SwitchyardConfig:
    data = config.model_dump(mode="json")
    for model in data["models"]:
        model["fallbacks"] = chains.get(model["name"].replace("-", "_"), [])
    return SwitchyardConfig.model_validate(data)


def test_route_request_follows_the_configured_chain(config) -> None:  # type: ignore[no-untyped-def]
    plain = route_request(make_request(), config, None, Position("requests", 0, 0), NOW)
    assert isinstance(plain, Routed)
    assert plain.decision.chosen_model == "sim-small"
    assert plain.decision.fallback_models == ["sim-medium", "sim-large"]
    chained = with_fallbacks(config, sim_small=["sim-large", "sim-medium"])
    result = route_request(make_request(), chained, None, Position("requests", 0, 0), NOW)
    assert isinstance(result, Routed)
    assert result.decision.chosen_model == "sim-small"
    assert result.decision.fallback_models == ["sim-large", "sim-medium"]
    assert result.explanation.fallbacks == ["sim-large", "sim-medium"]


def test_route_request_leaves_out_chain_models_the_policy_rejects(config) -> None:  # type: ignore[no-untyped-def]
    # globex may not use region us: sim-large is dropped from sim-medium's chain.
    chained = with_fallbacks(config, sim_medium=["sim-large", "sim-local"])
    result = route_request(
        make_request(tenant="globex", quality="balanced"),
        chained,
        None,
        Position("requests", 0, 0),
        NOW,
    )
    assert isinstance(result, Routed)
    assert result.decision.chosen_model == "sim-medium"
    assert result.decision.fallback_models == ["sim-local"]


@pytest.mark.parametrize("bad", [["sim-huge"], ["sim-small"], ["sim-large", "nope"]])
def test_config_rejects_unknown_or_self_fallbacks(config, bad: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="model sim-small: unknown fallbacks"):
        with_fallbacks(config, sim_small=bad)
