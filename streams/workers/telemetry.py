"""The telemetry worker: telemetry and feedback topics -> ClickHouse, committed after insert.

The topics are the durable buffer: if ClickHouse refuses a batch, nothing is
committed and the batch is retried, so every row arrives; the tables replace
rows by key, so a retried batch does not count twice. Feedback without its own
``at`` takes the record's broker timestamp, so a replay writes the same version.

On the embedded engine the worker also serves reads (``sinks.query_service``)
on a read-only client of its own, with a token made at start; ``service_file``
holds the address, the pid and that token, mode 0600.
"""

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiohttp import web
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from schemas.access import new_token
from schemas.feedback import Feedback
from schemas.telemetry import TelemetryEvent
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
from streams.kafka.seals import SealGate
from streams.local.private_files import write_private
from streams.topics import TopicCatalogue

log = logging.getLogger(__name__)

BATCH_RECORDS = 2000
FLUSH_INTERVAL_MS = 500


def service_file(state_dir: Path) -> Path:
    return state_dir / "telemetry.json"


async def run_telemetry_worker(
    bootstrap: str,
    catalogue: TopicCatalogue,
    clickhouse_url: str,
    state_dir: Path,
    stop: asyncio.Event,
    cluster_key: bytes,
) -> None:
    """Consume telemetry (sealed by the workers: unsealed records are dropped and counted)
    and feedback (from producers: not sealed) into ClickHouse until ``stop`` is set."""
    gate = SealGate(cluster_key, "telemetry worker")
    client = await asyncio.to_thread(open_client, clickhouse_url)
    database = database_of(clickhouse_url)
    await asyncio.to_thread(migrate, client, database)
    sink = TelemetrySink(client, database)
    runner = None
    if is_embedded(clickhouse_url):
        reader = await asyncio.to_thread(open_reader, clickhouse_url)
        runner = await _serve_queries(reader, state_dir)
    consumer = group_consumer(
        bootstrap,
        [catalogue.telemetry.name, catalogue.feedback.name],
        f"{catalogue.namespace}-telemetry",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=FLUSH_INTERVAL_MS, max_records=BATCH_RECORDS)
            for records in batch.values():
                for record in records:
                    if record.topic == catalogue.feedback.name or gate.admits(
                        record.topic, record.key, record.value, record.headers
                    ):
                        _add(sink, record, catalogue)
            if batch:
                await _flush_until_written(sink, stop)
                await consumer.commit()
    finally:
        await consumer.stop()
        if runner is not None:
            await runner.cleanup()
            with contextlib.suppress(FileNotFoundError):
                service_file(state_dir).unlink()


def _add(
    sink: TelemetrySink, record: ConsumerRecord[bytes, bytes], catalogue: TopicCatalogue
) -> None:
    """Buffer one record as telemetry or feedback; malformed records are skipped, with a warning."""
    try:
        if record.topic == catalogue.feedback.name:
            # The record's timestamp is the producer's to set: the wall clock bounds it.
            at = min(datetime.fromtimestamp(record.timestamp / 1000, UTC), datetime.now(UTC))
            sink.add(Feedback.model_validate_json(record.value).received(at))
        else:
            sink.add(TelemetryEvent.model_validate_json(record.value))
    except ValidationError:
        kind = "feedback" if record.topic == catalogue.feedback.name else "telemetry"
        log.warning("skipping malformed %s at offset %s", kind, record.offset)


async def _flush_until_written(sink: TelemetrySink, stop: asyncio.Event) -> None:
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(sink.flush)
            return
        except Exception:
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
