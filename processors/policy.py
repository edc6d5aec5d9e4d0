"""Hard constraints: which catalogue models may serve this request at all.

Each model gets a verdict with the first rule it breaks, so the reply can say
why a cheaper model was passed over.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from processors.estimate import estimate_cost_usd
from schemas.config import ModelSpec, TenantSpec
from schemas.decision import CandidateVerdict
from schemas.messages import DataClass, InferenceRequest

# How a model excluded by the request's deadline ends its reason (``RoutingExplanation``).
DEADLINE_REASON = "to the deadline"


@dataclass(frozen=True)
class PolicyContext:
    """What policy needs besides the request, resolved once per request."""

    tenant: TenantSpec
    data_class: DataClass
    task: str
    input_tokens: int
    max_output_tokens: int
    # Learned from workers' results (processors.latency); typical_latency_ms until known.
    p95_latency_ms: Mapping[str, float] = field(default_factory=dict)
    mean_latency_ms: Mapping[str, float] = field(default_factory=dict)
    time_left_ms: float | None = None  # until the request's deadline


def judge(model: ModelSpec, request: InferenceRequest, ctx: PolicyContext) -> CandidateVerdict:
    cost = estimate_cost_usd(model, ctx.input_tokens, ctx.max_output_tokens)
    reason = _first_violation(model, request, ctx, cost)
    return CandidateVerdict(
        model=model.name,
        eligible=reason is None,
        reason=reason or "eligible",
        estimated_cost_usd=cost,
        quality_score=model.quality_for(ctx.task),
    )


def _first_violation(
    model: ModelSpec, request: InferenceRequest, ctx: PolicyContext, cost: float
) -> str | None:
    if request.model is not None and model.name != request.model:
        return "not the pinned model"
    if ctx.data_class not in model.data_classes:
        return f"not cleared for {ctx.data_class} data"
    for allowed, who in (
        (request.allowed_providers, "request"),
        (ctx.tenant.allowed_providers, "tenant"),
    ):
        if allowed is not None and model.provider not in allowed:
            return f"provider {model.provider} not allowed by {who}"
    for allowed, who in (
        (request.allowed_regions, "request"),
        (ctx.tenant.allowed_regions, "tenant"),
    ):
        if allowed is not None and model.region not in allowed:
            return f"region {model.region} not allowed by {who}"
    if ctx.input_tokens + ctx.max_output_tokens > model.context_window:
        return f"context window {model.context_window} too small"
    if request.max_cost_usd is not None and cost > request.max_cost_usd:
        return f"estimated cost {cost:.6f} over max_cost_usd"
    p95 = ctx.p95_latency_ms.get(model.name, model.typical_latency_ms)
    if request.max_latency_ms is not None and p95 > request.max_latency_ms:
        return f"expected p95 latency {p95:.0f} ms over max_latency_ms"
    mean = ctx.mean_latency_ms.get(model.name, model.typical_latency_ms)
    if ctx.time_left_ms is not None and mean > ctx.time_left_ms:
        return (
            f"expected latency {mean:.0f} ms exceeds the {ctx.time_left_ms:.0f} ms "
            f"{DEADLINE_REASON}"
        )
    return None
