"""What the router reads besides its input: cached answers, observed latency, and
the learned router's artifact (``load_learned``, ``reload_learned``).

Both are whole-topic followers (every router instance reads every
partition), like the provider workers' health board:

- ``ResponseCache`` follows the compacted ``cache`` topic from the start, so a
  restarted router knows every live entry; provider workers write it.
- ``ObservedLatency`` follows ``telemetry`` from a little before its end (the
  recent calls are what matter) and feeds each attempt to a ``LatencyBook``.
"""

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path

import orjson

from processors.cache import usable
from processors.cascade import Judge
from processors.latency import LatencyBook, LatencyEstimate
from processors.strategies.learned import Learned
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


def load_learned(config: SwitchyardConfig) -> Learned:
    """The learned strategy with its artifact loaded once (none configured = priors only)."""
    settings = config.routing.learned
    if settings.artifact is None:
        return Learned(None, settings.aliases)
    from sinks.router_artifact import load_router

    return Learned(load_router(Path(settings.artifact)), settings.aliases)


def load_judge(config: SwitchyardConfig) -> Judge | None:
    """The learned answer checks of the configured router artifact, for the provider's
    cascade checks of kind ``learned``; None without an artifact or checks in it.
    A provider worker loads them at start (restart it after retraining)."""
    settings = config.routing.learned
    if settings.artifact is None:
        return None
    from processors.learning.answer_verifier import judge_for
    from schemas.errors import RouterArtifactError
    from sinks.router_artifact import load_router

    try:
        verifier = load_router(Path(settings.artifact)).verifier
    except RouterArtifactError as exc:
        log.warning("no learned answer checks: %s", exc)
        return None
    return judge_for(verifier, settings.aliases) if verifier is not None else None


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
