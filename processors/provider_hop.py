"""The provider hop's one decision per job: which models to call, then every output as data.

In the shape of httpx's auth flows, ``provider_hop`` is a generator: it
yields a ``ModelCall`` and is sent back a ``CallResult`` (the ``Attempt``
and the answer, if any), and returns a ``HopResult``: the job's outputs in
the order the worker sends them in one produce request, the ledger entry to
remember and the shadow call to make once the reply is out. Nothing here
calls a model or reads a clock; ``HopContext`` carries the clock and rng.

- answered or failed: reply (with the job's Kafka headers), answer-ledger
  entry (first, with the reply, so one produce request carries both),
  telemetry, settlement, a dead letter when every retry failed, a cache entry;
- parked: the job's copy on the delay topic of ``retry_tier(wait)``, with
  the job's headers, which its eventual reply carries;
- sent again by the producer within the dedup window: the stored reply (with
  headers), the ledger entry with the new source and a zero settlement;
- redelivered after a crash (already answered for that source): nothing.
"""

import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from processors.cache import entry_for
from processors.cascade import Judge, check_answer
from processors.dispatch import Call, EndpointGate, Finish, Park, next_step, retry_tier
from processors.dispatch_check import job_letter, recheck, refusal
from processors.idempotency import duplicate_action
from processors.outputs import Output
from processors.reply import completed_reply, telemetry_event
from processors.reply_topics import ReplyTopics
from schemas.answer import AnsweredRequest, ledger_key
from schemas.cache import CachedAnswer
from schemas.config import ModelSpec, SwitchyardConfig
from schemas.decision import DispatchJob, SourcePosition
from schemas.errors import DeadlineExpired, DispatchRefused
from schemas.messages import Attempt, ChatMessage, ErrorInfo, Usage
from schemas.plan import AnswerCheck, PlanStep, RoutePlan
from schemas.settlement import SpendSettlement
from schemas.telemetry import ShadowRow, TelemetryEvent


class Answer(Protocol):
    """What the hop reads of a provider's completion."""

    @property
    def message(self) -> ChatMessage: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def logprobs(self) -> list[float] | None: ...


@dataclass(frozen=True)
class ModelCall:
    """Call ``model`` once, after sleeping ``wait_s`` (pacing)."""

    model: str
    wait_s: float


@dataclass(frozen=True)
class CallResult:
    """What one call did: its attempt, and the answer when it answered."""

    attempt: Attempt
    answer: Answer | None = None


@dataclass(frozen=True)
class ShadowCall:
    """Ask ``model`` too after the reply is out, to compare with ``primary``'s answer."""

    model: str
    primary: str
    answer: str


@dataclass(frozen=True)
class HopResult:
    """Everything a job's decision produces.

    ``outputs`` go out in one produce request, in order; ``remember`` is the
    answer-ledger entry the worker knows before it comes back from the topic.
    """

    outputs: list[Output]
    remember: AnsweredRequest | None = None
    shadow: ShadowCall | None = None


ProviderFlow = Generator[ModelCall, CallResult, HopResult]


@dataclass(frozen=True)
class HopContext:
    """What a job's decision reads besides the job; one per worker."""

    config: SwitchyardConfig
    gates: Mapping[str, EndpointGate]  # live: other workers' health news updates them
    clock: Callable[[], float]  # epoch seconds
    rng: random.Random  # backoff jitter
    requests_topic: str  # where a dead letter's request came from
    replies: ReplyTopics = field(default_factory=lambda: ReplyTopics("switchyard", "replies"))
    judge: Judge | None = None  # the router's learned answer checks, for kind "learned"

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


@dataclass
class Progress:
    """A job's calls so far: attempts (skips included), plan steps, the standing answer."""

    attempts: list[Attempt]
    steps: list[PlanStep]
    answer: Answer | None = None
    spec: ModelSpec | None = None  # the model that gave ``answer``


def provider_hop(
    job: DispatchJob, answered: AnsweredRequest | None, ctx: HopContext
) -> ProviderFlow:
    """Decide one job; ``answered`` is the answer ledger's entry for its (tenant, request_id).

    The job is re-checked first (``processors.dispatch_check``): a refused one is never
    called, nor answered from the ledger (its reply_to may be forged)."""
    action = duplicate_action(answered, job, ctx.now(), ctx.config.dispatch.dedup_window_s)
    checked = recheck(job, ctx.config, ctx.replies)
    if isinstance(checked, DispatchRefused):
        answer = action != "skip"  # a redelivery of an answered submission was settled
        return HopResult(refusal(job, checked, ctx.config, ctx.requests_topic, ctx.now(), answer))
    job = checked
    if action == "skip":
        return HopResult([])
    if action == "resend" and answered is not None and job.source is not None:
        return resend(job, answered, job.source)
    return (yield from dispatch(job, ctx))


def dispatch(job: DispatchJob, ctx: HopContext) -> ProviderFlow:
    """Call down the job's chain until ``next_step`` parks or finishes it."""
    decision = job.decision
    chain = [decision.chosen_model, *decision.fallback_models]
    deadline = job.request.deadline.timestamp() if job.request.deadline else None
    progress = Progress(list(job.attempts), list(job.steps))
    policy = ctx.config.dispatch.retry
    while True:
        now = ctx.clock()
        step = next_step(
            chain,
            progress.attempts,
            job.round,
            job.parked_s,
            now,
            deadline,
            ctx.gates,
            policy,
            ctx.rng,
        )
        if isinstance(step, Call):
            progress.attempts.extend(step.skipped)
            result = yield ModelCall(step.model, step.wait_s)
            take(progress, result, job, ctx)
        elif isinstance(step, Park):
            return HopResult([parked(job, progress, step, now)])
        else:
            return finish(job, progress, step, ctx)


def take(progress: Progress, result: CallResult, job: DispatchJob, ctx: HopContext) -> None:
    """Record one call; a checked cascade rung whose answer fails the check escalates.

    The check reads only this call's answer: the rung just called."""
    attempt, answer = result.attempt, result.answer
    plan, config = job.decision.plan, ctx.config
    if answer is not None and attempt.model in plan.cascade[:-1]:  # the top rung stands
        check = check_answer(
            plan.check or AnswerCheck(),
            job.request,
            answer.message.text(),
            answer.logprobs,
            model=attempt.model,
            task=job.decision.task,
            judge=ctx.judge,
        )
        kind = "check_passed" if check.passed else "check_failed"
        progress.steps.append(PlanStep(kind=kind, model=attempt.model, detail=check.detail))
        if not check.passed:  # the next rung answers
            attempt = attempt.model_copy(update={"outcome": "rejected"})
            answer = None
    progress.attempts.append(attempt)
    progress.answer = answer
    progress.spec = config.model(attempt.model) if answer is not None else None


def parked(job: DispatchJob, progress: Progress, step: Park, now: float) -> Output:
    """The job's copy for the delay topic of its wait, carrying its calls so far."""
    wait_s = max(step.resume_at - now, 0.0)
    copy = job.model_copy(
        update={
            "attempts": progress.attempts,
            "steps": progress.steps,
            "round": step.next_round,
            "not_before": datetime.fromtimestamp(step.resume_at, UTC),
            "parked_s": job.parked_s + wait_s,
        }
    )
    return Output(
        "retry", job.request.request_id, copy, retry_tier=retry_tier(wait_s), headers=True
    )


def finish(job: DispatchJob, progress: Progress, step: Finish, ctx: HopContext) -> HopResult:
    """Every output of a finished job: answered, failed, or answered after its deadline."""
    request, config, now = job.request, ctx.config, ctx.now()
    message, error = in_time(progress.answer, step.error, request.deadline, now)
    spec = progress.spec
    answered_by = spec.name if message is not None and spec is not None else None
    stored = cache_entry(job, message, progress, config, now)
    shadow = shadow_to_call(job.decision.plan, answered_by)
    steps = [*progress.steps, *after_steps(stored, answered_by, shadow)]
    cost = sum(a.cost_usd for a in progress.attempts)  # rungs a check refused count too
    usage = progress.answer.usage if progress.answer else None
    reply = completed_reply(
        job,
        progress.attempts,
        message,
        usage,
        cost,
        error,
        now,
        region=spec.region if spec else None,
        provider=spec.provider if spec else None,
        steps=steps,
    )
    entry = AnsweredRequest(
        tenant=request.tenant,
        request_id=request.request_id,
        sources=[job.source] if job.source else [],
        reply=reply,
        answered_at=now,
    )
    outputs = [
        Output("reply", request.request_id, reply, topic=request.reply_to, headers=True),
        Output("answer", ledger_key(request.tenant, request.request_id), entry),
        Output("telemetry", request.request_id, telemetry_event(reply, request, job, config)),
        Output("settlement", request.tenant, settlement(job, cost, progress.attempts)),
        *dead_letter(job, progress.attempts, step, ctx, now),
        *([Output("cache", stored.key, stored)] if stored else []),
    ]
    call = shadow_call(shadow, answered_by, message, config)
    return HopResult(outputs, remember=entry, shadow=call)


def in_time(
    answer: Answer | None, error: ErrorInfo | None, deadline: datetime | None, now: datetime
) -> tuple[ChatMessage | None, ErrorInfo | None]:
    """The reply's message and error: an answer landing after the deadline is expired.

    The producer asked for nothing after its deadline; the late answer's cost
    is still settled."""
    message = answer.message if answer else None
    if message is not None and deadline is not None and now > deadline:
        return None, DeadlineExpired("the answer arrived after the deadline").info()
    return message, error


def cache_entry(
    job: DispatchJob,
    message: ChatMessage | None,
    progress: Progress,
    config: SwitchyardConfig,
    now: datetime,
) -> CachedAnswer | None:
    """The answer to store, for a tenant with caching on and a plan that missed the cache."""
    tenant = config.tenants.get(job.request.tenant)
    spec = progress.spec
    if message is None or spec is None or tenant is None:
        return None
    if not tenant.cache.enabled or job.decision.plan.cache != "miss":
        return None
    usage = progress.answer.usage if progress.answer else None
    return entry_for(job.request, tenant.cache, message, usage, spec.name, spec.provider, now)


def shadow_to_call(plan: RoutePlan, answered_by: str | None) -> str | None:
    """The plan's shadow model, when an answer came from another model."""
    return plan.shadow if answered_by and plan.shadow != answered_by else None


def after_steps(
    stored: CachedAnswer | None, answered_by: str | None, shadow: str | None
) -> list[PlanStep]:
    """Plan steps taken once answered: storing in the cache, asking the shadow."""
    steps = [PlanStep(kind="cache_store", model=answered_by)] if stored and answered_by else []
    if shadow:
        steps.append(PlanStep(kind="shadow", model=shadow))
    return steps


def shadow_call(
    shadow: str | None,
    answered_by: str | None,
    message: ChatMessage | None,
    config: SwitchyardConfig,
) -> ShadowCall | None:
    """The shadow call to make after the reply, for a shadow model this deployment has."""
    if shadow is None or answered_by is None or message is None or config.model(shadow) is None:
        return None
    return ShadowCall(shadow, answered_by, message.text())


def settlement(
    job: DispatchJob, actual_usd: float, attempts: list[Attempt] | None = None
) -> SpendSettlement:
    """Replace the router's reservation for the job with what it really cost, and its
    token rate-limit charge with the tokens its calls used."""
    return SpendSettlement(
        request_id=job.request.request_id,
        tenant=job.request.tenant,
        reserved_usd=job.decision.estimated_cost_usd,
        actual_usd=actual_usd,
        team=job.request.team,
        app=job.request.app,
        tokens_charged=job.decision.rate_tokens,
        tokens_used=sum(a.tokens for a in attempts or []),
    )


def dead_letter(
    job: DispatchJob, attempts: list[Attempt], step: Finish, ctx: HopContext, now: datetime
) -> list[Output]:
    """A dead letter with every attempt, for a job that failed after every retry."""
    if not step.exhausted or step.error is None:
        return []
    letter = job_letter(job, step.error, attempts, ctx.config, ctx.requests_topic, now)
    return [Output("dead_letter", job.request.request_id, letter)]


def resend(job: DispatchJob, answered: AnsweredRequest, source: SourcePosition) -> HopResult:
    """The producer sent an answered request_id again: same reply, no call, nothing spent."""
    request = job.request
    entry = answered.model_copy(update={"sources": [*answered.sources, source]})
    return HopResult(
        [
            Output(
                "reply", request.request_id, answered.reply, topic=request.reply_to, headers=True
            ),
            Output("answer", ledger_key(request.tenant, request.request_id), entry),
            Output("settlement", request.tenant, settlement(job, 0.0)),
        ],
        remember=entry,
    )


def shadow_outputs(
    job: DispatchJob, shadow: ShadowCall, result: CallResult, now: datetime
) -> list[Output]:
    """How the shadow model did, as telemetry; only its outcome is recorded, not its text."""
    answer = result.answer
    row = ShadowRow(
        request_id=job.request.request_id,
        tenant=job.request.tenant,
        task=job.decision.task,
        primary_model=shadow.primary,
        shadow_model=shadow.model,
        outcome=result.attempt.outcome,
        agrees=answer is not None and same_answer(answer.message.text(), shadow.answer),
        latency_ms=result.attempt.latency_ms,
        cost_usd=result.attempt.cost_usd,
        output_tokens=answer.usage.output_tokens if answer else 0,
        finished_at=now,
    )
    return [Output("telemetry", job.request.request_id, TelemetryEvent(shadow=[row]))]


def same_answer(a: str, b: str) -> bool:
    """Equal up to case and whitespace."""
    return " ".join(a.lower().split()) == " ".join(b.lower().split())
