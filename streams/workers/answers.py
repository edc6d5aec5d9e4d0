"""The answer ledger as a provider worker sees it: (tenant, request_id) -> the reply it got.

Every worker follows the whole ``answers`` topic and keeps the entries of
the dedup window in memory. Before it processes a newly assigned dispatch
partition it catches up to the topic's end, so answers a crashed worker wrote
just before it died are known before their jobs are replayed.

Entries are keyed by tenant and request_id together: two tenants may use the
same request_id, and each must only ever find its own answer. An entry without
the cluster key's seal is dropped (``SealGate``): only a provider worker answers.
"""

import time
from datetime import UTC, datetime, timedelta

from schemas.answer import AnsweredRequest
from streams.kafka.consumers import DecodingFollower
from streams.kafka.seals import SealGate

_PRUNE_EVERY_S = 30.0


class AnswerLedger:
    def __init__(self, bootstrap: str, topic: str, window_s: float, gate: SealGate) -> None:
        self.window = timedelta(seconds=window_s)
        self._entries: dict[tuple[str, str], AnsweredRequest] = {}
        self._next_prune = time.monotonic() + _PRUNE_EVERY_S
        self.follower = DecodingFollower(
            bootstrap, topic, gate, AnsweredRequest, self._apply, after_batch=self._maybe_prune
        )

    async def start(self) -> None:
        await self.follower.start()
        await self.catch_up()

    async def stop(self) -> None:
        await self.follower.stop()

    def get(self, tenant: str, request_id: str) -> AnsweredRequest | None:
        return self._entries.get((tenant, request_id))

    def remember(self, answered: AnsweredRequest) -> None:
        """Our own answer, known before it comes back from the topic."""
        self._entries[answered.key] = answered

    async def catch_up(self, timeout_s: float = 30.0) -> None:
        """Return once everything written to the ledger before this call has been read."""
        await self.follower.catch_up(timeout_s)

    def _apply(self, answered: AnsweredRequest) -> None:
        known = self._entries.get(answered.key)
        if known is None or known.answered_at <= answered.answered_at:
            self._entries[answered.key] = answered

    def _maybe_prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        cutoff = datetime.now(UTC) - self.window
        self._entries = {k: v for k, v in self._entries.items() if v.answered_at >= cutoff}
        self._next_prune = time.monotonic() + _PRUNE_EVERY_S
