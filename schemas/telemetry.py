"""Routing telemetry: one row per request and one per provider attempt.

Prompt and completion text are part of a request row only as far as its tenant's
``content_logging`` allows: not at all (``off``, the default: sizes and counts only),
with secrets and personal data replaced (``redacted``), or whole (``full``).
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# The tables a TTL may be set on (``observability.telemetry.ttl_days``), with their defaults
# in days (0 = kept forever). Raw rows go first; the hourly rollups outlive them, so
# dashboards keep their history; config versions and the audit trail are kept so any old
# result can still be traced to the rules that made it.
DEFAULT_TTL_DAYS: dict[str, int] = {
    "requests": 90,
    "attempts": 30,
    "shadow": 30,
    "feedback": 180,
    "audit": 365,
    "configs": 0,
    "requests_hourly": 730,
    "attempts_hourly": 730,
}
TELEMETRY_TABLES = tuple(DEFAULT_TTL_DAYS)


class RequestRow(BaseModel):
    """The outcome of one request, as analysts query it in ``requests``."""

    request_id: str
    tenant: str
    team: str
    app: str
    task: str
    task_source: str
    quality: str
    data_classification: str
    status: str
    strategy: str
    model: str
    provider: str
    region: str
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    estimated_cost_usd: float
    queued_ms: float
    routing_ms: float
    provider_ms: float
    total_ms: float
    error_code: str
    prompt_chars: int
    explanation: str
    finished_at: datetime
    # Route plan (issue 5): what served the request and how it got there.
    cache: str = "off"
    steps: str = ""  # JSON list of PlanStep
    quality_target: float = 0.0
    predicted_quality: float = -1.0  # of the answering model; -1 = not predicted
    router_version: str = ""
    shadow_model: str = ""
    # Content (migration 3): by the tenant's content_logging, which ``content_logged`` names.
    content_logged: str = "off"
    prompt: str = ""
    completion: str = ""
    config_version: str = ""  # migration 4: the config that routed it (``configs`` table)


class AttemptRow(BaseModel):
    """One provider call, as analysts query it in ``attempts``."""

    request_id: str
    attempt: int
    tenant: str
    model: str
    provider: str
    outcome: str
    error_code: str
    latency_ms: float
    finished_at: datetime


class ShadowRow(BaseModel):
    """A shadow call: the runner-up model answered too; only this record is kept.

    ``agrees`` says whether its answer text equals the primary's after
    normalising whitespace and case: a learning signal without storing text.
    """

    request_id: str
    tenant: str
    task: str
    primary_model: str
    shadow_model: str
    outcome: str
    agrees: bool
    latency_ms: float
    cost_usd: float
    output_tokens: int
    finished_at: datetime


AuditAction = Literal[
    "denied", "rate_limited", "queued", "downgraded", "redacted", "forged", "alert"
]


class AuditRow(BaseModel):
    """One governance action a request met, as auditors query it in ``audit``: the rule or
    check behind it and the config version that applied it (``processors.audit``)."""

    request_id: str
    tenant: str  # for ``forged``, the tenant the job claimed
    team: str = ""
    app: str = ""
    action: AuditAction
    rule: str  # an error code or plan step kind: budget_exhausted, rate_downgraded...
    detail: str = ""  # which limit, budget or check; never prompt text
    config_version: str = ""
    at: datetime


class TelemetryEvent(BaseModel):
    """What workers publish to the telemetry topic: a finished request, or a shadow call,
    with the audit rows of what governance did to it."""

    request: RequestRow | None = None
    attempts: list[AttemptRow] = Field(default_factory=list)
    shadow: list[ShadowRow] = Field(default_factory=list)
    audit: list[AuditRow] = Field(default_factory=list)


class ConfigRow(BaseModel):
    """One config version, as analysts query it in ``configs``: what routed which requests."""

    version: str
    applied_by: str
    applied_at: datetime
    previous: str
    diff: str
    content: str  # the whole config as YAML, secrets masked
