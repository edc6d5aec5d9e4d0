"""The routing decision record and the job handed to provider workers."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.messages import InferenceRequest, RoutingExplanation


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
    decided_at: datetime


class DispatchJob(BaseModel):
    """A routed request on the dispatch topic: the request plus its decision."""

    request: InferenceRequest
    decision: RoutingDecision
    explanation: RoutingExplanation
    received_at: datetime
    routing_ms: float
