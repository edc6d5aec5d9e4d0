"""The provider worker's re-check of a dispatch job, before any call.

A dispatch job names a tenant, a chain of models and a reply_to; the provider
worker does not take them on trust (a record may be forged, or the config may
have changed since routing). ``recheck`` applies against the current config:

- the tenant is configured, and the decision names the request's tenant and id;
- the estimate is a cost (finite, not negative);
- the reply_to is one the tenant may use (``processors.reply_topics``);
- every model of the chain (chosen, fallbacks) and the shadow exists in the
  catalogue and passes ``processors.policy.judge``: pinned model, data class,
  providers and regions of tenant and request, context window, ``max_cost_usd``.
  The latency checks (``max_latency_ms``, time to the deadline) need the router's
  live estimates, which this worker does not have: they are not re-applied (the
  deadline itself is still enforced by ``processors.dispatch.next_step``).

A model that fails is dropped from the chain with a ``dropped`` plan step saying
why (a dropped shadow is not asked). Cascade rungs are left as planned: a rung is
only ever called from the chain, and keeping the list keeps every cheaper rung's
answer checked. A job with no model left, or failing any other check, is refused:
``refusal`` dead-letters it with code ``dispatch_refused`` and, for a configured
tenant, answers it on the shared replies topic (never its possibly forged reply_to)
and settles it at zero to release any reservation.
"""

import math
from datetime import datetime

from processors.estimate import estimate_input_tokens
from processors.outputs import Output
from processors.policy import PolicyContext, judge
from processors.redact import redactor_for
from processors.reply import rejected_reply, telemetry_event
from processors.reply_topics import ReplyTopics, reply_to_refusal
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter, payload_policy
from schemas.decision import DispatchJob
from schemas.errors import DispatchRefused, InvalidRequest
from schemas.messages import Attempt, ErrorInfo
from schemas.plan import PlanStep
from schemas.settlement import SpendSettlement


def recheck(
    job: DispatchJob, config: SwitchyardConfig, replies: ReplyTopics
) -> DispatchJob | DispatchRefused:
    """The job with ineligible models dropped, or why it must not be called at all."""
    refused = _refusal(job, config, replies)
    if refused is not None:
        return DispatchRefused(refused)
    decision = job.decision
    chain = [decision.chosen_model, *decision.fallback_models]
    named = dict.fromkeys([*chain, decision.plan.shadow])
    why = {m: r for m in named if m and (r := _ineligible(m, job, config))}
    kept = [m for m in chain if m not in why]
    if not kept:
        reasons = "; ".join(f"{m}: {why[m]}" for m in dict.fromkeys(chain))
        return DispatchRefused(f"no model of the job's chain may serve it ({reasons})")
    if not why:
        return job
    steps = [PlanStep(kind="dropped", model=m, detail=r) for m, r in why.items()]
    plan = decision.plan
    if plan.shadow in why:
        plan = plan.model_copy(update={"shadow": None})
    trimmed = decision.model_copy(
        update={"chosen_model": kept[0], "fallback_models": kept[1:], "plan": plan}
    )
    return job.model_copy(update={"decision": trimmed, "steps": [*job.steps, *steps]})


def _refusal(job: DispatchJob, config: SwitchyardConfig, replies: ReplyTopics) -> str | None:
    """Why the job as a whole is refused, before its models are looked at."""
    request, decision = job.request, job.decision
    if request.tenant not in config.tenants:
        return f"tenant {request.tenant!r} is not configured"
    if (decision.tenant, decision.request_id) != (request.tenant, request.request_id):
        return "the routing decision names another request"
    estimate = decision.estimated_cost_usd
    if not math.isfinite(estimate) or estimate < 0:
        return "the estimated cost is not a cost"
    refused = reply_to_refusal(request.reply_to, request.tenant, config, replies)
    return refused.message if refused is not None else None


def _ineligible(model: str, job: DispatchJob, config: SwitchyardConfig) -> str | None:
    """Why ``model`` may not serve the job under the current config; None if it may."""
    spec = config.model(model)
    if spec is None:
        return "not in the catalogue"
    request = job.request
    # Latency checks need the router's live estimates: not re-applied here.
    unlatched = request.model_copy(update={"max_latency_ms": None})
    ctx = PolicyContext(
        tenant=config.tenants[request.tenant],
        data_class=config.data_class_for(request.data_classification),
        task=job.decision.task,
        input_tokens=estimate_input_tokens(request),
        max_output_tokens=request.max_tokens or config.routing.default_max_tokens,
    )
    verdict = judge(spec, unlatched, ctx)
    return None if verdict.eligible else verdict.reason


def refusal(
    job: DispatchJob,
    error: DispatchRefused,
    config: SwitchyardConfig,
    requests_topic: str,
    now: datetime,
    answer: bool = True,
) -> list[Output]:
    """A refused job's outputs: its dead letter and, for a configured tenant and unless
    ``answer`` is False (the ledger already answered this submission), a rejected reply
    on the shared replies topic, its telemetry and a zero settlement."""
    request = job.request
    letter = job_letter(job, error.info(), job.attempts, config, requests_topic, now)
    outputs = [Output("dead_letter", request.request_id, letter)]
    if not answer or request.tenant not in config.tenants:
        return outputs
    reply = rejected_reply(request.request_id, request.tenant, error, now)
    estimate = job.decision.estimated_cost_usd
    release = SpendSettlement(
        request_id=request.request_id,
        tenant=request.tenant,
        reserved_usd=estimate if math.isfinite(estimate) and estimate > 0 else 0.0,
        actual_usd=0.0,
        team=request.team,
        app=request.app,
        tokens_charged=job.decision.rate_tokens,
    )
    return [
        *outputs,
        Output("reply", request.request_id, reply, topic=None, headers=True),
        Output("telemetry", request.request_id, telemetry_event(reply, request, None, config)),
        Output("settlement", request.tenant, release),
    ]


def job_letter(
    job: DispatchJob,
    error: ErrorInfo,
    attempts: list[Attempt],
    config: SwitchyardConfig,
    requests_topic: str,
    now: datetime,
) -> DeadLetter:
    """A dispatch job's dead letter, with its attempts, kept as the tenant's payload policy
    says: whole (the request was under the limit on arrival), it can be replayed."""
    request = job.request
    return DeadLetter.of_payload(
        dumps(request),
        None,
        payload_policy(config.tenants, request.tenant),
        redactor_for(config).redact,
        error=error,
        stage="dispatch",
        source_topic=requests_topic,
        source_partition=job.source.partition if job.source else -1,
        source_offset=job.source.offset if job.source else -1,
        request_id=request.request_id,
        tenant=request.tenant,
        reply_to=request.reply_to,
        dead_lettered_at=now,
        attempts=attempts,
    )


def undecodable(
    raw: bytes | None, topic: str, partition: int, offset: int, limit: int, now: datetime
) -> list[Output]:
    """A dead letter for a dispatch record that is not a job.

    Only the router writes the dispatch and retry topics: a bad job means a
    version skew, and retrying it cannot help."""
    letter = DeadLetter.of_payload(
        raw,
        limit,
        error=InvalidRequest("undecodable dispatch job").info(),
        stage="dispatch",
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        dead_lettered_at=now,
    )
    return [Output("dead_letter", None, letter)]
