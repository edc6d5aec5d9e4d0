"""The provider worker: dispatch topic -> model API -> reply, telemetry and settlement.

Jobs of one fetched batch run concurrently (each model capped by its
``max_concurrency``); the batch's outputs are flushed, then its offsets are
committed. A crash before the commit replays the batch: at-least-once.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import ValidationError

from processors.dispatch import next_model
from processors.errors import (
    DeadlineExpired,
    ProviderTimeout,
    RateLimited,
    RetryableError,
    SwitchyardError,
)
from processors.reply import completed_reply, telemetry_event
from schemas.codec import dumps
from schemas.config import ModelSpec, SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.messages import Attempt, AttemptOutcome, ChatMessage, ErrorInfo, Usage
from schemas.settlement import SpendSettlement
from sinks.kafka_out import Headers, KafkaPublisher, producer_for
from streams.consumers import group_consumer
from streams.providers import ProviderClient, client_for
from streams.topics import TopicCatalogue

log = logging.getLogger(__name__)

BATCH_RECORDS = 256


@dataclass
class _Answer:
    message: ChatMessage | None = None
    usage: Usage | None = None
    cost_usd: float = 0.0
    error: ErrorInfo | None = None
    model: ModelSpec | None = None


def _outcome(error: SwitchyardError) -> AttemptOutcome:
    if isinstance(error, ProviderTimeout):
        return "timeout"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, RetryableError):
        return "unavailable"
    return "error"


class ProviderWorker:
    def __init__(self, config: SwitchyardConfig, bootstrap: str, catalogue: TopicCatalogue) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.catalogue = catalogue
        self.jobs_done = 0

    async def run(self, stop: asyncio.Event) -> None:
        limit = self.config.limits.max_message_bytes
        consumer = group_consumer(
            self.bootstrap,
            self.catalogue.dispatch.name,
            f"{self.catalogue.namespace}-providers",
            max_fetch_bytes=4 * limit,
        )
        producer = producer_for(self.bootstrap, 4 * limit)
        total = sum(m.max_concurrency for m in self.config.models)
        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=total, max_keepalive_connections=total)
        )
        clients = {m.name: client_for(m, http) for m in self.config.models}
        gates = {m.name: asyncio.Semaphore(m.max_concurrency) for m in self.config.models}
        await producer.start()
        await consumer.start()
        publisher = KafkaPublisher(producer)
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=BATCH_RECORDS)
                records = [r for rs in batch.values() for r in rs]
                if not records:
                    continue
                await asyncio.gather(
                    *(
                        self._handle(r.value, list(r.headers), clients, gates, publisher)
                        for r in records
                    )
                )
                await publisher.flush()
                await consumer.commit()
                self.jobs_done += len(records)
        finally:
            await consumer.stop()
            await producer.stop()
            await http.aclose()

    async def _handle(
        self,
        raw: bytes,
        headers: Headers,
        clients: dict[str, ProviderClient],
        gates: dict[str, asyncio.Semaphore],
        publisher: KafkaPublisher,
    ) -> None:
        try:
            job = DispatchJob.model_validate_json(raw)
        except ValidationError:
            # Only the router writes this topic; a bad job means a version skew.
            log.error("undecodable dispatch job (%d bytes) skipped", len(raw))
            return
        attempts: list[Attempt] = []
        answer = await self._call_until_answered(job, attempts, clients, gates)
        now = datetime.now(UTC)
        spec = answer.model
        reply = completed_reply(
            job,
            attempts,
            answer.message,
            answer.usage,
            answer.cost_usd,
            answer.error,
            now,
            region=spec.region if spec else None,
            provider=spec.provider if spec else None,
        )
        request = job.request
        data_class = request.data_classification or self.config.routing.data_classification
        event = telemetry_event(reply, request, job, data_class)
        settlement = SpendSettlement(
            request_id=request.request_id,
            tenant=request.tenant,
            reserved_usd=job.decision.estimated_cost_usd,
            actual_usd=answer.cost_usd,
        )
        reply_to = request.reply_to or self.catalogue.replies.name
        await publisher.add(reply_to, request.request_id, dumps(reply), headers)
        await publisher.add(self.catalogue.telemetry.name, request.request_id, dumps(event))
        await publisher.add(self.catalogue.settlements.name, request.tenant, dumps(settlement))

    async def _call_until_answered(
        self,
        job: DispatchJob,
        attempts: list[Attempt],
        clients: dict[str, ProviderClient],
        gates: dict[str, asyncio.Semaphore],
    ) -> _Answer:
        request = job.request
        error: ErrorInfo | None = None
        max_tokens = request.max_tokens or self.config.routing.default_max_tokens
        while (name := next_model(job.decision, attempts)) is not None:
            spec = self.config.model(name)
            if spec is None:  # config changed under a queued job
                attempts.append(Attempt(model=name, provider="?", outcome="error", latency_ms=0))
                continue
            if request.deadline is not None and request.deadline <= datetime.now(UTC):
                return _Answer(error=DeadlineExpired("deadline passed before the call").info())
            started = time.perf_counter()
            try:
                async with gates[name]:
                    completion = await clients[name].complete(request, max_tokens)
            except SwitchyardError as exc:
                error = exc.info()
                attempts.append(
                    Attempt(
                        model=name,
                        provider=spec.provider,
                        outcome=_outcome(exc),
                        latency_ms=(time.perf_counter() - started) * 1000,
                        error=error,
                    )
                )
                continue
            attempts.append(
                Attempt(
                    model=name,
                    provider=spec.provider,
                    outcome="ok",
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            )
            usage = completion.usage
            return _Answer(
                message=completion.message,
                usage=usage,
                model=spec,
                cost_usd=spec.cost_usd(usage.input_tokens, usage.output_tokens),
            )
        return _Answer(error=error or ErrorInfo(code="no_model", message="no model left to try"))
