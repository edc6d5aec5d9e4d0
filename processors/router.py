"""One pass from a validated request to a route plan.

classify -> policy -> strategy -> budget, over pure functions, so the streaming
agent does a single hop per job. The caller owns the budget table (it hands in
the tenant's snapshot and stores the one returned) and the routing context:
the loaded learned model and the latency learned from workers' results.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from processors import budget, classify, policy
from processors.cascade import Cascade
from processors.estimate import estimate_input_tokens
from processors.latency import LatencyEstimate
from processors.learned import Learned
from processors.strategies import (
    CheapestCapable,
    Rules,
    Strategy,
    StrategyInput,
    demote_unhealthy,
    shadow_model,
)
from schemas.budget import BudgetSnapshot
from schemas.config import StrategyName, SwitchyardConfig
from schemas.decision import RoutingDecision
from schemas.errors import BudgetExhausted, PolicyDenied, TerminalError
from schemas.messages import InferenceRequest, RoutingExplanation
from schemas.plan import RoutePlan


@dataclass(frozen=True)
class RoutingContext:
    """What routing knows beyond config: a learned model, observed latency."""

    learned: Learned = field(default_factory=lambda: Learned(None, {}))
    latency: Mapping[str, LatencyEstimate] = field(default_factory=dict)


NO_CONTEXT = RoutingContext()


@dataclass(frozen=True)
class Routed:
    decision: RoutingDecision
    explanation: RoutingExplanation
    snapshot: BudgetSnapshot


@dataclass(frozen=True)
class Rejected:
    error: TerminalError
    explanation: RoutingExplanation
    snapshot: BudgetSnapshot | None


def strategy_named(name: StrategyName, config: SwitchyardConfig, ctx: RoutingContext) -> Strategy:
    if name == "rules":
        return Rules(config.routing.rules)
    if name == "learned":
        return ctx.learned
    if name == "cascade":
        return Cascade(config.routing.cascade.max_rungs)
    return CheapestCapable()


def route_request(
    request: InferenceRequest,
    config: SwitchyardConfig,
    snapshot: BudgetSnapshot | None,
    offset: int,
    now: datetime,
    context: RoutingContext = NO_CONTEXT,
    pre_step: str | None = None,
) -> Routed | Rejected:
    """Decide how ``request`` is served; ``offset`` is its position, for budget idempotency.

    ``pre_step`` names the topic the request came back from, when a tenant's
    own service prepared it first.
    """
    tenant = config.tenants[request.tenant]
    routing = config.routing
    task, task_source = classify.classify(request, routing.default_task)
    quality = request.quality or tenant.default_quality or routing.quality
    target = (
        request.quality_target
        if request.quality_target is not None
        else routing.quality_floor[quality]
    )
    latency = context.latency
    ctx = policy.PolicyContext(
        tenant=tenant,
        data_class=config.data_class_for(request.data_classification),
        task=task,
        input_tokens=estimate_input_tokens(request),
        max_output_tokens=request.max_tokens or routing.default_max_tokens,
        p95_latency_ms={name: e.p95_ms for name, e in latency.items()},
        mean_latency_ms={name: e.ewma_ms for name, e in latency.items()},
        time_left_ms=(
            (request.deadline - now).total_seconds() * 1000 if request.deadline else None
        ),
    )
    verdicts = [policy.judge(model, request, ctx) for model in config.models]
    strategy_name = config.strategy_for(request.tenant, task)
    strategy = strategy_named(strategy_name, config, context)
    choice = strategy.choose(
        StrategyInput(
            request=request,
            text=classify.last_user_text(request),
            task=task,
            quality=quality,
            target=target,
            verdicts=verdicts,
            max_fallbacks=routing.max_fallbacks,
            chains={m.name: m.fallbacks for m in config.models if m.fallbacks},
            latency=latency,
        )
    )
    # The shadow is the runner-up as the strategy ranked it, never the model that
    # demotion may move in front.
    shadow = (
        shadow_model(
            choice, request.request_id, routing.shadow.share, target, routing.shadow.unsure_margin
        )
        if choice
        else None
    )
    if choice is not None and not choice.cascade:
        choice = demote_unhealthy(choice, latency, routing.latency.max_error_rate)
    if choice is not None and shadow == choice.chosen.model:
        shadow = None

    plan = RoutePlan(
        cache="miss" if tenant.cache.enabled else "off",
        pre_step=pre_step,
        model=choice.chosen.model if choice else None,
        fallbacks=[f.model for f in choice.fallbacks] if choice else [],
        cascade=choice.cascade if choice else [],
        check=routing.cascade.check if choice and choice.cascade else None,
        shadow=shadow,
        predicted_quality=choice.predicted if choice else {},
        quality_target=target,
        router_version=context.learned.version if strategy_name == "learned" else None,
    )

    def explain(chosen: str | None, reason: str) -> RoutingExplanation:
        return RoutingExplanation(
            strategy=strategy_name,
            task=task,
            task_source=task_source,
            quality=quality,
            chosen=chosen,
            reason=reason,
            fallbacks=[f.model for f in choice.fallbacks] if choice else [],
            rejected={v.model: v.reason for v in verdicts if not v.eligible},
            plan=plan,
        )

    if choice is None:
        reason = "no model satisfies the request's constraints"
        return Rejected(PolicyDenied(reason), explain(None, reason), snapshot)

    # A cascade may pay every rung: reserve for that, settlement releases the rest.
    reserved = (
        sum(v.estimated_cost_usd for v in verdicts if v.model in choice.cascade)
        if choice.cascade
        else choice.chosen.estimated_cost_usd
    )
    verdict = budget.reserve(snapshot, tenant, reserved, offset, now, prepared=pre_step is not None)
    if not verdict.allowed:
        return Rejected(
            BudgetExhausted(verdict.reason), explain(None, verdict.reason), verdict.snapshot
        )
    decision = RoutingDecision(
        request_id=request.request_id,
        tenant=request.tenant,
        strategy=strategy_name,
        task=task,
        task_source=task_source,
        quality=quality,
        chosen_model=choice.chosen.model,
        fallback_models=[f.model for f in choice.fallbacks],
        candidates=verdicts,
        estimated_cost_usd=reserved,
        budget_spent_usd=verdict.snapshot.committed_usd,
        budget_limit_usd=tenant.budget_usd,
        decided_at=now,
        plan=plan,
    )
    return Routed(decision, explain(choice.chosen.model, choice.reason), verdict.snapshot)
