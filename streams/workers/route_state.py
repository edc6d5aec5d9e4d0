"""What the router follows besides its input: cached answers and observed latency.

Both are whole-topic followers (every router instance reads every
partition), like the provider workers' health board:

- ``ResponseCache`` follows the compacted ``cache`` topic from the start, so a
  restarted router knows every live entry; provider workers write it.
- ``ObservedLatency`` follows ``telemetry`` from a little before its end (the
  recent calls are what matter) and feeds each attempt to a ``LatencyBook``.
"""

import logging
import time
from datetime import datetime

import orjson

from processors.cache import usable
from processors.latency import LatencyBook, LatencyEstimate
from schemas.cache import CachedAnswer
from schemas.config import SwitchyardConfig
from streams.kafka.consumers import DecodingFollower, TopicFollower
from streams.kafka.seals import SealGate

log = logging.getLogger(__name__)

# Telemetry records read back at start, per partition, to warm the latency book.
_WARM_RECORDS = 2000
# Refresh the estimates the router reads at most this often.
_ESTIMATE_EVERY_S = 1.0


class ResponseCache:
    def __init__(self, bootstrap: str, topic: str, gate: SealGate) -> None:
        self.entries: dict[str, CachedAnswer] = {}
        self.follower = DecodingFollower(bootstrap, topic, gate, CachedAnswer, self._apply)

    def get(self, key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        entry = usable(self.entries.get(key), tenant, now)
        if entry is None:
            self.entries.pop(key, None)  # expired: forget it (the topic's retention drops it)
        return entry

    def _apply(self, entry: CachedAnswer) -> None:
        self.entries[entry.key] = entry


class ObservedLatency:
    def __init__(
        self, config: SwitchyardConfig, bootstrap: str, topic: str, gate: SealGate
    ) -> None:
        self.book = LatencyBook(config.models, config.routing.latency)
        self.follower = TopicFollower(bootstrap, topic, gate, self._apply)
        self._estimates = self.book.estimates()
        self._refreshed = 0.0

    def estimates(self, now: float) -> dict[str, LatencyEstimate]:
        if now - self._refreshed >= _ESTIMATE_EVERY_S:
            self._estimates = self.book.estimates(now)
            self._refreshed = now
        return self._estimates

    def _apply(self, raw: bytes | None) -> None:
        # Only three fields of each attempt are needed: skip full validation, it
        # would cost the router as much as routing a job.
        try:
            attempts = orjson.loads(raw or b"").get("attempts") or []
            for a in attempts:
                self.book.record(
                    str(a["model"]), str(a["outcome"]), float(a["latency_ms"]), time.monotonic()
                )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            log.debug("unreadable telemetry record skipped")

    async def start(self) -> None:
        await self.follower.start(from_end_minus=_WARM_RECORDS)
