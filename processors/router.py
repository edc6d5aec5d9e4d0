"""One pass from a validated request to a route plan.

classify -> policy -> strategy -> budget -> rate limits (which may queue the job or
downgrade it to a cheaper model), over pure functions, so the streaming agent does a
single hop per job. The caller owns the budget table (it hands in
the tenant's snapshot and stores the one returned) and the routing context:
the loaded learned model and the latency learned from workers' results.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from processors import budget, classify, policy
from processors.classify import TaskSource
from processors.estimate import estimate_input_tokens
from processors.latency import LatencyEstimate
from processors.rate_admission import apply_rate_limits, downgraded
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
from schemas.config import StrategyName, SwitchyardConfig, TenantSpec
from schemas.decision import CandidateVerdict, RoutingDecision
from schemas.errors import BudgetExhausted, OverRateLimit, PolicyDenied, TerminalError
from schemas.messages import InferenceRequest, Quality, RoutingExplanation
from schemas.plan import PlanStep, RoutePlan
from schemas.scoped_budgets import ScopeBudget


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
    wait_s: float = 0.0  # queued by a rate limit: dispatch this long after routing
    steps: list[PlanStep] = field(default_factory=list)  # what a rate limit did to it


@dataclass(frozen=True)
class Replayed:
    """The request was decided before (its offset is applied in the snapshot), and the
    router sends a batch's snapshots only after its outputs were acknowledged: nothing
    is decided or sent again."""

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
) -> Routed | Rejected | Replayed:
    """Decide how ``request`` is served; ``at`` is where it was read, for budget idempotency.

    ``pre_step`` names the topic the request came back from, when a tenant's
    own service prepared it first.
    """
    tenant = config.tenants[request.tenant]
    marked = budget.seen(snapshot, tenant, at, now, prepared=pre_step is not None)
    if marked.replay:
        return Replayed(marked.snapshot)
    seen = assess(request, config, context.latency, now)
    choice, shadow = choose(request, seen, config, context)
    plan = _plan(seen, choice, shadow, config, tenant.cache.enabled, pre_step, context)
    if choice is None:
        reason = "no model satisfies the request's constraints"
        explanation = _explain(seen, None, plan, None, reason)
        return Rejected(PolicyDenied(reason), explanation, marked.snapshot)
    scopes = tenant.budgets.for_job(request.team, request.app)
    holder = _Holder(snapshot, tenant, at, now, pre_step is not None, scopes, seen.verdicts)
    verdict = holder.hold(choice)
    steps: list[PlanStep] = []
    if verdict.downgrade:  # over a soft team or app budget that downgrades
        cheaper = downgraded(choice, seen.verdicts, config.routing.max_fallbacks)
        again = holder.hold(cheaper, soft_ok=True) if cheaper is not None else None
        if cheaper is not None and again is not None and again.allowed:
            step = PlanStep(
                kind="budget_downgraded", model=cheaper.chosen.model, detail=verdict.reason
            )
            choice, shadow, verdict, steps = cheaper, None, again, [step]
    if not verdict.allowed:
        explanation = _explain(seen, choice, plan, None, verdict.reason)
        return Rejected(BudgetExhausted(verdict.reason), explanation, verdict.snapshot)
    admitted = verdict.snapshot
    limited = apply_rate_limits(
        request, config, admitted.rate_tat, choice, seen.verdicts, now.timestamp()
    )
    if isinstance(limited, OverRateLimit):  # the reservation above is dropped with it
        explanation = _explain(seen, choice, plan, None, limited.message)
        return Rejected(limited, explanation, marked.snapshot)
    if limited.choice is not choice:  # downgraded: reserve the cheaper model instead
        choice, shadow = limited.choice, None
        admitted = holder.hold(choice, soft_ok=True).snapshot
    if limited.tat is not None:
        admitted = admitted.model_copy(update={"rate_tat": limited.tat})
    if limited.step is not None:
        steps.append(limited.step)
    for line in budget.alerts(tenant, scopes, marked.snapshot, admitted, now):
        steps.append(PlanStep(kind="budget_alert", detail=line))
    plan = _plan(seen, choice, shadow, config, tenant.cache.enabled, pre_step, context)
    held_back = (limited.wait_s, steps, limited.tokens)
    return _routed(request, seen, choice, plan, admitted, held_back, config, now)


@dataclass(frozen=True)
class _Holder:
    """Reserves what a choice may cost in every budget its request falls under."""

    snapshot: BudgetSnapshot | None
    tenant: TenantSpec
    at: budget.Position
    now: datetime
    prepared: bool
    scopes: Mapping[str, ScopeBudget]
    verdicts: list[CandidateVerdict]

    def hold(self, choice: Choice, soft_ok: bool = False) -> budget.BudgetVerdict:
        cost = choice.cost_usd(self.verdicts)
        return budget.reserve(
            self.snapshot, self.tenant, cost, self.at, self.now, self.prepared, self.scopes, soft_ok
        )


def _routed(
    request: InferenceRequest,
    seen: Assessment,
    choice: Choice,
    plan: RoutePlan,
    admitted: BudgetSnapshot,
    held_back: tuple[float, list[PlanStep], int],
    config: SwitchyardConfig,
    now: datetime,
) -> Routed:
    """The routed job; ``held_back`` is how long a rate limit queues it, the steps that
    say what limits and budgets did to it, and the tokens its limits were charged."""
    wait_s, steps, rate_tokens = held_back
    tenant = config.tenants[request.tenant]
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
        estimated_cost_usd=choice.cost_usd(seen.verdicts),
        budget_spent_usd=admitted.committed_usd,
        budget_limit_usd=tenant.budget_usd,
        rate_tokens=rate_tokens,
        priority=request.priority or tenant.priority,
        config_version=config.version,
        decided_at=now,
        plan=plan,
    )
    explanation = _explain(seen, choice, plan, choice.chosen.model, choice.reason)
    return Routed(decision, explanation, admitted, wait_s, steps)


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
        check=(choice.check if choice and choice.check else config.routing.cascade.check)
        if cascade
        else None,
        shadow=shadow,
        predicted_quality=choice.predicted if choice else {},
        quality_target=seen.target,
        router_version=context.learned.version if _read_learned(seen, choice) else None,
        config_version=config.version,
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


def _read_learned(seen: "Assessment", choice: Choice | None) -> bool:
    """Whether the learned router decided: its strategy, or a cascade on its checks."""
    if seen.strategy == "learned":
        return True
    return choice is not None and choice.check is not None and choice.check.kind == "learned"
