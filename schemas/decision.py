"""The routing decision record and the job handed to provider workers."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.messages import Attempt, InferenceRequest, Priority, RoutingExplanation
from schemas.plan import PlanStep, RoutePlan


class CandidateVerdict(BaseModel):
    """One catalogue model as the router saw it for this request."""

    model: str
    eligible: bool
    reason: str
    estimated_cost_usd: float = 0.0
    quality_score: float = 0.0


class RoutingDecision(BaseModel):
    """Everything the router decided for one request, in order of preference."""

    request_id: str
    tenant: str
    strategy: str
    task: str
    task_source: str
    quality: str
    chosen_model: str
    fallback_models: list[str] = Field(default_factory=list)
    candidates: list[CandidateVerdict] = Field(default_factory=list)
    estimated_cost_usd: float
    budget_spent_usd: float
    budget_limit_usd: float | None
    # Tokens charged to the tenant's token rate limits at routing (0: none applied); the
    # settlement gives back what the calls did not use.
    rate_tokens: int = Field(default=0, ge=0)
    priority: Priority = "batch"
    config_version: str = ""  # the config that decided it (``SwitchyardConfig.version``)
    decided_at: datetime
    plan: RoutePlan = Field(default_factory=RoutePlan)


class SourcePosition(BaseModel):
    """Where the request was read: one submission of a request_id, for telling a
    redelivery of that submission (skip) from the producer sending it again."""

    partition: int
    offset: int


class DispatchJob(BaseModel):
    """A routed request on the dispatch topic, or parked on a retry topic.

    ``attempts`` and ``round`` travel with the job through retry topics, so the
    reply records every call made for it; ``not_before`` is when a parked job
    may run again.
    """

    request: InferenceRequest
    decision: RoutingDecision
    explanation: RoutingExplanation
    received_at: datetime
    routing_ms: float
    source: SourcePosition | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    round: int = 0
    not_before: datetime | None = None
    parked_s: float = 0.0
    steps: list[PlanStep] = Field(default_factory=list)
