"""Route plans: what the router intends for a request, and the steps actually taken.

A plan is more than a model: a cached answer may serve it, a user's own
service may prepare it first (a pre-step), a cascade may try a cheap model and
escalate only when its answer fails a check, and a small share of traffic is
also sent to a shadow model whose answer is only recorded.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CacheState = Literal["off", "miss", "hit"]
StepKind = Literal[
    "cache_hit",
    "pre_step",
    "call",
    "check_passed",
    "check_failed",
    "cache_store",
    "shadow",
    "dropped",  # the provider's re-check took a model off the chain (detail: why)
    "rate_queued",  # over a rate limit, dispatched later (detail: the limit and the wait)
    "rate_downgraded",  # over a rate limit, served by a cheaper model (detail: the limit)
    "budget_downgraded",  # over a soft team or app budget, served by a cheaper model
    "budget_alert",  # this job's reservation crossed a budget's alert_at (detail: which)
]
CheckKind = Literal["json_schema", "regex", "logprob", "learned", "arithmetic"]


class AnswerCheck(BaseModel):
    """How a cascade judges a cheap model's answer before accepting it.

    ``json_schema`` validates the answer against the request's
    ``response_format`` schema (or just that it is JSON); ``regex`` requires a
    match of ``pattern``; ``logprob`` requires the provider's mean token
    log-probability to be at least ``min_mean_logprob`` (answers without
    log-probabilities fail it, so they escalate); ``arithmetic`` requires every
    ``a op b = c`` step of the answer to compute; ``learned`` requires the
    router's learned check of that model (P(good | prompt, answer)) to reach
    ``threshold``, which the router sets per request from the tier's
    calibrated cascade point (a model without a learned check passes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CheckKind = "json_schema"
    pattern: str | None = None
    min_mean_logprob: float = Field(default=-0.5, le=0)
    threshold: float | None = Field(
        default=None, description="learned: set by the router per request; None never escalates"
    )


class RoutePlan(BaseModel):
    """The router's plan: rides on the dispatch job, the reply and telemetry."""

    cache: CacheState = "off"
    pre_step: str | None = Field(default=None, description="topic the request went through first")
    model: str | None = None
    fallbacks: list[str] = Field(default_factory=list)
    cascade: list[str] = Field(
        default_factory=list, description="models tried cheapest first; escalate on failed check"
    )
    check: AnswerCheck | None = None
    shadow: str | None = Field(default=None, description="also called; its answer only recorded")
    predicted_quality: dict[str, float] = Field(default_factory=dict)
    quality_target: float | None = None
    router_version: str | None = None
    config_version: str = ""  # the config version that made this plan


class PlanStep(BaseModel):
    """One thing done for a request, in order."""

    kind: StepKind
    model: str | None = None
    detail: str = ""
