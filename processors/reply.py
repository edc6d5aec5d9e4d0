"""Building replies and telemetry rows from what happened to a job."""

from datetime import datetime

import orjson

from processors import classify
from processors.audit import audit_rows
from processors.redact import redactor_for
from schemas.cache import CachedAnswer
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.errors import DeadlineExpired, SwitchyardError
from schemas.messages import (
    Attempt,
    ChatMessage,
    ErrorInfo,
    InferenceReply,
    InferenceRequest,
    ReplyStatus,
    RoutingExplanation,
    Timings,
    Usage,
)
from schemas.plan import PlanStep, RoutePlan
from schemas.telemetry import AttemptRow, RequestRow, TelemetryEvent


def _ms(start: datetime | None, end: datetime) -> float:
    return max((end - start).total_seconds() * 1000, 0.0) if start else 0.0


def completed_reply(
    job: DispatchJob,
    attempts: list[Attempt],
    message: ChatMessage | None,
    usage: Usage | None,
    cost_usd: float,
    error: ErrorInfo | None,
    now: datetime,
    *,
    region: str | None,
    provider: str | None,
    steps: list[PlanStep] | None = None,
) -> InferenceReply:
    """The reply for a dispatched job: answered by its last attempt, or failed.

    ``cost_usd`` is everything spent on it, including cascade rungs whose
    answers a check rejected."""
    request = job.request
    ok = message is not None
    status: ReplyStatus = (
        "ok" if ok else ("expired" if error and error.code == DeadlineExpired.code else "error")
    )
    timings = Timings(
        queued_ms=_ms(request.submitted_at, job.received_at),
        routing_ms=job.routing_ms,
        provider_ms=sum(a.latency_ms for a in attempts),
        total_ms=_ms(request.submitted_at or job.received_at, now),
    )
    return InferenceReply(
        request_id=request.request_id,
        tenant=request.tenant,
        status=status,
        message=message,
        usage=usage,
        cost_usd=cost_usd,
        model=attempts[-1].model if ok and attempts else None,
        provider=provider if ok else None,
        region=region if ok else None,
        attempts=attempts,
        timings=timings,
        routing=job.explanation,
        steps=steps if steps is not None else job.steps,
        error=None if ok else error,
        finished_at=now,
    )


def cached_reply(
    request: InferenceRequest, entry: CachedAnswer, config: SwitchyardConfig, now: datetime
) -> InferenceReply:
    """A reply served from the response cache: no provider call, no cost."""
    task, task_source = classify.classify(request, config.routing.default_task)
    tenant = config.tenants[request.tenant]
    explanation = RoutingExplanation(
        strategy="cache",
        task=task,
        task_source=task_source,
        quality=request.quality or tenant.default_quality or config.routing.quality,
        chosen=entry.model,
        reason=f"exact-match cache hit (stored {entry.stored_at.isoformat()})",
        plan=RoutePlan(cache="hit", model=entry.model),
    )
    return InferenceReply(
        request_id=request.request_id,
        tenant=request.tenant,
        status="ok",
        message=entry.message,
        usage=entry.usage,
        cost_usd=0.0,
        model=entry.model,
        provider=entry.provider,
        routing=explanation,
        steps=[PlanStep(kind="cache_hit", model=entry.model, detail=entry.source_request_id)],
        timings=Timings(total_ms=_ms(request.submitted_at, now)),
        finished_at=now,
    )


def rejected_reply(
    request_id: str,
    tenant: str,
    error: SwitchyardError,
    now: datetime,
    explanation: RoutingExplanation | None = None,
    submitted_at: datetime | None = None,
) -> InferenceReply:
    """The reply for a job the router refused (invalid, denied, over budget, expired)."""
    status: ReplyStatus = "expired" if error.code == DeadlineExpired.code else "rejected"
    return InferenceReply(
        request_id=request_id,
        tenant=tenant,
        status=status,
        routing=explanation,
        error=error.info(),
        timings=Timings(total_ms=_ms(submitted_at, now)),
        finished_at=now,
    )


def telemetry_event(
    reply: InferenceReply,
    request: InferenceRequest,
    job: DispatchJob | None,
    config: SwitchyardConfig,
) -> TelemetryEvent:
    """Rows for ClickHouse: sizes, costs and timings, and prompt and completion text as
    far as the tenant's ``content_logging`` allows."""
    data_class = config.data_class_for(request.data_classification)
    routing = reply.routing
    usage = reply.usage or Usage(input_tokens=0, output_tokens=0)
    content, redacted = _content_columns(reply, request, config)
    version = job.decision.config_version if job else config.version
    row = RequestRow(
        request_id=reply.request_id,
        tenant=reply.tenant,
        team=request.team or "",
        app=request.app or "",
        task=routing.task if routing else "",
        task_source=routing.task_source if routing else "",
        quality=routing.quality if routing else "",
        data_classification=data_class,
        status=reply.status,
        strategy=routing.strategy if routing else "",
        model=reply.model or "",
        provider=reply.provider or "",
        region=reply.region or "",
        attempts=len(reply.attempts),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=reply.cost_usd,
        estimated_cost_usd=job.decision.estimated_cost_usd if job else 0.0,
        queued_ms=reply.timings.queued_ms,
        routing_ms=reply.timings.routing_ms,
        provider_ms=reply.timings.provider_ms,
        total_ms=reply.timings.total_ms,
        error_code=reply.error.code if reply.error else "",
        prompt_chars=request.prompt_chars(),
        explanation=routing.model_dump_json() if routing else "",
        finished_at=reply.finished_at,
        **_plan_columns(reply),
        **content,
        config_version=version,
    )
    attempts = [
        AttemptRow(
            request_id=reply.request_id,
            attempt=i,
            tenant=reply.tenant,
            model=a.model,
            provider=a.provider,
            outcome=a.outcome,
            error_code=a.error.code if a.error else "",
            latency_ms=a.latency_ms,
            finished_at=reply.finished_at,
        )
        for i, a in enumerate(reply.attempts)
    ]
    audit = audit_rows(reply, request, version, redacted)
    return TelemetryEvent(request=row, attempts=attempts, audit=audit)


def _content_columns(
    reply: InferenceReply, request: InferenceRequest, config: SwitchyardConfig
) -> tuple[dict[str, str], list[str]]:
    """``content_logged``, ``prompt`` (``role: text`` per message) and ``completion``, by
    the tenant's ``content_logging`` (an unknown tenant's are never logged), and the kinds
    of what redaction replaced."""
    spec = config.tenants.get(reply.tenant)
    logged = spec.content_logging if spec is not None else "off"
    if logged == "off":
        return {"content_logged": "off", "prompt": "", "completion": ""}, []
    prompt = "\n".join(f"{m.role}: {m.text()}" for m in request.messages)
    completion = reply.message.text() if reply.message is not None else ""
    found: list[str] = []
    if logged == "redacted":
        redactor = redactor_for(config)
        (prompt, in_prompt), (completion, in_completion) = (
            redactor.redact_found(prompt), redactor.redact_found(completion)
        )  # fmt: skip
        found = in_prompt + in_completion
    return {"content_logged": logged, "prompt": prompt, "completion": completion}, found


def _plan_columns(reply: InferenceReply) -> dict[str, str | float]:
    plan = reply.routing.plan if reply.routing else None
    if plan is None:
        return {"steps": _steps_json(reply)}
    predicted = plan.predicted_quality.get(reply.model or "", -1.0)
    return {
        "cache": plan.cache,
        "steps": _steps_json(reply),
        "quality_target": plan.quality_target or 0.0,
        "predicted_quality": predicted,
        "router_version": plan.router_version or "",
        "shadow_model": plan.shadow or "",
    }


def _steps_json(reply: InferenceReply) -> str:
    return orjson.dumps([s.model_dump(exclude_defaults=True) for s in reply.steps]).decode()
