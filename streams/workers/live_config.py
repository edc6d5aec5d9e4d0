"""Following the config topic: every worker switches to each new version it may run.

A version is validated whole before anything changes; one that fails, whose digest
does not match, or that changes what this worker built at start
(``processors.config_change.restart_only_changes``) is refused with an error in
the log, and the worker keeps the version it runs. Otherwise ``on_change`` gets
the new config; a worker swaps its reference between jobs, so every decision is
made by one version, which it names (``RoutingDecision.config_version``).

At start a worker reads the topic from the beginning: it runs the last version it
may run. On an empty topic it publishes its own config as the first version (the
seed), so ``config apply`` compares a new version with what workers really run
(their environment filled in the file's ``${VAR}``s) and the ``configs`` table
knows the version every request row names.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from processors.config_change import applied, restart_only_changes
from schemas.config import SwitchyardConfig
from schemas.live_config import AppliedConfig
from streams.config_topic import publish_version
from streams.kafka.consumers import DecodingFollower
from streams.kafka.seals import SealGate

log = logging.getLogger(__name__)


class LiveConfig:
    """The config a worker runs now (``current``), kept up to date from the config topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        gate: SealGate,
        running: SwitchyardConfig,
        on_change: Callable[[SwitchyardConfig], None],
    ) -> None:
        self.current = running
        self.on_change = on_change
        self.bootstrap, self.topic, self.gate = bootstrap, topic, gate
        self.versions_read = 0
        self.follower = DecodingFollower(bootstrap, topic, gate, AppliedConfig, self.apply)

    async def start(self, role: str) -> None:
        """Read every version applied so far (switching to the last one allowed), seed an
        empty topic with this worker's config, then follow the topic."""
        await self.follower.start()
        await self.follower.catch_up()
        if self.versions_read == 0:
            seed = applied(self.current, None, f"{role} at start", datetime.now(UTC))
            await publish_version(self.bootstrap, self.topic, self.gate.cluster_key, seed)

    async def stop(self) -> None:
        await self.follower.stop()

    def apply(self, record: AppliedConfig) -> None:
        self.versions_read += 1
        if record.version == self.current.version:
            return
        try:
            config = SwitchyardConfig.model_validate(record.config)
        except ValidationError as exc:
            log.error("config %s refused: not valid here (%d errors)", record.version,
                      exc.error_count())  # fmt: skip
            return
        if config.version != record.version:
            log.error("config %s refused: its content digests to %s", record.version,
                      config.version)  # fmt: skip
            return
        blocked = restart_only_changes(self.current, config)
        if blocked:
            log.error("config %s refused: it changes %s, which only a restart applies",
                      record.version, ", ".join(blocked))  # fmt: skip
            return
        previous, self.current = self.current.version, config
        self.on_change(config)
        log.warning("config %s applied (was %s; applied by %s)", config.version, previous,
                    record.applied_by)  # fmt: skip


__all__ = ["LiveConfig"]
