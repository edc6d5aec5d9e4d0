"""Actual spend reported back to the budget table once a provider has answered."""

from pydantic import BaseModel, Field


class SpendSettlement(BaseModel):
    """Replaces a request's reserved estimate with what it really cost.

    Keyed by tenant on a topic co-partitioned with requests, so the budget
    table partition that reserved the estimate is the one that settles it.
    Amounts are never negative: a settlement that says otherwise does not
    validate and is dead-lettered, never applied.
    """

    request_id: str
    tenant: str
    reserved_usd: float = Field(ge=0)
    actual_usd: float = Field(ge=0)
    # The job's team and app, whose budgets (if any) the reservation was also held in.
    team: str | None = None
    app: str | None = None
    # Tokens the router charged to the tenant's token rate limits, and tokens the calls
    # used: the difference goes back to the limits.
    tokens_charged: int = Field(default=0, ge=0)
    tokens_used: int = Field(default=0, ge=0)
