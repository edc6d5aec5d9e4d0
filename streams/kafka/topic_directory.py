"""Which topics exist on the broker, listed without creating any.

The embedded broker (and any broker with ``auto.create.topics.enable``) creates a
topic a producer or a metadata request names, so a worker that sends to a topic a
message chose (a job's ``reply_to``) asks this directory first. It lists every
topic, which names none and so creates none, every ``refresh_s``.
"""

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class TopicDirectory:
    """The broker's topic names as last listed; empty until the first listing."""

    def __init__(self, bootstrap: str, refresh_s: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.refresh_s = refresh_s
        self.names: frozenset[str] = frozenset()

    def exists(self, name: str) -> bool:
        return name in self.names

    async def refresh(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            self.names = frozenset(await admin.list_topics())
        finally:
            await admin.close()

    async def follow(self) -> None:
        """Refresh forever; a failed listing keeps the last one."""
        while True:
            try:
                await self.refresh()
            except (TimeoutError, KafkaError, OSError) as exc:
                log.warning("listing topics failed, keeping the last list: %r", exc)
            await asyncio.sleep(self.refresh_s)
