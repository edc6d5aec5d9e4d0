"""The routing agent: validate -> cache -> classify -> policy -> strategy -> budget, one hop.

A faust app with agents over co-partitioned topics (requests, prepared
requests back from a tenant's pre-step service, and settlements, all keyed by
tenant) and one table, ``budget``, holding each tenant's ``BudgetSnapshot``.
Beside them it follows the cache topic (answers that can serve a request
with no provider call) and telemetry (latency per model). All decisions are
made by ``processors``; this module reads and writes Kafka and the table.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust

from processors import budget
from processors.cache import cache_key
from processors.learned import Learned
from processors.reply import cached_reply, rejected_reply, telemetry_event
from processors.router import Routed, RoutingContext, route_request
from processors.validate import parse_request, salvage_address
from schemas.budget import BudgetSnapshot
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob, SourcePosition
from schemas.errors import DeadlineExpired, InvalidRequest
from schemas.messages import InferenceReply, InferenceRequest
from schemas.plan import PlanStep
from schemas.settlement import SpendSettlement
from streams.kafka import quirks
from streams.kafka.consumers import HEARTBEAT_INTERVAL_MS, REBALANCE_TIMEOUT_MS, SESSION_TIMEOUT_MS
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue
from streams.workers.route_state import ObservedLatency, ResponseCache

log = logging.getLogger(__name__)


def load_learned(config: SwitchyardConfig) -> Learned:
    """The learned strategy with its artifact loaded once (none configured = priors only)."""
    settings = config.routing.learned
    if settings.artifact is None:
        return Learned(None, settings.aliases)
    from sinks.router_artifact import load_router

    return Learned(load_router(Path(settings.artifact)), settings.aliases)


async def reload_learned(config: SwitchyardConfig, current: Learned) -> Learned | None:
    """The strategy with the artifact's new current version, or None if there is none.

    A version that fails to load is logged and the one in use kept: a bad
    retrain must not take routing down.
    """
    from schemas.errors import RouterArtifactError
    from sinks.router_artifact import current_version, load_router

    artifact = config.routing.learned.artifact
    if artifact is None:
        return None
    named = current_version(Path(artifact))
    if named is None or named == current.version:
        return None
    try:
        model = await asyncio.to_thread(load_router, Path(artifact))
    except RouterArtifactError as exc:
        log.warning("router artifact %s not loaded, keeping %s: %s", named, current.version, exc)
        return None
    log.info("learned router %s loaded (was %s)", model.version, current.version)
    return Learned(model, config.routing.learned.aliases)


@dataclass
class RouterState:
    """What routing reads besides config and the budget table."""

    cache: ResponseCache
    latency: ObservedLatency
    learned: Learned

    def context(self) -> RoutingContext:
        return RoutingContext(self.learned, self.latency.estimates(time.monotonic()))


def build_router_app(
    config: SwitchyardConfig,
    bootstrap: str,
    catalogue: TopicCatalogue,
    web_port: int,
    state_dir: Path,
    replication_factor: int = 1,
) -> faust.App:
    quirks.apply()
    app = faust.App(
        catalogue.router_app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(state_dir / "faust"),
        processing_guarantee="at_least_once",
        topic_partitions=ROUTING_PARTITIONS,
        topic_replication_factor=replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        producer_linger=0.005,
        producer_max_request_size=4 * config.limits.max_message_bytes,
        consumer_max_fetch_size=4 * config.limits.max_message_bytes,
        web_enabled=True,
        web_bind="127.0.0.1",
        web_port=web_port,
        web_host="127.0.0.1",
        autodiscover=False,
        # Short group timeouts: the embedded broker makes a join wait about half
        # the rebalance timeout, and faust's default (60 s) would stall every start.
        broker_session_timeout=SESSION_TIMEOUT_MS / 1000,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL_MS / 1000,
        broker_rebalance_timeout=REBALANCE_TIMEOUT_MS / 1000,
    )
    raw: faust.Schema[Any, Any] = faust.Schema(key_serializer="raw", value_serializer="raw")
    requests_topic = app.topic(catalogue.requests.name, schema=raw)
    prepared_topic = app.topic(catalogue.prepared.name, schema=raw)
    settlements_topic = app.topic(catalogue.settlements.name, schema=raw)
    outputs = _Outputs(app, catalogue)
    state = RouterState(
        ResponseCache(bootstrap, catalogue.cache.name),
        ObservedLatency(config, bootstrap, catalogue.telemetry.name),
        load_learned(config),
    )
    json_schema: faust.Schema[Any, Any] = faust.Schema(
        key_serializer="json", value_serializer="json"
    )
    budget_table = app.Table(
        "budget",
        default=None,
        partitions=ROUTING_PARTITIONS,
        schema=json_schema,
        changelog_topic=app.topic(catalogue.budget_changelog.name, schema=json_schema),
    )

    def snapshot_of(tenant: str) -> BudgetSnapshot | None:
        stored = budget_table.get(tenant)
        return BudgetSnapshot.model_validate(stored) if stored else None

    @app.task  # type: ignore[untyped-decorator]
    async def follow() -> None:
        await state.cache.follower.start()
        await state.latency.start()
        reload_s = config.routing.learned.reload_s
        try:
            if reload_s > 0 and config.routing.learned.artifact is not None:
                while True:  # until faust cancels its tasks at shutdown
                    await asyncio.sleep(reload_s)
                    reloaded = await reload_learned(config, state.learned)
                    if reloaded is not None:
                        state.learned = reloaded
            await asyncio.Event().wait()
        finally:
            await state.cache.follower.stop()
            await state.latency.follower.stop()

    @app.agent(requests_topic)
    async def route(stream: Any) -> None:
        async for event in stream.events():
            await _route_one(event, config, snapshot_of, budget_table, outputs, state, False)

    @app.agent(prepared_topic)
    async def route_prepared(stream: Any) -> None:
        async for event in stream.events():
            await _route_one(event, config, snapshot_of, budget_table, outputs, state, True)

    @app.agent(settlements_topic)
    async def settle(stream: Any) -> None:
        async for event in stream.events():
            settlement = SpendSettlement.model_validate_json(event.value)
            tenant = config.tenants.get(settlement.tenant)
            if tenant is None:
                continue
            after = budget.settle(
                snapshot_of(settlement.tenant),
                tenant,
                settlement,
                event.message.offset,
                datetime.now(UTC),
            )
            budget_table[settlement.tenant] = after.model_dump()

    @app.page("/budget/")
    async def budget_page(web: Any, request: Any) -> Any:
        return web.json({k: v for k, v in budget_table.items()})

    return app


class _Outputs:
    """Sends through faust's producer, so sends are flushed before offsets commit."""

    def __init__(self, app: faust.App, catalogue: TopicCatalogue) -> None:
        self.app = app
        self.catalogue = catalogue
        self._topics: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(name, key_serializer="raw", value_serializer="raw")
        return self._topics[name]

    async def send(self, name: str, key: str | None, value: bytes, headers: Any = None) -> None:
        await self.topic(name).send(
            key=key.encode() if key else None, value=value, headers=headers or None
        )

    async def reply(self, reply: InferenceReply, reply_to: str | None, headers: Any) -> None:
        topic = reply_to or self.catalogue.replies.name
        await self.send(topic, reply.request_id, dumps(reply), headers)


async def _route_one(
    event: Any,
    config: SwitchyardConfig,
    snapshot_of: Any,
    budget_table: Any,
    outputs: _Outputs,
    state: RouterState,
    prepared: bool,
) -> None:
    """Route one job; ``prepared`` when it comes back from its tenant's pre-step."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    message = event.message
    try:
        request = parse_request(event.value, config)
    except InvalidRequest as exc:
        await _dead_letter(event, exc, config, outputs, now)
        return
    if request.deadline is not None and request.deadline <= now:
        error = DeadlineExpired(f"deadline {request.deadline.isoformat()} passed before routing")
        await _finish_rejected(request, error, None, config, outputs, now, event.headers)
        return
    tenant = config.tenants[request.tenant]
    if tenant.pre_step_topic and not prepared:
        # The tenant's service prepares the job first and publishes it to `prepared`.
        await outputs.send(tenant.pre_step_topic, request.tenant, event.value, event.headers)
        return
    if tenant.cache.enabled:
        hit = state.cache.get(cache_key(request), request.tenant, now)
        if hit is not None:
            reply = cached_reply(request, hit, config, now)
            await outputs.reply(reply, request.reply_to, event.headers)
            data_class = config.data_class_for(request.data_classification)
            record = telemetry_event(reply, request, None, data_class)
            await outputs.send(outputs.catalogue.telemetry.name, request.request_id, dumps(record))
            return
    pre_step = tenant.pre_step_topic if prepared else None
    result = route_request(
        request,
        config,
        snapshot_of(request.tenant),
        message.offset,
        now,
        state.context(),
        pre_step,
    )
    if result.snapshot is not None:
        budget_table[request.tenant] = result.snapshot.model_dump()
    if isinstance(result, Routed):
        job = DispatchJob(
            request=request,
            decision=result.decision,
            explanation=result.explanation,
            received_at=now,
            routing_ms=(time.perf_counter() - started) * 1000,
            source=SourcePosition(partition=message.partition, offset=message.offset),
            steps=[PlanStep(kind="pre_step", detail=pre_step)] if pre_step else [],
        )
        dispatch = outputs.catalogue.dispatch.name
        await outputs.send(dispatch, request.request_id, dumps(job), event.headers)
    else:
        await _finish_rejected(
            request, result.error, result.explanation, config, outputs, now, event.headers
        )


async def _finish_rejected(
    request: InferenceRequest,
    error: Any,
    explanation: Any,
    config: SwitchyardConfig,
    outputs: _Outputs,
    now: datetime,
    headers: Any,
) -> None:
    reply = rejected_reply(
        request.request_id, request.tenant, error, now, explanation, request.submitted_at
    )
    await outputs.reply(reply, request.reply_to, headers)
    data_class = config.data_class_for(request.data_classification)
    event = telemetry_event(reply, request, None, data_class)
    await outputs.send(outputs.catalogue.telemetry.name, request.request_id, dumps(event))


async def _dead_letter(
    event: Any, exc: InvalidRequest, config: SwitchyardConfig, outputs: _Outputs, now: datetime
) -> None:
    """Park a bad message with its reason, and tell its producer if we can find them."""
    raw: bytes | None = event.value
    limit = config.limits.max_message_bytes
    request_id, tenant, reply_to = salvage_address(raw, limit)
    payload = raw or b""
    letter = DeadLetter(
        error=exc.info(),
        stage="validate",
        source_topic=event.message.topic,
        source_partition=event.message.partition,
        source_offset=event.message.offset,
        request_id=request_id,
        tenant=tenant,
        reply_to=reply_to,
        payload=payload[:limit].decode("utf-8", errors="replace"),
        payload_bytes=len(payload),
        payload_truncated=len(payload) > limit,
        dead_lettered_at=now,
    )
    await outputs.send(outputs.catalogue.dead_letter.name, request_id, dumps(letter))
    if request_id is not None:
        reply = rejected_reply(request_id, tenant or "", exc, now)
        await outputs.reply(reply, reply_to, event.headers)


__all__ = ["build_router_app"]
