"""The router worker's decisions, one pure function per hop: a message in, every output out.

``route_hop`` takes one job as the producer wrote it (raw bytes and headers) and
decides, in this order: dead letter without a reply (does not prove its tenant,
``processors.authenticate``), dead letter (unreadable), expired (deadline passed), forward
to the tenant's pre-step topic (not prepared yet), answer from the cache, move
to the tenant's home partition (it arrived on another, so this router may not hold
its budget), or route (``processors.router.route_request``): a dispatch job or a
rejection.
``settle_hop`` applies one spend settlement to its tenant's budget.

A job whose ``reply_to`` the tenant may not use (``processors.reply_topics``) is
dead-lettered like an unreadable one, before anything else is decided, and its
rejection goes to the shared replies topic. ``failed_hop`` is what a worker sends
when a hop itself raised: the message is dead-lettered, never lost.

Both return a ``HopResult``: the records to send (``processors.outputs``) and
the tenant's new budget snapshot. The worker stores the snapshot, then sends
the records; it also supplies what the hops read (budget snapshots, cache,
routing context) and the clocks: ``now``, and ``elapsed_ms`` for the time
spent routing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from processors import budget
from processors.audit import forged_row
from processors.authenticate import Headers, SecretLookup, admit, no_secrets
from processors.budget import Position
from processors.cache import cache_key, within_ttl
from processors.dispatch import retry_tier
from processors.origin import sealed_origin
from processors.outputs import Output
from processors.redact import redactor_for
from processors.reply import cached_reply, rejected_reply, telemetry_event
from processors.reply_topics import ReplyTopics, reply_to_refusal, safe_reply_to
from processors.router import Rejected, Replayed, RoutingContext, route_request
from processors.validate import describe_validation_error, salvage_address
from schemas.budget import BudgetSnapshot
from schemas.cache import CachedAnswer
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter, payload_policy
from schemas.decision import DispatchJob, SourcePosition
from schemas.errors import (
    DeadlineExpired,
    InvalidRequest,
    TerminalError,
    Unauthenticated,
    Unprocessable,
)
from schemas.messages import InferenceReply, InferenceRequest, RoutingExplanation
from schemas.plan import PlanStep
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent

SnapshotLookup = Callable[[str], BudgetSnapshot | None]  # tenant -> its stored snapshot
CacheLookup = Callable[[str, str, datetime], CachedAnswer | None]  # key, tenant, now -> entry


def _no_cache(key: str, tenant: str, now: datetime) -> CachedAnswer | None:
    return None


@dataclass(frozen=True)
class RouterView:
    """What the router hop may read besides its message."""

    budget: SnapshotLookup
    routing: RoutingContext = field(default_factory=RoutingContext)
    cache: CacheLookup = _no_cache
    replies: ReplyTopics = field(default_factory=lambda: ReplyTopics("switchyard", "replies"))
    secrets: SecretLookup = no_secrets  # (tenant, key id) -> the signing key's secret
    # tenant -> the partition its budget lives on; None: one router sees every tenant
    home: Callable[[str], int] | None = None
    # checks the sealed origin of a forwarded job (``processors.origin``); None: not read
    cluster_key: bytes | None = None


@dataclass(frozen=True)
class HopResult:
    """What one hop decided: the records to send, in order, and the budget snapshot
    to store for ``tenant`` before sending them (None: the table stays as it is)."""

    outputs: list[Output]
    tenant: str | None = None
    snapshot: BudgetSnapshot | None = None


def route_hop(
    raw: bytes | None,
    headers: Headers,
    position: Position,
    prepared: bool,
    config: SwitchyardConfig,
    view: RouterView,
    now: datetime,
    elapsed_ms: Callable[[], float],
) -> HopResult:
    """Decide one job from the requests topic, or (``prepared``) from the prepared topic.

    ``elapsed_ms`` measures the routing time recorded on the dispatch job.
    """
    try:
        request = admit(raw, headers, config, view.secrets, now)
        refused = reply_to_refusal(request.reply_to, request.tenant, config, view.replies)
        if refused is not None:
            raise refused
    except Unauthenticated as exc:  # no reply: its reply_to is the producer's unproven word
        letter = dead_letter(raw, exc, position, config, now, view.replies)
        claimed_id, claimed, _ = salvage_address(raw, config.limits.max_message_bytes)
        forged = forged_row(claimed_id, claimed, exc, config.version, now)
        audit = Output("telemetry", claimed_id, TelemetryEvent(audit=[forged]))
        return HopResult([*(o for o in letter if o.kind == "dead_letter"), audit])
    except InvalidRequest as exc:
        return HopResult(dead_letter(raw, exc, position, config, now, view.replies))
    if request.deadline is not None and request.deadline <= now:
        error = DeadlineExpired(f"deadline {request.deadline.isoformat()} passed before routing")
        return HopResult(rejection(request, error, None, config, now))
    tenant = config.tenants[request.tenant]
    if tenant.pre_step_topic and not prepared:
        # The tenant's service prepares the job first and publishes it, signed, to
        # `prepared`; it gets the bytes as the producer wrote them, and the headers
        # but the signature's (the worker strips those).
        forward = Output(
            "pre_step", request.tenant, raw or b"", topic=tenant.pre_step_topic, headers=True
        )
        return HopResult([forward])
    hit = view.cache(cache_key(request), request.tenant, now) if tenant.cache.enabled else None
    if hit is not None and within_ttl(hit, tenant.cache, now):
        return HopResult(answered(cached_reply(request, hit, config, now), request, config))
    home = view.home(request.tenant) if view.home is not None else position.partition
    if home != position.partition:
        # Only the router that owns the tenant's home partition holds its budget: a job
        # that arrived elsewhere (unkeyed, wrongly keyed) goes there first, as written.
        moved = Output(
            "rekey",
            request.tenant,
            raw or b"",
            topic=position.topic,
            headers=True,
            partition=home,
            origin=(position.partition, position.offset),
        )
        return HopResult([moved])
    pre_step = tenant.pre_step_topic if prepared else None
    read_at = _origin(headers, view, position, request.tenant, raw or b"") or position
    return _route(request, read_at, pre_step, config, view, now, elapsed_ms)


def _origin(
    headers: Headers, view: RouterView, position: Position, tenant: str, raw: bytes
) -> Position | None:
    """Where a forwarded copy was first read, if a key holder sealed it: the job counts
    as read there, so a second copy of one forward is a replay (``processors.origin``)."""
    if view.cluster_key is None:
        return None
    return sealed_origin(headers, view.cluster_key, position.topic, tenant.encode(), raw)


def _route(
    request: InferenceRequest,
    position: Position,
    pre_step: str | None,
    config: SwitchyardConfig,
    view: RouterView,
    now: datetime,
    elapsed_ms: Callable[[], float],
) -> HopResult:
    snapshot = view.budget(request.tenant)
    result = route_request(request, config, snapshot, position, now, view.routing, pre_step)
    if isinstance(result, Replayed):  # decided and sent before the crash that replays it
        return HopResult([], request.tenant, result.snapshot)  # (an old snapshot migrated)
    if isinstance(result, Rejected):
        outputs = rejection(request, result.error, result.explanation, config, now)
        return HopResult(outputs, request.tenant, result.snapshot)
    job = DispatchJob(
        request=request,
        decision=result.decision,
        explanation=result.explanation,
        received_at=now,
        routing_ms=elapsed_ms(),
        source=SourcePosition(partition=position.partition, offset=position.offset),
        steps=[*([PlanStep(kind="pre_step", detail=pre_step)] if pre_step else []), *result.steps],
    )
    if result.wait_s > 0:  # queued by a rate limit: parked on a delay topic until its turn
        queued = job.model_copy(update={"not_before": now + timedelta(seconds=result.wait_s)})
        tier = retry_tier(result.wait_s)
        park = Output("retry", request.request_id, queued, retry_tier=tier, headers=True)
        return HopResult([park], request.tenant, result.snapshot)
    dispatch = Output("dispatch", request.request_id, job, headers=True)
    return HopResult([dispatch], request.tenant, result.snapshot)


def rejection(
    request: InferenceRequest,
    error: TerminalError,
    explanation: RoutingExplanation | None,
    config: SwitchyardConfig,
    now: datetime,
) -> list[Output]:
    """A rejected (or expired) reply and its telemetry."""
    reply = rejected_reply(
        request.request_id, request.tenant, error, now, explanation, request.submitted_at
    )
    return answered(reply, request, config)


def answered(
    reply: InferenceReply, request: InferenceRequest, config: SwitchyardConfig
) -> list[Output]:
    """A reply the router gives itself, to the job's reply_to with its headers, and its
    telemetry."""
    record = telemetry_event(reply, request, None, config)
    return [
        Output("reply", reply.request_id, reply, topic=request.reply_to, headers=True),
        Output("telemetry", request.request_id, record),
    ]


def dead_letter(
    raw: bytes | None,
    error: TerminalError,
    position: Position,
    config: SwitchyardConfig,
    now: datetime,
    replies: ReplyTopics,
    stage: str = "validate",
) -> list[Output]:
    """Park a bad message with its reason, and tell its producer when a request_id can be
    salvaged (on the salvaged reply_to if the tenant may use it, else the default replies
    topic)."""
    limit = config.limits.max_message_bytes
    request_id, tenant, reply_to = salvage_address(raw, limit)
    letter = DeadLetter.of_payload(
        raw,
        limit,
        payload_policy(config.tenants, tenant),
        redactor_for(config).redact,
        error=error.info(),
        stage=stage,
        source_topic=position.topic,
        source_partition=position.partition,
        source_offset=position.offset,
        request_id=request_id,
        tenant=tenant,
        reply_to=reply_to,
        dead_lettered_at=now,
    )
    outputs = [Output("dead_letter", request_id, letter)]
    if request_id is not None:
        reply = rejected_reply(request_id, tenant or "", error, now)
        topic = safe_reply_to(reply_to, tenant, config, replies)
        outputs.append(Output("reply", request_id, reply, topic=topic, headers=True))
    return outputs


def failed_hop(
    raw: bytes | None,
    exc: Exception,
    position: Position,
    config: SwitchyardConfig,
    now: datetime,
    replies: ReplyTopics,
) -> list[Output]:
    """What to send for a message whose hop raised ``exc``: a dead letter with code
    ``unprocessable`` (the exception's type only: its text may quote the message), and an
    error reply when the address can be salvaged."""
    error = Unprocessable(f"the {position.topic} hop failed: {type(exc).__name__}")
    return dead_letter(raw, error, position, config, now, replies, stage="route")


def settle_hop(
    raw: bytes | None,
    position: Position,
    config: SwitchyardConfig,
    snapshot_of: SnapshotLookup,
    now: datetime,
) -> HopResult:
    """One settlement's effect on its tenant's budget: the snapshot to store, no records.

    A settlement that does not validate is dead-lettered; a tenant no longer configured
    is skipped. ``position`` is where the settlement was read, so a redelivered one is
    not counted twice (``processors.budget.settle``).
    """
    try:
        settlement = SpendSettlement.model_validate_json(raw or b"")
    except ValidationError as exc:
        error = InvalidRequest(f"not a settlement: {describe_validation_error(exc)}")
        letter = settlement_letter(raw, error, position, config, now)
        return HopResult([Output("dead_letter", None, letter)])
    tenant = config.tenants.get(settlement.tenant)
    if tenant is None:
        return HopResult([])
    after = budget.settle(snapshot_of(settlement.tenant), tenant, settlement, position, now)
    return HopResult([], settlement.tenant, after)


def settlement_letter(
    raw: bytes | None,
    error: TerminalError,
    position: Position,
    config: SwitchyardConfig,
    now: datetime,
) -> DeadLetter:
    """A dead letter for a settlement the router could not apply."""
    return DeadLetter.of_payload(
        raw,
        config.limits.max_message_bytes,
        error=error.info(),
        stage="settle",
        source_topic=position.topic,
        source_partition=position.partition,
        source_offset=position.offset,
        dead_lettered_at=now,
    )
