"""Budgets of a tenant's teams and apps, beside the tenant's own (``TenantSpec.budget_usd``)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Period = Literal["day", "month", "total"]


class ScopeBudget(BaseModel):
    """What one team or app may spend per period.

    ``hard``: a job whose reservation does not fit is refused (``budget_exhausted``).
    ``soft``: past it, ``over_soft`` applies: ``downgrade`` serves the job with the
    cheapest model its constraints allow (refused if even that does not fit the tenant's
    hard budget or another hard one), ``reject`` refuses it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: float = Field(ge=0)
    period: Period = "month"
    kind: Literal["hard", "soft"] = "hard"
    over_soft: Literal["downgrade", "reject"] = "downgrade"
    alert_at: float | None = Field(
        default=None, gt=0, le=1, description="share of usd whose crossing raises a "
        "budget_alert (a plan step on the job that crossed it, and an audit row)",
    )  # fmt: skip


class ScopedBudgets(BaseModel):
    """Per named team and app; a job names its team and app (``InferenceRequest``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: dict[str, ScopeBudget] = Field(default_factory=dict)
    apps: dict[str, ScopeBudget] = Field(default_factory=dict)

    def for_job(self, team: str | None, app: str | None) -> dict[str, ScopeBudget]:
        """The budgets a job of ``team`` and ``app`` falls under, by scope key."""
        found: dict[str, ScopeBudget] = {}
        if team is not None and team in self.teams:
            found[f"team:{team}"] = self.teams[team]
        if app is not None and app in self.apps:
            found[f"app:{app}"] = self.apps[app]
        return found
