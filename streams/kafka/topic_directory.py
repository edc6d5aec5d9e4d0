"""Which topics exist on the broker, listed without creating any.

The embedded broker (and any broker with ``auto.create.topics.enable``) creates a
topic a producer or a metadata request names, so a worker that sends to a topic a
message chose (a job's ``reply_to``) asks this directory first. It lists every
topic, which names none and so creates none, every ``refresh_s``.
"""

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from processors.reply_topics import ReplyTopics
from streams.topics import TopicCatalogue

log = logging.getLogger(__name__)

MISSED_LISTING_INTERVAL_S = 1.0  # a name the listing misses lists topics again, this often


class TopicDirectory:
    """The broker's topic names as last listed; empty until the first listing."""

    def __init__(self, bootstrap: str, refresh_s: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.refresh_s = refresh_s
        self.names: frozenset[str] = frozenset()
        self.missed_at = 0.0  # monotonic time of the last listing asked for a missed name

    def exists(self, name: str) -> bool:
        return name in self.names

    def reply_topics(self, catalogue: TopicCatalogue) -> ReplyTopics:
        """The rule for ``reply_to``: every catalogue topic but the replies topic is internal."""
        internal = {t.name for t in catalogue.all()} - {catalogue.replies.name}
        return ReplyTopics(
            catalogue.namespace, catalogue.replies.name, frozenset(internal), self.exists
        )

    async def refresh(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            self.names = frozenset(await admin.list_topics())
        finally:
            await admin.close()

    async def refresh_or_keep(self) -> None:
        """Refresh; a failed listing keeps the last one."""
        try:
            await self.refresh()
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("listing topics failed, keeping the last list: %r", exc)

    async def recheck(self, name: str | None) -> None:
        """List again for a name the last listing missed (created since it), at most once
        per ``MISSED_LISTING_INTERVAL_S``, so only a topic that does not exist is refused."""
        if name is None or self.exists(name):
            return
        if time.monotonic() - self.missed_at < MISSED_LISTING_INTERVAL_S:
            return
        self.missed_at = time.monotonic()
        await self.refresh_or_keep()

    async def follow(self) -> None:
        """Refresh forever, every ``refresh_s``."""
        while True:
            await self.refresh_or_keep()
            await asyncio.sleep(self.refresh_s)
