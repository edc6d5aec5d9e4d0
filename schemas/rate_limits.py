"""A tenant's rate limits: requests and tokens per minute, for the tenant and per team and app."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# What a job over a limit gets: a rate_limited reply; a place in the tenant's queue (its
# dispatch waits, in order, until the limit admits it); or the cheapest model allowed.
OnLimit = Literal["reject", "queue", "downgrade"]


class RateLimitSpec(BaseModel):
    """Per minute; none = no limit. Tokens count a job's input plus the most it may write."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)


class TenantRateLimits(RateLimitSpec):
    """The tenant's own limits, and each named team's and app's within it, and what a job
    over any of them gets (``on_limit``):

    - ``reject``: a ``rate_limited`` reply naming the limit and when to retry;
    - ``queue``: routed now, dispatched when the limit admits it (jobs keep their order),
      if that is at most ``max_queue_s`` away and before its deadline; else rejected;
    - ``downgrade``: served now by the cheapest model its constraints allow, if cheaper
      than the routed choice, without counting against the limit; else rejected.
    """

    teams: dict[str, RateLimitSpec] = Field(default_factory=dict)
    apps: dict[str, RateLimitSpec] = Field(default_factory=dict)
    on_limit: OnLimit = "reject"
    max_queue_s: float = Field(default=60.0, gt=0, le=3600)
