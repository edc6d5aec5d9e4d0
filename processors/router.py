"""One pass from a validated request to a routing decision.

classify -> policy -> budget -> route, over pure functions, so the streaming
agent does a single hop per job. The caller owns the budget table: it hands in
the tenant's snapshot and stores the one returned.
"""

from dataclasses import dataclass
from datetime import datetime

from processors import budget, classify, policy, route
from processors.errors import BudgetExhausted, PolicyDenied, TerminalError
from processors.estimate import estimate_input_tokens
from schemas.config import SwitchyardConfig
from schemas.decision import RoutingDecision
from schemas.messages import InferenceRequest, RoutingExplanation

STRATEGY = "cheapest-capable"


@dataclass(frozen=True)
class Routed:
    decision: RoutingDecision
    explanation: RoutingExplanation
    snapshot: budget.BudgetSnapshot


@dataclass(frozen=True)
class Rejected:
    error: TerminalError
    explanation: RoutingExplanation
    snapshot: budget.BudgetSnapshot | None


def route_request(
    request: InferenceRequest,
    config: SwitchyardConfig,
    snapshot: budget.BudgetSnapshot | None,
    offset: int,
    now: datetime,
) -> Routed | Rejected:
    """Decide where ``request`` goes; ``offset`` is its position, for budget idempotency."""
    tenant = config.tenants[request.tenant]
    routing = config.routing
    task, task_source = classify.classify(request, routing.default_task)
    quality = request.quality or tenant.default_quality or routing.quality
    ctx = policy.PolicyContext(
        tenant=tenant,
        data_class=request.data_classification or routing.data_classification,
        task=task,
        input_tokens=estimate_input_tokens(request),
        max_output_tokens=request.max_tokens or routing.default_max_tokens,
    )
    verdicts = [policy.judge(model, request, ctx) for model in config.models]
    chains = {m.name: m.fallbacks for m in config.models if m.fallbacks}
    choice = route.cheapest_capable(
        verdicts, routing.quality_floor[quality], routing.max_fallbacks, chains
    )

    def explain(chosen: str | None, reason: str) -> RoutingExplanation:
        return RoutingExplanation(
            strategy=STRATEGY,
            task=task,
            task_source=task_source,
            quality=quality,
            chosen=chosen,
            reason=reason,
            fallbacks=[f.model for f in choice.fallbacks] if choice else [],
            rejected={v.model: v.reason for v in verdicts if not v.eligible},
        )

    if choice is None:
        reason = "no model satisfies the request's constraints"
        return Rejected(PolicyDenied(reason), explain(None, reason), snapshot)

    verdict = budget.reserve(snapshot, tenant, choice.chosen.estimated_cost_usd, offset, now)
    if not verdict.allowed:
        return Rejected(
            BudgetExhausted(verdict.reason), explain(None, verdict.reason), verdict.snapshot
        )
    decision = RoutingDecision(
        request_id=request.request_id,
        tenant=request.tenant,
        strategy=STRATEGY,
        task=task,
        task_source=task_source,
        quality=quality,
        chosen_model=choice.chosen.model,
        fallback_models=[f.model for f in choice.fallbacks],
        candidates=verdicts,
        estimated_cost_usd=choice.chosen.estimated_cost_usd,
        budget_spent_usd=verdict.snapshot.committed_usd,
        budget_limit_usd=tenant.budget_usd,
        decided_at=now,
    )
    return Routed(decision, explain(choice.chosen.model, choice.reason), verdict.snapshot)
