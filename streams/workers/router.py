"""The routing agent: validate -> cache -> classify -> policy -> strategy -> budget, one hop.

A faust app with agents over co-partitioned topics (requests, interactive
requests, prepared requests back from a tenant's pre-step service, and
settlements, all keyed by tenant) and one table, ``budget``, holding each
tenant's sealed ``BudgetSnapshot`` (``streams.workers.budget_table``).
Beside them it follows the cache topic (answers that can serve a request
with no provider call) and telemetry (latency per model). Every decision is
one call into ``processors.router_hop``; this module decodes events, stores
the budget snapshot the hop returns and sends the records it returns.

No message ends an agent: if deciding or sending one raises, the message is
dead-lettered (``unprocessable``, with an error reply when its address can be
salvaged) and the agent goes on with the next.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from opentelemetry.trace import TracerProvider

from processors.budget import Position
from processors.classify import raw_last_user_text
from processors.router import RoutingContext
from processors.router_hop import (
    HopResult,
    RouterView,
    failed_hop,
    route_hop,
    settle_hop,
)
from processors.strategies.learned import Learned, uses_learned
from schemas.config import SwitchyardConfig
from streams.kafka import quirks
from streams.kafka.seals import SealGate
from streams.kafka.topic_directory import TopicDirectory
from streams.observe.collectors import budget_state, faust_lag
from streams.observe.counting import RouterCounts
from streams.observe.metrics import router_metrics
from streams.observe.tracing import TraceHeaders, Tracing, tracing_from
from streams.outputs import records
from streams.tenant_keys import Keyring
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue, home_partition
from streams.workers.budget_table import BudgetBook, budget_book
from streams.workers.live_config import LiveConfig
from streams.workers.route_state import (
    ObservedLatency,
    ResponseCache,
    load_learned,
    reload_learned,
)
from streams.workers.router_app import (
    BATCH_MAX,
    BATCH_WITHIN_S,
    add_budget_page,
    faust_app,
    owned_partitions,
)

log = logging.getLogger(__name__)


@dataclass
class RouterState:
    """What routing reads besides config and the budget table."""

    cache: ResponseCache
    latency: ObservedLatency
    learned: Learned
    topics: TopicDirectory

    def context(self) -> RoutingContext:
        return RoutingContext(self.learned, self.latency.estimates(time.monotonic()))


def build_router_app(
    config: SwitchyardConfig,
    bootstrap: str,
    catalogue: TopicCatalogue,
    web_port: int,
    state_dir: Path,
    cluster_key: bytes,
    replication_factor: int = 1,
    tracer_provider: TracerProvider | None = None,
) -> faust.App:
    """The router worker's faust app: its agents, the budget table, the followers' task
    and the ``/budget/`` page. ``cluster_key`` seals what it writes to internal topics
    and checks what it reads from them (``processors.seal``); with ``tracer_provider``,
    each job's decision is a span (``streams.observe.tracing``)."""
    quirks.apply()
    app = faust_app(config, bootstrap, catalogue, web_port, state_dir, replication_factor)
    gate = SealGate(cluster_key, "router")
    book = budget_book(app, catalogue, gate)
    state = RouterState(
        ResponseCache(bootstrap, catalogue.cache.name, gate),
        ObservedLatency(config, bootstrap, catalogue.telemetry.name, gate),
        load_learned(config),
        TopicDirectory(bootstrap),
    )
    hops = _Hops(app, config, catalogue, book, state, gate, tracing_from(tracer_provider))
    if config.observability.metrics.enabled:
        hops.counts = _observed(app, config, catalogue, hops)
    live = LiveConfig(bootstrap, catalogue.config.name, gate, config, hops.use)
    app.task(_follower(config, state, live))
    _add_agents(app, catalogue, hops)
    add_budget_page(app, book, owned_partitions(app, catalogue))
    return app


def _observed(
    app: faust.App, config: SwitchyardConfig, catalogue: TopicCatalogue, hops: "_Hops"
) -> RouterCounts:
    """Count the router's batches, and read its lag and budgets at each scrape."""
    metrics = router_metrics()
    names = catalogue.short_names()
    agents = {names[t.name] for t in (catalogue.requests, catalogue.interactive,
              catalogue.prepared, catalogue.settlements)}  # fmt: skip
    metrics.state.attach(faust_lag(app, names, agents))
    owned = owned_partitions(app, catalogue)
    metrics.state.attach(
        budget_state(hops.book.get, lambda: hops.config, owned, ROUTING_PARTITIONS)
    )
    return RouterCounts(metrics, catalogue, config)


def _follower(
    config: SwitchyardConfig, state: RouterState, live: LiveConfig
) -> Callable[[], Awaitable[None]]:
    """The task that runs the cache, latency and config followers and reloads the learned
    router."""

    async def follow() -> None:
        await live.start("router")
        await state.cache.follower.start()
        await state.latency.start()
        listing = asyncio.create_task(state.topics.follow())
        try:
            await _reload_learned_forever(config, state)
            await asyncio.Event().wait()
        finally:
            listing.cancel()
            await live.stop()
            await state.cache.follower.stop()
            await state.latency.follower.stop()

    return follow


async def _reload_learned_forever(config: SwitchyardConfig, state: RouterState) -> None:
    """Swap in the artifact's new current version every ``reload_s``, until faust cancels
    its tasks at shutdown; returns at once when reloading is off."""
    reload_s = config.routing.learned.reload_s
    if reload_s <= 0 or config.routing.learned.artifact is None:
        return
    while True:
        await asyncio.sleep(reload_s)
        reloaded = await reload_learned(config, state.learned)
        if reloaded is not None:
            state.learned = reloaded


def _add_agents(app: faust.App, catalogue: TopicCatalogue, hops: "_Hops") -> None:
    raw: faust.Schema[Any, Any] = faust.Schema(key_serializer="raw", value_serializer="raw")

    # ``take_events`` acks a batch's events only after the body has handled them, and
    # faust flushes the producer before it commits: a batch's outputs are in Kafka
    # before its offsets are.
    @app.agent(app.topic(catalogue.requests.name, schema=raw))
    async def route(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            await hops.route(events, prepared=False)

    @app.agent(app.topic(catalogue.interactive.name, schema=raw))
    async def route_interactive(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            await hops.route(events, prepared=False)

    @app.agent(app.topic(catalogue.prepared.name, schema=raw))
    async def route_prepared(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            await hops.route(events, prepared=True)

    @app.agent(app.topic(catalogue.settlements.name, schema=raw))
    async def settle(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, BATCH_WITHIN_S):
            await hops.settle(events)


class _Hops:
    """Runs the hops on faust events: decode, one call into ``processors.router_hop``,
    store the snapshot, send the outputs; with ``tracing``, record each job's span and
    pass its context on with the job."""

    def __init__(
        self,
        app: faust.App,
        config: SwitchyardConfig,
        catalogue: TopicCatalogue,
        book: BudgetBook,
        state: RouterState,
        gate: SealGate,
        tracing: Tracing | None,
    ) -> None:
        self.app = app
        self.tracing = tracing
        self.gate = gate
        self.config = config
        self.catalogue = catalogue
        self.book = book
        self.state = state
        self.keyring = Keyring(config)
        self.keyring.warn()
        self.replies = state.topics.reply_topics(catalogue)
        # One batch at a time across the agents: a batch's snapshots are stored only
        # once its outputs are acknowledged, and another agent's batch must not store
        # them early by building on them (``_store_and_send``). FIFO, so an
        # interactive batch waits for at most the batch being decided.
        self.turn = asyncio.Lock()
        self.counts: RouterCounts | None = None  # metrics off
        self.primes = uses_learned(config)

    def use(self, config: SwitchyardConfig) -> None:
        """A live config change: batches decided from now on use ``config``."""
        self.config = config
        self.primes = uses_learned(config)
        self.keyring = Keyring(config)
        if self.counts is not None:
            self.counts.tenants.use(config.tenants)

    async def route(self, events: Sequence[Any], prepared: bool) -> None:
        """Route a batch of jobs; ``prepared`` when they come back from their tenant's
        pre-step. Every job is decided before anything is sent, each reading the budget
        snapshot the one before it staged (``BudgetBook.stage``)."""
        async with self.turn:
            started = time.perf_counter()
            view = RouterView(
                self.book.get,
                self.state.context(),
                self.state.cache.get,
                self.replies,
                self.keyring,
                home_partition,
                self.gate.cluster_key,
            )
            if self.primes:  # featurise the batch's prompts at once (a speed-up only)
                texts = (raw_last_user_text(event.value) for event in events)
                self.state.learned.prime([t for t in texts if t is not None])
            decided = [self._route_one(event, view, prepared) for event in events]
            await self._store_and_send(decided)
            self._count(events, decided, started)

    def _route_one(self, event: Any, view: RouterView, prepared: bool) -> "_Decided":
        started = time.perf_counter()
        begun = time.time_ns() if self.tracing is not None else 0
        message = event.message
        position = Position(message.topic, message.partition, message.offset)
        # The signature is the router's to check; ``records`` drops it from what it
        # sends on, except from a job moved to its tenant's home partition.
        headers = event.headers or {}
        try:
            result = route_hop(
                event.value,
                headers,
                position,
                prepared,
                self.config,
                view,
                datetime.now(UTC),
                lambda: (time.perf_counter() - started) * 1000,
            )
        except Exception as exc:
            result = self._failed(event.value, exc, position)
        tracing = self.tracing
        trace = tracing.route(headers, result.outputs, begun, message.topic) if tracing else ()
        return self._staged(_Decided(result, headers, position, event.value, event.key, trace))

    async def settle(self, events: Sequence[Any]) -> None:
        """Apply a batch of settlements; one without the cluster key's seal is dropped
        and counted."""
        async with self.turn:
            started = time.perf_counter()
            decided = await self._settle(events)
            self._count(events, decided, started)

    def _count(self, events: Sequence[Any], decided: list["_Decided"], started: float) -> None:
        if self.counts is None or not events:
            return
        tenant = self.counts.tenants.of_key
        handled = ((tenant(d.key), d.result.outputs) for d in decided)
        self.counts.batch(events[0].message.topic, handled, time.perf_counter() - started)

    async def _settle(self, events: Sequence[Any]) -> list["_Decided"]:
        now = datetime.now(UTC)
        decided = []
        for event in events:
            message = event.message
            if not self.gate.admits(message.topic, event.key, event.value, event.headers):
                continue
            position = Position(message.topic, message.partition, message.offset)
            try:
                result = settle_hop(event.value, position, self.config, self.book.get, now)
            except Exception as exc:
                result = self._failed(event.value, exc, position)
            decided.append(self._staged(_Decided(result, None, position, event.value, event.key)))
        await self._store_and_send(decided)
        return decided

    def _staged(self, decided: "_Decided") -> "_Decided":
        result = decided.result
        if result.tenant is not None and result.snapshot is not None:
            self.book.stage(result.tenant, result.snapshot)
        return decided

    def _failed(self, raw: bytes | None, exc: Exception, position: Position) -> HopResult:
        """The dead letter (and error reply, when its address can be salvaged) for a
        message whose hop raised: no message ends the agent."""
        log.warning(
            "%s:%d@%d dead-lettered: its hop raised %s",
            position.topic,
            position.partition,
            position.offset,
            type(exc).__name__,
        )
        now = datetime.now(UTC)
        return HopResult(failed_hop(raw, exc, position, self.config, now, self.replies))

    async def _store_and_send(self, batch: list["_Decided"]) -> None:
        """Send the batch's outputs in order through faust's producer, wait until the
        broker has acknowledged them all, then store the batch's snapshots, one per
        tenant. So a snapshot that marks a request applied proves its outputs were
        written, and a replay of it sends nothing (``processors.router.Replayed``).

        A job whose outputs cannot be buffered is dead-lettered; if even that fails, it
        is logged and the batch goes on (its offset still commits: a message that breaks
        the router must not loop it). A failed acknowledgement raises before anything is
        stored, and the batch is replayed."""
        acks: list[Awaitable[Any]] = []
        for decided in batch:
            try:
                acks += await self._send(decided.result, decided.headers, decided.trace)
            except Exception as exc:
                try:
                    letter = self._failed(decided.raw, exc, decided.position)
                    acks += await self._send(letter, decided.headers)
                except Exception as again:
                    log.error(
                        "%s:%d@%d not even dead-lettered: %s",
                        decided.position.topic,
                        decided.position.partition,
                        decided.position.offset,
                        type(again).__name__,
                    )
        await asyncio.gather(*acks)
        self.book.write_staged()

    async def _send(
        self, result: HopResult, headers: Any, trace: TraceHeaders = ()
    ) -> list[Awaitable[Any]]:
        """Hand the outputs to the producer; the acknowledgements to wait for."""
        sent = records(result.outputs, self.catalogue, headers, self.gate.cluster_key, trace)
        producer = self.app.producer
        acks = []
        for output, (topic, key, value, sent_headers) in zip(result.outputs, sent, strict=True):
            ack = await producer.send(
                topic,
                key.encode() if key else None,
                value,
                output.partition,
                None,
                sent_headers or None,
            )
            acks.append(ack)
        return acks


@dataclass(frozen=True)
class _Decided:
    """One event's hop result, with what its outputs and any dead letter need."""

    result: HopResult
    headers: Any
    position: Position
    raw: bytes | None
    key: bytes | None  # the tenant's name, as the producer keyed it
    trace: TraceHeaders = ()  # the router span's header, for the job's next hop


__all__ = ["build_router_app"]
