"""Pydantic models of every message Switchyard reads or writes, and its config.

Every model here exports JSON Schema (``switchyard schema export DIR``) so that
producers in other languages can validate a job before publishing it.
"""

from schemas.codec import dumps, loads
from schemas.config import ModelSpec, SwitchyardConfig, TenantSpec
from schemas.dead_letter import DeadLetter
from schemas.decision import CandidateVerdict, DispatchJob, RoutingDecision
from schemas.messages import (
    Attempt,
    ChatMessage,
    DataClass,
    ErrorInfo,
    InferenceReply,
    InferenceRequest,
    Quality,
    ReplyStatus,
    RoutingExplanation,
    Timings,
    Usage,
)
from schemas.settlement import SpendSettlement
from schemas.telemetry import AttemptRow, RequestRow, TelemetryEvent

__all__ = [
    "Attempt",
    "AttemptRow",
    "CandidateVerdict",
    "ChatMessage",
    "DataClass",
    "DeadLetter",
    "DispatchJob",
    "ErrorInfo",
    "InferenceReply",
    "InferenceRequest",
    "ModelSpec",
    "Quality",
    "ReplyStatus",
    "RequestRow",
    "RoutingDecision",
    "RoutingExplanation",
    "SpendSettlement",
    "SwitchyardConfig",
    "TelemetryEvent",
    "TenantSpec",
    "Timings",
    "Usage",
    "dumps",
    "loads",
]
