"""What a job's trace says about each hop, as plain data: span attributes and events.

``streams.observe.tracing`` turns these into OpenTelemetry spans; here they are
dicts, so what a span shows is decided (and tested) without the SDK, from the
outputs a hop already returns. Nothing here reads a prompt, an answer, an error's
message, a key or a secret: only ids, tenants, models, counts, costs, codes and
the router's own reasons, which name models and policies, never the request's text.

Attempt spans follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``,
``error.type``); the rest is ``switchyard.*``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from processors.outputs import Output
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob
from schemas.messages import Attempt, InferenceReply, RoutingExplanation, Usage
from schemas.plan import PlanStep

Value = str | bool | int | float | list[str]
Attributes = dict[str, Value]

# Plan steps the budget and rate limits take, shown on the router span's budget event.
_BUDGET_STEPS = frozenset({"budget_downgraded", "budget_alert", "rate_queued", "rate_downgraded"})


@dataclass(frozen=True)
class SpanView:
    """A span's attributes, its events in order, and its error code when it failed."""

    attributes: Attributes
    events: list[tuple[str, Attributes]] = field(default_factory=list)
    error: str | None = None


def route_view(outputs: Sequence[Output]) -> SpanView:
    """The router span of one job, from what its hop decided to send: the outcome, and
    for a routed, queued or rejected job the classify, policy, strategy and budget events."""
    kinds = [o.kind for o in outputs]
    job = next((o.message for o in outputs if isinstance(o.message, DispatchJob)), None)
    reply = next((o.message for o in outputs if isinstance(o.message, InferenceReply)), None)
    if job is not None:
        outcome = "queued" if "retry" in kinds else "dispatched"
        return _routed(job, outcome)
    letter = next((o.message for o in outputs if isinstance(o.message, DeadLetter)), None)
    if letter is not None:
        code = letter.error.code
        return SpanView({"switchyard.outcome": "dead_lettered", "error.type": code}, error=code)
    if reply is not None:
        return _answered(reply)
    outcome = {"pre_step": "pre_step", "rekey": "rekeyed"}.get(kinds[0] if kinds else "", "")
    return SpanView({"switchyard.outcome": outcome or "replayed"})


def _routed(job: DispatchJob, outcome: str) -> SpanView:
    decision = job.decision
    attributes: Attributes = {
        "switchyard.request_id": decision.request_id,
        "switchyard.tenant": decision.tenant,
        "switchyard.outcome": outcome,
        "switchyard.model": decision.chosen_model,
        "switchyard.priority": decision.priority,
        "switchyard.config_version": decision.config_version,
        "switchyard.estimated_cost_usd": decision.estimated_cost_usd,
    }
    budget: Attributes = {
        "switchyard.estimated_cost_usd": decision.estimated_cost_usd,
        "switchyard.budget_spent_usd": decision.budget_spent_usd,
        "switchyard.rate_tokens": decision.rate_tokens,
        **_steps(job.steps),
    }
    if decision.budget_limit_usd is not None:
        budget["switchyard.budget_limit_usd"] = decision.budget_limit_usd
    return SpanView(attributes, [*_assessed(job.explanation), ("budget", budget)])


def _answered(reply: InferenceReply) -> SpanView:
    """A job the router answered itself: rejected, expired, or from the cache."""
    attributes: Attributes = {
        "switchyard.request_id": reply.request_id,
        "switchyard.tenant": reply.tenant,
        "switchyard.outcome": "cached" if reply.status == "ok" else reply.status,
    }
    events = _assessed(reply.routing) if reply.routing is not None else []
    code = reply.error.code if reply.error is not None else None
    if code is not None:
        attributes["error.type"] = code
    return SpanView(attributes, events, code)


def _assessed(explanation: RoutingExplanation) -> list[tuple[str, Attributes]]:
    """The classify, policy and strategy events of a routing explanation."""
    plan = explanation.plan
    strategy: Attributes = {
        "switchyard.strategy": explanation.strategy,
        "switchyard.reason": explanation.reason,
        "switchyard.fallbacks": list(explanation.fallbacks),
    }
    if explanation.chosen is not None:
        strategy["switchyard.model"] = explanation.chosen
    if plan is not None and plan.cascade:
        strategy["switchyard.cascade"] = list(plan.cascade)
    if plan is not None and plan.shadow:
        strategy["switchyard.shadow"] = plan.shadow
    return [
        (
            "classify",
            {
                "switchyard.task": explanation.task,
                "switchyard.task_source": explanation.task_source,
                "switchyard.quality": explanation.quality,
            },
        ),
        (
            "policy",
            {
                "switchyard.excluded": [f"{m}: {why}" for m, why in explanation.rejected.items()],
                "switchyard.excluded_count": len(explanation.rejected),
            },
        ),
        ("strategy", strategy),
    ]


def _steps(steps: Sequence[PlanStep]) -> Attributes:
    taken = [f"{s.kind}: {s.detail}" if s.detail else s.kind for s in steps]
    budget_steps = [t for t, s in zip(taken, steps, strict=True) if s.kind in _BUDGET_STEPS]
    return {"switchyard.steps": budget_steps} if budget_steps else {}


def job_view(job: DispatchJob) -> SpanView:
    """The provider's span for one run of a job (one round over its chain)."""
    decision = job.decision
    return SpanView(
        {
            "switchyard.request_id": decision.request_id,
            "switchyard.tenant": decision.tenant,
            "switchyard.priority": decision.priority,
            "switchyard.round": job.round,
            "switchyard.chain": [decision.chosen_model, *decision.fallback_models],
        }
    )


def attempt_view(
    attempt: Attempt, number: int, tenant: str, api_model: str, usage: Usage | None
) -> SpanView:
    """One model call, by the GenAI semantic conventions; ``number`` counts the job's
    calls from 1, across rounds; ``api_model`` is the model name sent to the API."""
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": attempt.provider,
        "gen_ai.system": attempt.provider,
        "gen_ai.request.model": api_model,
        "switchyard.model": attempt.model,
        "switchyard.tenant": tenant,
        "switchyard.attempt": number,
        "switchyard.round": attempt.round,
        "switchyard.outcome": attempt.outcome,
        "switchyard.cost_usd": attempt.cost_usd,
    }
    if usage is not None:
        attributes["gen_ai.response.model"] = api_model
        attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
    error = attempt.error.code if attempt.error is not None else None
    if error is not None:
        attributes["error.type"] = error
    if attempt.retry_after_s is not None:
        attributes["switchyard.retry_after_s"] = attempt.retry_after_s
    return SpanView(attributes, error=error)


def finish_view(outputs: Sequence[Output]) -> SpanView:
    """What a provider run sent: its reply, or its parked copy, or nothing."""
    for output in outputs:
        if isinstance(output.message, InferenceReply):
            return _reply(output.message)
        if output.kind == "retry" and isinstance(output.message, DispatchJob):
            parked = output.message
            resume = parked.not_before.isoformat() if parked.not_before else ""
            attributes: Attributes = {
                "switchyard.outcome": "parked",
                "switchyard.retry_tier": output.retry_tier,
                "switchyard.next_round": parked.round,
                "switchyard.resume_at": resume,
            }
            return SpanView(attributes)
    return SpanView({"switchyard.outcome": "skipped"})


def _reply(reply: InferenceReply) -> SpanView:
    attributes: Attributes = {
        "switchyard.outcome": "replied",
        "switchyard.status": reply.status,
        "switchyard.cost_usd": reply.cost_usd,
        "switchyard.attempts": len(reply.attempts),
    }
    if reply.model is not None:
        attributes["switchyard.model"] = reply.model
    if reply.usage is not None:
        attributes["gen_ai.usage.input_tokens"] = reply.usage.input_tokens
        attributes["gen_ai.usage.output_tokens"] = reply.usage.output_tokens
    code = reply.error.code if reply.error is not None else None
    if code is not None:
        attributes["error.type"] = code
    return SpanView(attributes, error=code)
