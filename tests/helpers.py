"""Builders shared by tests: a small config and requests."""

from pathlib import Path
from typing import Any

from schemas.config import SwitchyardConfig
from schemas.config_file import load_config
from schemas.messages import ChatMessage, InferenceRequest

SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "switchyard.yaml"


def sample_config() -> SwitchyardConfig:
    return load_config(SAMPLE_CONFIG)


def make_request(prompt: str = "hello there", **fields: Any) -> InferenceRequest:
    values: dict[str, Any] = {
        "request_id": "r-1",
        "tenant": "acme",
        "messages": [ChatMessage(role="user", content=prompt)],
    }
    values.update(fields)
    return InferenceRequest(**values)
