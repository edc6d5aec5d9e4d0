"""A dispatch job whose handling raised: dead-lettered and answered, never lost or looped.

The provider worker calls ``failed_job`` when running a decoded job raised
something no retry can fix (a bug, a payload that cannot be re-serialised): the
job gets an error reply (code ``unprocessable``), its telemetry, a zero settlement
that releases the router's reservation, and a dead letter. The letter keeps the
request re-serialised for ``dlq replay``, or, if that fails too, the raw record's
text cut to the size limit.
"""

from datetime import datetime

from processors.outputs import Output
from processors.redact import redactor_for
from processors.reply import rejected_reply, telemetry_event
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter, payload_policy
from schemas.decision import DispatchJob
from schemas.errors import Unprocessable
from schemas.settlement import SpendSettlement


def failed_job(
    job: DispatchJob,
    raw: bytes | None,
    exc: Exception,
    source: tuple[str, int, int],
    config: SwitchyardConfig,
    now: datetime,
) -> list[Output]:
    """Every output of a job whose handling raised ``exc``; ``source`` is (topic,
    partition, offset) of its record. Only the exception's type is kept: its text may
    quote the prompt."""
    request = job.request
    error = Unprocessable(f"handling the job raised {type(exc).__name__}")
    reply = rejected_reply(request.request_id, request.tenant, error, now)
    settlement = SpendSettlement(
        request_id=request.request_id,
        tenant=request.tenant,
        reserved_usd=job.decision.estimated_cost_usd,
        actual_usd=0.0,
        team=request.team,
        app=request.app,
        tokens_charged=job.decision.rate_tokens,
    )
    return [
        Output("reply", request.request_id, reply, topic=request.reply_to, headers=True),
        Output("telemetry", request.request_id, telemetry_event(reply, request, job, config)),
        Output("settlement", request.tenant, settlement),
        Output("dead_letter", request.request_id, _letter(job, raw, error, source, config, now)),
    ]


def _letter(
    job: DispatchJob,
    raw: bytes | None,
    error: Unprocessable,
    source: tuple[str, int, int],
    config: SwitchyardConfig,
    now: datetime,
) -> DeadLetter:
    payload: bytes | None
    limit: int | None
    try:
        payload, limit = dumps(job.request), None
    except (TypeError, ValueError):  # orjson: "Recursion limit reached" and the like
        payload, limit = raw, config.limits.max_message_bytes
    topic, partition, offset = source
    return DeadLetter.of_payload(
        payload,
        limit,
        payload_policy(config.tenants, job.request.tenant),
        redactor_for(config).redact,
        error=error.info(),
        stage="dispatch",
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        request_id=job.request.request_id,
        tenant=job.request.tenant,
        reply_to=job.request.reply_to,
        dead_lettered_at=now,
    )
