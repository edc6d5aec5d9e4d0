"""Builders shared by tests: a small config, requests and telemetry rows."""

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.config import SwitchyardConfig
from schemas.config_file import load_config
from schemas.messages import ChatMessage, InferenceRequest
from schemas.telemetry import RequestRow
from streams.admin import ensure_topics
from streams.broker import EmbeddedBroker
from streams.environment import Environment
from streams.stack import WORKERS, Stack
from streams.topics import TopicCatalogue

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


def request_row(request_id: str, finished_at: datetime, **fields: Any) -> RequestRow:
    """A ``requests`` telemetry row of an answered request; ``fields`` override."""
    values: dict[str, Any] = {
        "request_id": request_id,
        "tenant": "acme",
        "team": "",
        "app": "test",
        "task": "chat",
        "task_source": "hint",
        "quality": "balanced",
        "data_classification": "internal",
        "status": "ok",
        "strategy": "cheapest-capable",
        "model": "sim-small",
        "provider": "sim",
        "region": "us",
        "attempts": 1,
        "input_tokens": 100,
        "output_tokens": 200,
        "cost_usd": 0.001,
        "estimated_cost_usd": 0.002,
        "queued_ms": 1.0,
        "routing_ms": 0.2,
        "provider_ms": 40.0,
        "total_ms": 45.0,
        "error_code": "",
        "prompt_chars": 400,
        "explanation": "{}",
        "finished_at": finished_at,
    }
    values.update(fields)
    return RequestRow(**values)


@contextlib.contextmanager
def running_stack(
    broker: EmbeddedBroker, namespace: str, tmp_path: Path, config_path: Path = SAMPLE_CONFIG
) -> Iterator[Stack]:
    """Simulator, router, provider and telemetry workers as processes, on their own topics."""
    env = Environment(
        kafka_bootstrap=broker.bootstrap,
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
        config_path=config_path,
        state_dir=tmp_path,
        namespace=namespace,
        replication_factor=1,
    )
    stack = Stack(env=env, bootstrap=broker.bootstrap)
    asyncio.run(ensure_topics(broker.bootstrap, TopicCatalogue(namespace).all()))
    stack.start_simulator()
    for kind in WORKERS:
        stack.start_worker(kind)
    stack.wait_router_web()
    try:
        yield stack
    finally:
        stack.stop()
