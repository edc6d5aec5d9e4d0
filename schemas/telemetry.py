"""Routing telemetry: one row per request and one per provider attempt.

No prompt or completion text is ever part of telemetry: only sizes and counts.
"""

from datetime import datetime

from pydantic import BaseModel


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


class TelemetryEvent(BaseModel):
    """What provider workers publish to the telemetry topic per finished request."""

    request: RequestRow
    attempts: list[AttemptRow]
