"""Team and app budgets: each a spend of its own period, kept in the tenant's snapshot.

A job falls under its tenant's budget and under the budget of its team and of its app,
when the tenant's config names them (``schemas.scoped_budgets``). A reservation is held
in every one of them and the settlement replaces it with the real cost in every one, so
each budget counts exactly the jobs that fall under it. Each scope keeps its own period
(a team's daily budget beside the tenant's monthly one) and starts from zero in a new one.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from schemas.budget import ScopeSpend
from schemas.scoped_budgets import Period, ScopeBudget

Fit = Literal["fits", "hard", "soft_downgrade", "soft_reject"]


def period_key(period: Period, now: datetime) -> str:
    if period == "day":
        return now.strftime("%Y-%m-%d")
    if period == "month":
        return now.strftime("%Y-%m")
    return "total"


def spend_now(
    spends: Mapping[str, ScopeSpend], key: str, budget: ScopeBudget, now: datetime
) -> ScopeSpend:
    """The scope's spend in the period ``now`` falls in."""
    period = period_key(budget.period, now)
    spend = spends.get(key)
    if spend is None or spend.period != period:
        return ScopeSpend(period=period)
    return spend


def fit(
    spends: Mapping[str, ScopeSpend],
    budgets: Mapping[str, ScopeBudget],
    estimate_usd: float,
    now: datetime,
    soft_ok: bool = False,
) -> tuple[Fit, str | None]:
    """Whether ``estimate_usd`` fits every budget, else the first it breaks and how.

    A hard budget breaks ``hard``; a soft one ``soft_downgrade`` or ``soft_reject`` by its
    ``over_soft``, unless ``soft_ok`` (a downgraded job may go past a soft budget)."""
    softly: tuple[Fit, str | None] = ("fits", None)
    for key, budget in budgets.items():
        if spend_now(spends, key, budget, now).committed_usd + estimate_usd <= budget.usd:
            continue
        if budget.kind == "hard":
            return "hard", key
        if not soft_ok and softly[0] == "fits":
            softly = ("soft_downgrade" if budget.over_soft == "downgrade" else "soft_reject", key)
    return softly


def reserved(
    spends: Mapping[str, ScopeSpend],
    budgets: Mapping[str, ScopeBudget],
    estimate_usd: float,
    now: datetime,
) -> dict[str, ScopeSpend]:
    """Every scope's spend with ``estimate_usd`` held in the job's budgets."""
    return _moved(spends, budgets, now, reserved_by=estimate_usd, spent_by=0.0)


def settled(
    spends: Mapping[str, ScopeSpend],
    budgets: Mapping[str, ScopeBudget],
    reserved_usd: float,
    actual_usd: float,
    now: datetime,
) -> dict[str, ScopeSpend]:
    """Every scope's spend with a job's reservation replaced by what it cost."""
    return _moved(spends, budgets, now, reserved_by=-reserved_usd, spent_by=actual_usd)


def _moved(
    spends: Mapping[str, ScopeSpend],
    budgets: Mapping[str, ScopeBudget],
    now: datetime,
    reserved_by: float,
    spent_by: float,
) -> dict[str, ScopeSpend]:
    after = dict(spends)
    for key, budget in budgets.items():
        spend = spend_now(spends, key, budget, now)
        after[key] = ScopeSpend(
            period=spend.period,
            reserved_usd=max(spend.reserved_usd + reserved_by, 0.0),
            spent_usd=spend.spent_usd + spent_by,
        )
    return after


def crossed(
    before: Mapping[str, ScopeSpend],
    after: Mapping[str, ScopeSpend],
    budgets: Mapping[str, ScopeBudget],
    now: datetime,
) -> list[str]:
    """The budgets whose ``alert_at`` share a job's reservation crossed, each as a line
    for its ``budget_alert`` step: once per crossing, by the job that crossed it."""
    lines = []
    for key, budget in budgets.items():
        if budget.alert_at is None:
            continue
        line = budget.alert_at * budget.usd
        was = spend_now(before, key, budget, now).committed_usd
        now_at = spend_now(after, key, budget, now).committed_usd
        if was < line <= now_at:
            lines.append(alert_line(key, budget.alert_at, budget.usd, budget.period))
    return lines


def alert_line(scope: str, share: float, usd: float, period: Period) -> str:
    per = "in all" if period == "total" else f"a {period}"
    return f"{scope} reached {share:.0%} of ${usd:g} {per}"
