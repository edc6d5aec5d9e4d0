"""A tenant's rate limits: requests and tokens per minute, for the tenant and per team and app."""

from pydantic import BaseModel, ConfigDict, Field


class RateLimitSpec(BaseModel):
    """Per minute; none = no limit. Tokens count a job's input plus the most it may write."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)


class TenantRateLimits(RateLimitSpec):
    """The tenant's own limits, and each named team's and app's within it. A job over any
    limit it falls under gets a ``rate_limited`` reply naming the limit and when to retry."""

    teams: dict[str, RateLimitSpec] = Field(default_factory=dict)
    apps: dict[str, RateLimitSpec] = Field(default_factory=dict)
