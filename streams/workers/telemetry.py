"""The telemetry worker: telemetry, feedback and config topics -> ClickHouse, committed
after insert (config versions into ``configs``).

The topics are the durable buffer: if ClickHouse refuses a batch, nothing is
committed and the batch is retried, so every row arrives; the tables replace
rows by key, so a retried batch does not count twice. Feedback without its own
``at`` takes the record's broker timestamp, so a replay writes the same version.

Telemetry comes from the workers and must carry the cluster key's seal; feedback
comes from tenants and must prove its tenant (``processors.feedback_check``: signed
by one of its keys when the tenant is ``auth: signed``). What fails is dropped and
counted, never stored.

At start the worker migrates the database (``sinks.migrations``) and sets each
table's TTL from ``observability.telemetry.ttl_days`` (``sinks.ttl``), so a TTL
change takes effect on the next start.

On the embedded engine the worker also serves reads (``sinks.query_service``)
on a read-only client of its own, with a token made at start; ``service_file``
holds the address, the pid and that token, mode 0600.
"""

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from processors.config_change import config_row
from processors.feedback_check import admit_feedback
from schemas.access import new_token
from schemas.config import SwitchyardConfig
from schemas.errors import InvalidRequest, Unauthenticated
from schemas.live_config import AppliedConfig
from schemas.telemetry import ConfigRow, TelemetryEvent
from sinks.clickhouse import (
    TelemetryReader,
    TelemetrySink,
    database_of,
    is_embedded,
    migrate,
    open_client,
    open_reader,
)
from sinks.query_service import build_query_app
from streams.kafka.consumers import group_consumer
from streams.kafka.seals import Refusals, SealGate
from streams.local.private_files import write_private
from streams.observe.counting import TelemetryCounts
from streams.observe.metrics import telemetry_metrics
from streams.tenant_keys import Keyring
from streams.topics import TopicCatalogue
from streams.workers.live_config import LiveConfig

log = logging.getLogger(__name__)

BATCH_RECORDS = 2000
FLUSH_INTERVAL_MS = 500
MIN_FLUSH_S = 0.25  # what the embedded broker's follower fetch wait gave by itself


def service_file(state_dir: Path) -> Path:
    return state_dir / "telemetry.json"


async def run_telemetry_worker(
    bootstrap: str,
    catalogue: TopicCatalogue,
    clickhouse_url: str,
    state_dir: Path,
    stop: asyncio.Event,
    cluster_key: bytes,
    config: SwitchyardConfig,
) -> None:
    """Consume telemetry (sealed by the workers) and feedback (proven by its tenant) into
    ClickHouse until ``stop`` is set; records that fail their check are dropped and counted."""
    gate = SealGate(cluster_key, "telemetry worker")
    intake = _Intake(catalogue, gate, Keyring(config), config)
    live = LiveConfig(bootstrap, catalogue.config.name, gate, config, intake.use)
    await live.start("telemetry")
    client = await asyncio.to_thread(open_client, clickhouse_url)
    database = database_of(clickhouse_url)
    ttl_days = config.observability.telemetry.effective_ttl_days()
    await asyncio.to_thread(migrate, client, database, ttl_days)
    sink = TelemetrySink(client, database)
    runner = None
    if is_embedded(clickhouse_url):
        reader = await asyncio.to_thread(open_reader, clickhouse_url)
        runner = await _serve_queries(reader, state_dir)
    consumer = group_consumer(
        bootstrap,
        [catalogue.telemetry.name, catalogue.feedback.name, catalogue.config.name],
        f"{catalogue.namespace}-telemetry",
        batched=True,
    )
    await consumer.start()
    observed = config.observability.metrics.enabled
    counts = TelemetryCounts(telemetry_metrics() if observed else None, catalogue)
    committed: dict[TopicPartition, int] = {}
    unwatch = counts.watch(consumer, committed)
    try:
        await _consume(consumer, intake, sink, stop, counts, committed)
    finally:
        unwatch()
        await consumer.stop()
        await live.stop()
        if runner is not None:
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                service_file(state_dir).unlink()


async def _consume(
    consumer: AIOKafkaConsumer,
    intake: "_Intake",
    sink: TelemetrySink,
    stop: asyncio.Event,
    counts: TelemetryCounts,
    committed: dict[TopicPartition, int],
) -> None:
    """Read, insert, commit until ``stop``: at most one insert per ``MIN_FLUSH_S`` (or per
    ``BATCH_RECORDS``), since a broker that answers fetches as records come (Kafka) would
    otherwise make one per fetch; offsets commit only after their rows are inserted."""
    pending: dict[TopicPartition, int] = {}  # read, not yet inserted: offset to commit
    read = 0  # records read since the last insert
    flushed_at = time.monotonic()
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=FLUSH_INTERVAL_MS, max_records=BATCH_RECORDS)
        for tp, records in batch.items():
            for record in records:
                intake.add(sink, record)
            counts.fetched(tp.topic, len(records))
            pending[tp] = records[-1].offset + 1
            read += len(records)
        if pending and (read >= BATCH_RECORDS or time.monotonic() - flushed_at >= MIN_FLUSH_S):
            await _flush_until_written(sink, stop, counts)
            await consumer.commit()
            committed.update(pending)
            pending, read, flushed_at = {}, 0, time.monotonic()


class _Intake:
    """Checks and decodes one record of either topic into the sink."""

    def __init__(
        self, catalogue: TopicCatalogue, gate: SealGate, keyring: Keyring, config: SwitchyardConfig
    ) -> None:
        self.feedback_topic = catalogue.feedback.name
        self.config_topic = catalogue.config.name
        self.gate = gate
        self.keyring = keyring
        self.config = config
        self.unproven = Refusals("telemetry worker", "of feedback not proven by its tenant")

    def use(self, config: SwitchyardConfig) -> None:
        """A live config change: feedback is admitted by ``config``'s tenants and keys."""
        self.config = config
        self.keyring = Keyring(config)

    def add(self, sink: TelemetrySink, record: ConsumerRecord[bytes, bytes]) -> None:
        """Buffer one record; malformed ones are skipped with a warning, unproven or
        unsealed ones counted."""
        if record.topic != self.feedback_topic:
            if self.gate.admits(record.topic, record.key, record.value, record.headers):
                try:
                    sink.add(self._sealed(record.topic, record.value))
                except ValidationError:
                    kind = "config" if record.topic == self.config_topic else "telemetry"
                    log.warning("skipping malformed %s at offset %s", kind, record.offset)
            return
        # The record's timestamp is the producer's to set: the wall clock bounds it.
        arrived = min(datetime.fromtimestamp(record.timestamp / 1000, UTC), datetime.now(UTC))
        headers = {k: v for k, v in record.headers}
        try:
            sink.add(admit_feedback(record.value, headers, self.config, self.keyring, arrived))
        except Unauthenticated:
            self.unproven.refuse(record.topic)
        except InvalidRequest:
            log.warning("skipping malformed feedback at offset %s", record.offset)

    def _sealed(self, topic: str, value: bytes) -> TelemetryEvent | ConfigRow:
        if topic == self.config_topic:
            return config_row(AppliedConfig.model_validate_json(value))
        return TelemetryEvent.model_validate_json(value)


async def _flush_until_written(
    sink: TelemetrySink, stop: asyncio.Event, counts: TelemetryCounts
) -> None:
    delay = 0.5
    while True:
        started = time.perf_counter()
        try:
            if await asyncio.to_thread(sink.flush):  # 0: every record was refused
                counts.inserted(sink.last_rows, time.perf_counter() - started)
            return
        except Exception:
            counts.insert_failed()
            if stop.is_set():
                raise
            log.exception("telemetry insert failed; retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


async def _serve_queries(reader: TelemetryReader, state_dir: Path) -> web.AppRunner:
    token = new_token()
    runner = web.AppRunner(build_query_app(reader.query, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/query"
    state = orjson.dumps({"pid": os.getpid(), "url": url, "token": token})
    write_private(service_file(state_dir), state)  # once, at start-up
    return runner
