"""The audit trail: one row per governance action a request met, with the rule or check
behind it and the config version that applied it.

- ``denied``: refused by policy (no model may serve it), a hard budget, or dispatch's
  re-check; ``rate_limited``: refused over a rate limit (its detail names the limit).
- ``queued``: held by a rate limit and dispatched later; ``downgraded``: served by a
  cheaper model over a rate limit or a soft budget.
- ``redacted``: its logged text had secrets or personal data replaced (detail: the
  placeholder kinds, never the values).
- ``forged``: a job that failed its tenant's proof (bad or stale signature, tenant
  mismatch); ``tenant`` is the one it claimed.
- ``alert``: its reservation crossed a budget's alert threshold (``budget_alert``).

Rows are built from what the reply and the plan already say, so the audit can never
disagree with the reply the producer got.
"""

from collections.abc import Iterable
from datetime import datetime

from schemas.errors import TerminalError
from schemas.messages import InferenceReply, InferenceRequest
from schemas.telemetry import AuditAction, AuditRow

REFUSALS: dict[str, AuditAction] = {
    "policy_denied": "denied",
    "budget_exhausted": "denied",
    "dispatch_refused": "denied",
    "rate_limited": "rate_limited",
}
STEPS: dict[str, AuditAction] = {
    "rate_queued": "queued",
    "rate_downgraded": "downgraded",
    "budget_downgraded": "downgraded",
    "budget_alert": "alert",
}


def audit_rows(
    reply: InferenceReply,
    request: InferenceRequest,
    config_version: str,
    redacted_kinds: Iterable[str] = (),
) -> list[AuditRow]:
    """What governance did to one answered or refused request."""

    def row(action: AuditAction, rule: str, detail: str) -> AuditRow:
        return AuditRow(
            request_id=reply.request_id,
            tenant=reply.tenant,
            team=request.team or "",
            app=request.app or "",
            action=action,
            rule=rule,
            detail=detail,
            config_version=config_version,
            at=reply.finished_at,
        )

    rows = [row(STEPS[s.kind], s.kind, s.detail) for s in reply.steps if s.kind in STEPS]
    error = reply.error
    if error is not None and reply.status != "ok" and error.code in REFUSALS:
        rows.append(row(REFUSALS[error.code], error.code, error.message[:500]))
    kinds = sorted(set(redacted_kinds))
    if kinds:
        rows.append(row("redacted", "content_logging", ",".join(kinds)))
    return rows


def forged_row(
    request_id: str | None,
    tenant: str | None,
    error: TerminalError,
    config_version: str,
    now: datetime,
) -> AuditRow:
    """The row of a job refused for failing its tenant's proof: its salvaged address."""
    return AuditRow(
        request_id=request_id or "",
        tenant=tenant or "",
        action="forged",
        rule=error.code,
        detail=str(error)[:500],
        config_version=config_version,
        at=now,
    )


__all__ = ["REFUSALS", "STEPS", "audit_rows", "forged_row"]
