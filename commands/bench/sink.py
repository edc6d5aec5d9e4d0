"""Scenario 5: the telemetry sink alone, as the telemetry worker drives it.

The records are the telemetry an end-to-end run left on its topic (real events,
not synthetic rows); they are decoded and inserted in the worker's batch size
into a fresh embedded ClickHouse in this process. The clock covers decoding,
buffering and the inserts, which is the worker's work per batch minus Kafka.
"""

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from schemas.telemetry import TelemetryEvent
from sinks.clickhouse import TelemetrySink, database_of, migrate, open_client
from streams.kafka.reading import read_to_end
from streams.workers.telemetry import BATCH_RECORDS


async def _raw_events(bootstrap: str, topic: str) -> list[bytes]:
    return [record.value async for record in read_to_end(bootstrap, topic) if record.value]


def sink_rate(bootstrap: str, telemetry_topic: str, state_dir: Path) -> dict[str, Any]:
    """Rows per second into a new embedded ClickHouse under ``state_dir``."""
    raw = asyncio.run(_raw_events(bootstrap, telemetry_topic))
    url = f"chdb://{state_dir / 'bench' / f'sink-{uuid.uuid4().hex[:6]}'}"
    client = open_client(url)
    database = database_of(url)
    migrate(client, database)
    sink = TelemetrySink(client, database)
    rows = 0
    started = time.perf_counter()
    for start in range(0, len(raw), BATCH_RECORDS):
        for value in raw[start : start + BATCH_RECORDS]:
            event = TelemetryEvent.model_validate_json(value)
            rows += (event.request is not None) + len(event.attempts) + len(event.shadow)
            sink.add(event)
        sink.flush()
    seconds = time.perf_counter() - started
    return {
        "events": len(raw),
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1) if seconds else 0.0,
    }
