"""Readers of worker state for the scrape-time gauges (``metrics.StateCollector``).

Each function here returns a source: a callable that yields ``(family, labels,
value)`` readings when Prometheus scrapes, from the state the worker keeps anyway
(its consumer, its budget book, its endpoint gates). Nothing is updated per
message. Sources run on the endpoint's thread, not the worker's loop
(``streams.observe.endpoint``): they read, never write, and copy a collection
before iterating it; one that still trips over a change is skipped for that scrape.
"""

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.budget import current
from processors.dispatch import EndpointGate
from schemas.budget import BudgetSnapshot
from schemas.config import SwitchyardConfig
from streams.observe.metrics import LAG, PREFIX, Reading, Source
from streams.topics import home_partition

CIRCUIT_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


def kafka_lag(
    consumer: AIOKafkaConsumer, committed: Mapping[TopicPartition, int], names: Mapping[str, str]
) -> Source:
    """Lag of an aiokafka group consumer: each assigned partition's high watermark minus
    the offset last committed for it (``committed``: the worker's own record of what it
    committed); partitions with neither known yet are left out."""

    def read() -> Iterator[Reading]:
        done = dict(committed)
        for tp in list(consumer.assignment()):
            end, at = consumer.highwater(tp), done.get(tp)
            if end is not None and at is not None:
                yield LAG.name, (names.get(tp.topic, ""), str(tp.partition)), float(end - at)

    return read


def faust_lag(app: Any, names: Mapping[str, str], topics: set[str]) -> Source:
    """Lag of the faust app's consumer on its agents' ``topics`` (short names): high
    watermark minus the offset faust last committed (its ``_committed_offset``, the
    next offset to read; faust has no public reader of it)."""

    def read() -> Iterator[Reading]:
        consumer = app._consumer  # None until the app starts; reading ``consumer`` makes one
        if consumer is None:
            return
        committed = consumer._committed_offset
        for tp in list(consumer.assignment()):
            name = names.get(tp.topic)
            if name not in topics:
                continue
            end, at = consumer.highwater(tp), committed.get(tp)
            if end is not None and at is not None:
                yield LAG.name, (name, str(tp.partition)), float(end - at)

    return read


def budget_state(
    book_get: Callable[[str], BudgetSnapshot | None],
    config: Callable[[], SwitchyardConfig],
    owned: Callable[[], set[int]],
    partitions: int,
) -> Source:
    """Spend, limit and rate-limit cells of each configured tenant whose home partition
    this router owns (``owned``): another router holds the others' budgets, and a
    standby copy here may be stale."""

    def read() -> Iterator[Reading]:
        now = datetime.now(UTC)
        mine = owned()
        for name, spec in list(config().tenants.items()):
            if home_partition(name, partitions) not in mine:
                continue
            snapshot = current(book_get(name), spec, now)
            yield from _budget_readings(name, snapshot, spec.budget_usd, now.timestamp())

    return read


def _budget_readings(
    tenant: str, snapshot: BudgetSnapshot, limit: float | None, now: float
) -> Iterator[Reading]:
    labels = (tenant,)
    yield PREFIX + "budget_spent_usd", labels, snapshot.spent_usd
    yield PREFIX + "budget_reserved_usd", labels, snapshot.reserved_usd
    if limit is not None:
        yield PREFIX + "budget_limit_usd", labels, limit
        yield PREFIX + "budget_remaining_usd", labels, limit - snapshot.committed_usd
    for cell, tat in list(snapshot.rate_tat.items()):
        yield PREFIX + "rate_limit_backlog_seconds", (tenant, cell), max(0.0, tat - now)


def endpoint_state(gates: Mapping[str, EndpointGate]) -> Source:
    """Each model endpoint's breaker state, pace and Retry-After cool-down, as this
    worker holds them."""

    def read() -> Iterator[Reading]:
        now = time.time()
        for model, gate in list(gates.items()):
            labels = (model,)
            yield PREFIX + "circuit_state", labels, CIRCUIT_STATES[gate.breaker.state]
            pace = gate.pacer.pace()
            if pace is not None:
                yield PREFIX + "endpoint_pace_per_second", labels, pace
            yield (
                PREFIX + "endpoint_cooldown_seconds",
                labels,
                max(0.0, gate.pacer.cool_until - now),
            )

    return read


def provider_load(load: Callable[[], tuple[int, int, int]]) -> Source:
    """A provider worker's jobs running, jobs waiting and the waiting jobs' bytes."""

    def read() -> Iterator[Reading]:
        running, waiting, waiting_bytes = load()
        yield PREFIX + "jobs_in_flight", (), float(running)
        yield PREFIX + "jobs_waiting", (), float(waiting)
        yield PREFIX + "read_ahead_bytes", (), float(waiting_bytes)

    return read
