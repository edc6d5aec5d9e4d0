"""One pass from a validated request to a route plan.

classify -> policy -> strategy -> budget, over pure functions, so the streaming
agent does a single hop per job. The caller owns the budget table (it hands in
the tenant's snapshot and stores the one returned) and the routing context:
the loaded learned model and the latency learned from workers' results.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from processors import budget, classify, policy, rate_limit
from processors.classify import TaskSource
from processors.estimate import estimate_input_tokens
from processors.latency import LatencyEstimate
from processors.strategies import (
    Choice,
    Learned,
    StrategyInput,
    demote_unhealthy,
    shadow_model,
    strategy_named,
    uniform_share,
)
from schemas.budget import BudgetSnapshot
from schemas.config import StrategyName, SwitchyardConfig
from schemas.decision import CandidateVerdict, RoutingDecision
from schemas.errors import BudgetExhausted, OverRateLimit, PolicyDenied, TerminalError
from schemas.messages import InferenceRequest, Quality, RoutingExplanation
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


@dataclass(frozen=True)
class Assessment:
    """The request as routing sees it before choosing: its strategy, task, tier,
    quality target and policy's verdict on every catalogue model."""

    strategy: StrategyName
    task: str
    task_source: TaskSource
    quality: Quality
    target: float
    verdicts: list[CandidateVerdict]


def route_request(
    request: InferenceRequest,
    config: SwitchyardConfig,
    snapshot: BudgetSnapshot | None,
    at: budget.Position,
    now: datetime,
    context: RoutingContext = NO_CONTEXT,
    pre_step: str | None = None,
) -> Routed | Rejected:
    """Decide how ``request`` is served; ``at`` is where it was read, for budget idempotency.

    ``pre_step`` names the topic the request came back from, when a tenant's
    own service prepared it first.
    """
    tenant = config.tenants[request.tenant]
    seen = assess(request, config, context.latency, now)
    choice, shadow = choose(request, seen, config, context)
    plan = _plan(seen, choice, shadow, config, tenant.cache.enabled, pre_step, context)
    if choice is None:
        reason = "no model satisfies the request's constraints"
        return Rejected(PolicyDenied(reason), _explain(seen, None, plan, None, reason), snapshot)
    reserved = _reservation(choice, seen.verdicts)
    verdict = budget.reserve(snapshot, tenant, reserved, at, now, prepared=pre_step is not None)
    if not verdict.allowed:
        explanation = _explain(seen, choice, plan, None, verdict.reason)
        return Rejected(BudgetExhausted(verdict.reason), explanation, verdict.snapshot)
    admitted = verdict.snapshot
    if not verdict.replay:
        rate = _rate_admission(request, config, admitted.rate_tat, now)
        if isinstance(rate, OverRateLimit):  # the reservation above is dropped with it
            return Rejected(rate, _explain(seen, choice, plan, None, rate.message), snapshot)
        if rate is not None:
            admitted = admitted.model_copy(update={"rate_tat": rate})
    decision = RoutingDecision(
        request_id=request.request_id,
        tenant=request.tenant,
        strategy=seen.strategy,
        task=seen.task,
        task_source=seen.task_source,
        quality=seen.quality,
        chosen_model=choice.chosen.model,
        fallback_models=[f.model for f in choice.fallbacks],
        candidates=seen.verdicts,
        estimated_cost_usd=reserved,
        budget_spent_usd=admitted.committed_usd,
        budget_limit_usd=tenant.budget_usd,
        decided_at=now,
        plan=plan,
    )
    explanation = _explain(seen, choice, plan, choice.chosen.model, choice.reason)
    return Routed(decision, explanation, admitted)


def _rate_admission(
    request: InferenceRequest,
    config: SwitchyardConfig,
    cells: Mapping[str, float],
    now: datetime,
) -> dict[str, float] | OverRateLimit | None:
    """The tenant's rate-limit cells after admitting ``request``, the refusal if it is over
    a limit, or None when no limit applies to it."""
    tenant = config.tenants[request.tenant]
    limits = rate_limit.limits_for(tenant.rate_limits, request.team, request.app)
    if not limits:
        return None
    tokens = estimate_input_tokens(request) + (
        request.max_tokens or config.routing.default_max_tokens
    )
    clock = now.timestamp()
    admission = rate_limit.admit(cells, limits, {"requests": 1, "tokens": tokens}, clock)
    if admission.refused is not None:
        refused = admission.refused
        return OverRateLimit(rate_limit.describe(refused), refused.retry_after_s)
    return rate_limit.forget_idle(admission.tat, clock)


def assess(
    request: InferenceRequest,
    config: SwitchyardConfig,
    latency: Mapping[str, LatencyEstimate],
    now: datetime,
) -> Assessment:
    """Classify the request, resolve its tier and target, and judge every model."""
    routing = config.routing
    task, task_source = classify.classify(request, routing.default_task)
    quality = request.quality or config.tenants[request.tenant].default_quality or routing.quality
    target = (
        request.quality_target
        if request.quality_target is not None
        else routing.quality_floor[quality]
    )
    ctx = _policy_context(request, config, task, latency, now)
    verdicts = [policy.judge(model, request, ctx) for model in config.models]
    strategy = config.strategy_for(request.tenant, task)
    return Assessment(strategy, task, task_source, quality, target, verdicts)


def _policy_context(
    request: InferenceRequest,
    config: SwitchyardConfig,
    task: str,
    latency: Mapping[str, LatencyEstimate],
    now: datetime,
) -> policy.PolicyContext:
    return policy.PolicyContext(
        tenant=config.tenants[request.tenant],
        data_class=config.data_class_for(request.data_classification),
        task=task,
        input_tokens=estimate_input_tokens(request),
        max_output_tokens=request.max_tokens or config.routing.default_max_tokens,
        p95_latency_ms={name: e.p95_ms for name, e in latency.items()},
        mean_latency_ms={name: e.ewma_ms for name, e in latency.items()},
        time_left_ms=(
            (request.deadline - now).total_seconds() * 1000 if request.deadline else None
        ),
    )


def choose(
    request: InferenceRequest,
    seen: Assessment,
    config: SwitchyardConfig,
    context: RoutingContext,
) -> tuple[Choice | None, str | None]:
    """The strategy's choice (its model demoted if failing) and the shadow to sample, if any.

    The shadow is the runner-up as the strategy ranked it, never the model that
    demotion may move in front.
    """
    routing = config.routing
    strategy = strategy_named(seen.strategy, config, context)
    choice = strategy.choose(_strategy_input(request, seen, config, context))
    if choice is None:
        return None, None
    shadow = shadow_model(
        choice, request.request_id, routing.shadow.share, seen.target, routing.shadow.unsure_margin
    )
    if not choice.cascade:
        latency = routing.latency
        probe = uniform_share(f"probe|{request.request_id}") < latency.probe_share
        choice = demote_unhealthy(choice, context.latency, latency.max_error_rate, probe)
    return choice, None if shadow == choice.chosen.model else shadow


def _strategy_input(
    request: InferenceRequest,
    seen: Assessment,
    config: SwitchyardConfig,
    context: RoutingContext,
) -> StrategyInput:
    return StrategyInput(
        request=request,
        text=classify.last_user_text(request),
        task=seen.task,
        quality=seen.quality,
        target=seen.target,
        verdicts=seen.verdicts,
        max_fallbacks=config.routing.max_fallbacks,
        chains={m.name: m.fallbacks for m in config.models if m.fallbacks},
        latency=context.latency,
    )


def _plan(
    seen: Assessment,
    choice: Choice | None,
    shadow: str | None,
    config: SwitchyardConfig,
    cache_enabled: bool,
    pre_step: str | None,
    context: RoutingContext,
) -> RoutePlan:
    cascade = choice.cascade if choice else []
    return RoutePlan(
        cache="miss" if cache_enabled else "off",
        pre_step=pre_step,
        model=choice.chosen.model if choice else None,
        fallbacks=[f.model for f in choice.fallbacks] if choice else [],
        cascade=cascade,
        check=config.routing.cascade.check if cascade else None,
        shadow=shadow,
        predicted_quality=choice.predicted if choice else {},
        quality_target=seen.target,
        router_version=context.learned.version if seen.strategy == "learned" else None,
    )


def _explain(
    seen: Assessment, choice: Choice | None, plan: RoutePlan, chosen: str | None, reason: str
) -> RoutingExplanation:
    return RoutingExplanation(
        strategy=seen.strategy,
        task=seen.task,
        task_source=seen.task_source,
        quality=seen.quality,
        chosen=chosen,
        reason=reason,
        fallbacks=[f.model for f in choice.fallbacks] if choice else [],
        rejected={v.model: v.reason for v in seen.verdicts if not v.eligible},
        plan=plan,
    )


def _reservation(choice: Choice, verdicts: list[CandidateVerdict]) -> float:
    """What to hold in the budget: a cascade may pay every rung, so it holds them all
    (settlement releases the rest)."""
    if choice.cascade:
        return sum(v.estimated_cost_usd for v in verdicts if v.model in choice.cascade)
    return choice.chosen.estimated_cost_usd
