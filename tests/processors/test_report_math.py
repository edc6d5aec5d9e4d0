from datetime import UTC, datetime, timedelta

import pytest

from processors.report_math import (
    bucket_seconds,
    budget_scopes,
    burn_down,
    burn_downs,
    period_bounds,
    provider_totals,
    rate,
    spend_window_start,
    task_mix,
)
from schemas.report import MixPoint, ProviderPoint, SpendPoint
from schemas.scoped_budgets import ScopeBudget, ScopedBudgets
from tests.helpers import sample_config, with_tenant

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # day 21 of a 30-day month, noon


def spend(hours_ago: float, usd: float, tenant: str = "acme", team: str = "", app: str = "a"):
    at = (NOW - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
    return SpendPoint(at=at, tenant=tenant, team=team, app=app, cost_usd=usd)


@pytest.mark.parametrize(
    ("span", "width"),
    [
        (timedelta(0), 1),
        (timedelta(seconds=72), 1),
        (timedelta(seconds=73), 5),
        (timedelta(minutes=30), 30),
        (timedelta(hours=3), 300),
        (timedelta(days=1), 3600),
        (timedelta(days=7), 6 * 3600),
        (timedelta(days=400), 86400),
    ],
)
def test_bucket_seconds(span: timedelta, width: int) -> None:
    assert bucket_seconds(span) == width


def test_period_bounds() -> None:
    assert period_bounds("day", NOW) == (datetime(2026, 11, 21, tzinfo=UTC),
                                         datetime(2026, 11, 22, tzinfo=UTC))  # fmt: skip
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_bounds("month", december) == (datetime(2026, 12, 1, tzinfo=UTC),
                                                datetime(2027, 1, 1, tzinfo=UTC))  # fmt: skip
    assert period_bounds("total", NOW) == (None, None)


def test_month_burn_rate_and_projection() -> None:
    points = [
        spend(24 * 30, 100.0),  # last month: not this period's
        spend(24 * 10, 6.0),
        spend(2, 4.2),
        spend(5, 1.0, tenant="globex"),  # another tenant's
    ]
    burn = burn_down(("acme", "tenant", "month", 50.0), points, NOW)
    # Spent: the whole period (Nov 1 on). Rate: the last 7 days only, from the first spend
    # in them (2 hours ago), so the $6 of ten days ago counts as spent but not as pace.
    rate = 4.2 / (2 / 24)
    assert burn.spent_usd == pytest.approx(10.2)
    assert burn.daily_rate_usd == pytest.approx(rate)
    assert burn.days_to_exhaustion == pytest.approx(39.8 / rate)
    assert burn.projected_usd == pytest.approx(10.2 + 9.5 * rate)
    assert burn.cumulative[0] == (datetime(2026, 11, 1, tzinfo=UTC), 0.0)
    assert burn.cumulative[-1] == (NOW, pytest.approx(10.2))
    assert [round(usd, 6) for _, usd in burn.cumulative] == [0.0, 6.0, 10.2, 10.2]  # flat to now


def test_an_exhausted_budget_has_zero_days_left() -> None:
    burn = burn_down(("acme", "tenant", "day", 5.0), [spend(3, 7.0)], NOW)
    assert burn.days_to_exhaustion == 0.0
    assert burn.daily_rate_usd == pytest.approx(7.0 / (3 / 24))


def test_nothing_spent_means_no_exhaustion() -> None:
    burn = burn_down(("acme", "tenant", "month", 5.0), [], NOW)
    assert burn.spent_usd == 0 and burn.days_to_exhaustion is None
    assert burn.projected_usd == 0.0


def test_a_total_budget_starts_at_its_first_spend_and_counts_at_least_an_hour() -> None:
    burn = burn_down(("acme", "tenant", "total", 10.0), [spend(0, 0.5)], NOW)
    assert burn.period_start == NOW and burn.period_end is None
    assert burn.daily_rate_usd == pytest.approx(0.5 * 24)  # one hour's spend, not a second's
    assert burn.projected_usd is None


def test_scoped_budgets_count_their_team_or_app_only() -> None:
    points = [spend(1, 1.0, team="search", app="bot"), spend(1, 2.0, app="bot"), spend(1, 4.0)]
    team = burn_down(("acme", "team:search", "day", 10.0), points, NOW)
    app = burn_down(("acme", "app:bot", "day", 10.0), points, NOW)
    tenant = burn_down(("acme", "tenant", "day", 10.0), points, NOW)
    assert (team.spent_usd, app.spent_usd, tenant.spent_usd) == (1.0, 3.0, 7.0)


def test_budget_scopes_and_spend_window() -> None:
    config = sample_config()
    budgets = ScopedBudgets(teams={"search": ScopeBudget(usd=3, period="day")})
    config = with_tenant(config, "acme", budgets=budgets)
    scopes = budget_scopes(config)
    assert ("acme", "team:search", "day", 3.0) in scopes
    assert all(tenant == "acme" for tenant, *_ in budget_scopes(config, "acme"))
    assert budget_scopes(config, "nobody") == []
    week_ago = NOW - timedelta(days=7)  # a day budget's pace reads the last 7 days
    assert spend_window_start([("a", "tenant", "day", 1.0)], NOW) == week_ago
    month_start = datetime(2026, 11, 1, tzinfo=UTC)
    assert spend_window_start([("a", "tenant", "month", 1.0)], NOW) == month_start
    assert (
        spend_window_start([("a", "tenant", "month", 1), ("b", "tenant", "total", 1)], NOW) is None
    )
    assert len(burn_downs(config, [], NOW)) == len(scopes)


def test_rates_totals_and_mix() -> None:
    assert rate(1, 4) == 0.25 and rate(3, 0) is None
    points = [
        ProviderPoint(at=NOW, provider="sim", calls=10, errors=2, answered=7, fallbacks=1),
        ProviderPoint(at=NOW + timedelta(hours=1), provider="sim", calls=5, errors=1),
        ProviderPoint(at=NOW, provider="onprem", calls=20, answered=20),
    ]
    totals = provider_totals(points)
    assert [t.provider for t in totals] == ["onprem", "sim"]
    assert (totals[1].calls, totals[1].errors, totals[1].answered, totals[1].fallbacks) == (
        15, 3, 7, 1)  # fmt: skip
    mix = [
        MixPoint(at=NOW, task="chat", model="b", requests=2),
        MixPoint(at=NOW + timedelta(hours=1), task="chat", model="a", requests=1),
        MixPoint(at=NOW, task="chat", model="a", requests=1),
        MixPoint(at=NOW, task="code", model="c", requests=5),
    ]
    assert task_mix(mix) == {"chat": [("a", 2), ("b", 2)], "code": [("c", 5)]}
