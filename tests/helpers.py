"""Builders shared by tests: a small config, requests and telemetry rows."""

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from processors.authenticate import SecretLookup, SigningKey, sign
from processors.seal import seal_header
from schemas.config import SwitchyardConfig
from schemas.config_file import load_config
from schemas.decision import CandidateVerdict, DispatchJob, RoutingDecision, SourcePosition
from schemas.messages import ChatMessage, InferenceRequest, RoutingExplanation
from schemas.plan import RoutePlan
from schemas.telemetry import RequestRow, ShadowRow
from streams.kafka.admin import delete_namespace, ensure_topics
from streams.local.environment import Environment
from streams.local.stack import WORKERS, Stack
from streams.tenant_keys import Keyring, signing_keys
from streams.topics import TopicCatalogue


class Engine(Protocol):
    """A broker the tests run on: the embedded one or a real Kafka cluster."""

    @property
    def bootstrap(self) -> str: ...


SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config" / "switchyard.yaml"


def sample_config() -> SwitchyardConfig:
    return load_config(SAMPLE_CONFIG)


def sample_keys(config: SwitchyardConfig | None = None) -> dict[str, SigningKey]:
    """Each tenant's signing key as producers find it (environment, else the demo secret)."""
    return signing_keys(config or sample_config())


def demo_keys(config: SwitchyardConfig | None = None) -> dict[str, SigningKey]:
    """Each tenant's key with its demo secret, whatever the environment says (pure tests)."""
    return signing_keys(config or sample_config(), environ={})


def demo_secrets(config: SwitchyardConfig | None = None) -> SecretLookup:
    """The router's view of ``demo_keys``."""
    return Keyring(config or sample_config(), environ={})


def signed_as(tenant: str, raw: bytes, now: datetime) -> dict[str, bytes]:
    """The signature headers of ``raw`` by ``tenant``'s demo key at ``now`` (pure tests)."""
    return dict(sign(raw, demo_keys()[tenant], now))


def sealed(stack: Stack, topic: str, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
    """The headers a Switchyard worker of ``stack`` would put on this internal record."""
    return [seal_header(stack.cluster_key.encode(), topic, key, value)]


def make_request(prompt: str = "hello there", **fields: Any) -> InferenceRequest:
    values: dict[str, Any] = {
        "request_id": "r-1",
        "tenant": "acme",
        "messages": [ChatMessage(role="user", content=prompt)],
    }
    values.update(fields)
    return InferenceRequest(**values)


def verdict(model: str, cost: float, quality: float, eligible: bool = True) -> CandidateVerdict:
    """A policy verdict for strategy tests: estimated cost and quality score as given."""
    return CandidateVerdict(
        model=model,
        eligible=eligible,
        reason="eligible" if eligible else "excluded by a test",
        estimated_cost_usd=cost,
        quality_score=quality,
    )


def dispatch_job(
    at: datetime,
    chain: Sequence[str] = ("sim-small",),
    plan: RoutePlan | None = None,
    source: SourcePosition | None = None,
    estimated_cost_usd: float = 0.0,
    **request: Any,
) -> DispatchJob:
    """A job routed at ``at`` to ``chain`` (chosen model, then fallbacks); ``request``
    fields go to ``make_request``."""
    req = make_request(**request)
    decision = RoutingDecision(
        request_id=req.request_id,
        tenant=req.tenant,
        strategy="cheapest-capable",
        task="chat",
        task_source="default",
        quality="balanced",
        chosen_model=chain[0],
        fallback_models=list(chain[1:]),
        estimated_cost_usd=estimated_cost_usd,
        budget_spent_usd=0.0,
        budget_limit_usd=None,
        decided_at=at,
        plan=plan or RoutePlan(),
    )
    explanation = RoutingExplanation(
        strategy="cheapest-capable",
        task="chat",
        task_source="default",
        quality="balanced",
        chosen=chain[0],
        reason="test",
        plan=plan,
    )
    return DispatchJob(
        request=req,
        decision=decision,
        explanation=explanation,
        received_at=at,
        routing_ms=1.0,
        source=source,
    )


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


def with_tenant(config: SwitchyardConfig, name: str, **update: Any) -> SwitchyardConfig:
    """``config`` with tenant ``name``'s fields replaced by ``update``."""
    tenant = config.tenants[name].model_copy(update=update)
    return config.model_copy(update={"tenants": {**config.tenants, name: tenant}})


def fresh_namespace() -> str:
    """A topic namespace no other test uses, so tests sharing the broker never meet."""
    return f"t{uuid.uuid4().hex[:10]}"


def point_cli_at(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``cli.main`` in this process use ``env``'s broker, namespace, state and config."""
    for name, value in {
        "KAFKA_BOOTSTRAP": env.kafka_bootstrap or "",
        "SWITCHYARD_NAMESPACE": env.namespace,
        "SWITCHYARD_HOME": str(env.state_dir),
        "SWITCHYARD_CONFIG": str(env.config_path),
    }.items():
        monkeypatch.setenv(name, value)


def stack_environment(
    broker: Engine,
    tmp_path: Path,
    namespace: str = "unused",
    config_path: Path = SAMPLE_CONFIG,
) -> Environment:
    """Processes on the session's broker, with state and embedded ClickHouse under tmp_path."""
    return Environment(
        kafka_bootstrap=broker.bootstrap,
        clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
        config_path=config_path,
        state_dir=tmp_path,
        namespace=namespace,
        replication_factor=None,
    )


@contextlib.contextmanager
def running_stack(
    broker: Engine, namespace: str, tmp_path: Path, config_path: Path = SAMPLE_CONFIG
) -> Iterator[Stack]:
    """Simulator, router, provider and telemetry workers as processes, on their own topics."""
    env = stack_environment(broker, tmp_path, namespace, config_path)
    stack = Stack(env=env, bootstrap=broker.bootstrap)
    asyncio.run(ensure_topics(broker.bootstrap, TopicCatalogue(namespace).all()))
    stack.start_simulator(wait=False)
    for kind in WORKERS:
        stack.start_worker(kind)
    stack.wait_ready()
    try:
        yield stack
    finally:
        stack.stop()
        asyncio.run(delete_namespace(broker.bootstrap, namespace))


def shadow_row(request_id: str, finished_at: datetime, **fields: Any) -> ShadowRow:
    """A ``shadow`` telemetry row: sim-medium shadowing sim-small; ``fields`` override."""
    values: dict[str, Any] = {
        "request_id": request_id,
        "tenant": "acme",
        "task": "chat",
        "primary_model": "sim-small",
        "shadow_model": "sim-medium",
        "outcome": "ok",
        "agrees": True,
        "latency_ms": 80.0,
        "cost_usd": 0.0004,
        "output_tokens": 150,
        "finished_at": finished_at,
    }
    values.update(fields)
    return ShadowRow(**values)


def provider_calls(stack: Stack) -> dict[str, int]:
    """Calls each simulated model has served so far (the simulator's admin stats)."""
    admin = (stack.simulator_url or "").removesuffix("/v1")
    stats = httpx.get(f"{admin}/admin/stats", headers=stack.admin_headers(), timeout=5).json()
    return {name: int(m["requests"]) for name, m in stats["models"].items()}


class FakePredictor:
    """A learned router for strategy tests: fixed predicted qualities, no calibration
    (so the learned strategy takes its cheapest-capable path), and the prompts it saw."""

    calibration = None
    cascade_calibration = None
    verifier = None
    reference_model = "large"

    def __init__(self, scores: dict[str, float], version: str = "router-v7") -> None:
        self.scores = scores
        self.version = version
        self.asked: list[tuple[str, str]] = []

    def relative_size(self, prompt_chars: int) -> float:
        return 1.0

    def prime(self, texts: list[str]) -> None:
        pass

    def predict(self, text: str, task: str) -> dict[str, float]:
        self.asked.append((text, task))
        return dict(self.scores)
