"""JSON Schema export, so producers in other languages can validate before publishing."""

from pathlib import Path

import orjson
from pydantic import BaseModel

from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob, RoutingDecision
from schemas.feedback import Feedback
from schemas.messages import InferenceReply, InferenceRequest
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent

EXPORTED: tuple[type[BaseModel], ...] = (
    InferenceRequest,
    InferenceReply,
    RoutingDecision,
    DispatchJob,
    TelemetryEvent,
    Feedback,
    SpendSettlement,
    DeadLetter,
    SwitchyardConfig,
)


def export_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in EXPORTED:
        path = directory / f"{model.__name__}.schema.json"
        path.write_bytes(orjson.dumps(model.model_json_schema(), option=orjson.OPT_INDENT_2))
        written.append(path)
    return written
