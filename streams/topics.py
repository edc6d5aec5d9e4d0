"""The topic catalogue: every topic Switchyard uses, declared once.

No topic name appears as a literal anywhere else. ``switchyard topics create``
creates all of them before any worker or producer starts, because the embedded
broker auto-creates unknown topics (with 4 partitions) on any metadata request
and cannot add partitions later.
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from processors.dispatch import RETRY_TIERS_S
from schemas.answer import AnsweredRequest
from schemas.budget import BudgetSnapshot
from schemas.cache import CachedAnswer
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob
from schemas.feedback import Feedback
from schemas.health import EndpointHealth
from schemas.messages import InferenceReply, InferenceRequest
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent

DAY_MS = 24 * 3600 * 1000

# Dispatch and the answer ledger are both keyed by request_id with the same
# partition count, so a dispatch partition's answers sit in one ledger partition.
DISPATCH_PARTITIONS = 8

# Requests, settlements and the budget changelog must agree: the budget table is
# partitioned like its source topics, and a tenant's key lands on one partition.
ROUTING_PARTITIONS = 4


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    schema: type[BaseModel]
    partitions: int
    retention_ms: int | None
    cleanup_policy: Literal["delete", "compact", "compact,delete"]
    purpose: str

    def broker_config(self) -> dict[str, str]:
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


@dataclass(frozen=True)
class TopicCatalogue:
    """All topics of one Switchyard deployment; ``namespace`` prefixes every name."""

    namespace: str = "switchyard"

    @property
    def router_app_id(self) -> str:
        return f"{self.namespace}-router"

    def _topic(
        self,
        suffix: str,
        key: str,
        schema: type[BaseModel],
        purpose: str,
        partitions: int = 4,
        retention_ms: int | None = DAY_MS,
        cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete",
    ) -> TopicSpec:
        return TopicSpec(
            f"{self.namespace}{suffix}",
            key,
            schema,
            partitions,
            retention_ms,
            cleanup_policy,
            purpose,
        )

    @property
    def requests(self) -> TopicSpec:
        return self._topic(
            ".requests",
            "tenant",
            InferenceRequest,
            "inference jobs from producers",
            partitions=ROUTING_PARTITIONS,
            retention_ms=7 * DAY_MS,
        )

    @property
    def prepared(self) -> TopicSpec:
        return self._topic(
            ".requests.prepared",
            "tenant",
            InferenceRequest,
            "jobs back from a tenant's pre-step service, routed without the pre-step",
            partitions=ROUTING_PARTITIONS,
            retention_ms=7 * DAY_MS,
        )

    @property
    def cache(self) -> TopicSpec:
        return self._topic(
            ".cache",
            "cache_key",
            CachedAnswer,
            "exact-match response cache, followed whole by every router",
            retention_ms=7 * DAY_MS,
            cleanup_policy="compact,delete",
        )

    @property
    def feedback(self) -> TopicSpec:
        return self._topic(
            ".feedback",
            "request_id",
            Feedback,
            "outcome feedback from consumers, joined to decisions in ClickHouse",
            retention_ms=30 * DAY_MS,
        )

    @property
    def dispatch(self) -> TopicSpec:
        return self._topic(
            ".dispatch",
            "request_id",
            DispatchJob,
            "routed jobs for provider workers",
            partitions=DISPATCH_PARTITIONS,
        )

    @property
    def retry(self) -> list[TopicSpec]:
        """Delay topics, one per tier: jobs parked until their ``not_before``."""
        return [
            self._topic(
                f".retry.{_duration(tier_s)}",
                "request_id",
                DispatchJob,
                f"jobs waiting about {_duration(tier_s)} before their next round",
            )
            for tier_s in RETRY_TIERS_S
        ]

    @property
    def health(self) -> TopicSpec:
        return self._topic(
            ".health",
            "model",
            EndpointHealth,
            "circuit state per model endpoint, shared by all provider workers",
            partitions=1,
            retention_ms=None,
            cleanup_policy="compact",
        )

    @property
    def answers(self) -> TopicSpec:
        return self._topic(
            ".answers",
            "request_id",
            AnsweredRequest,
            "the reply each request_id got (dedup and crash recovery)",
            partitions=DISPATCH_PARTITIONS,
            # compacted to one record per request_id, and dropped after a day
            cleanup_policy="compact,delete",
        )

    @property
    def replies(self) -> TopicSpec:
        return self._topic(
            ".replies",
            "request_id",
            InferenceReply,
            "default reply topic (requests may name their own reply_to)",
        )

    @property
    def settlements(self) -> TopicSpec:
        return self._topic(
            ".settlements",
            "tenant",
            SpendSettlement,
            "actual spend per answered job, back to the budget table",
            partitions=ROUTING_PARTITIONS,
            retention_ms=7 * DAY_MS,
        )

    @property
    def telemetry(self) -> TopicSpec:
        return self._topic(
            ".telemetry",
            "request_id",
            TelemetryEvent,
            "finished-request rows for the ClickHouse sink",
            retention_ms=7 * DAY_MS,
        )

    @property
    def dead_letter(self) -> TopicSpec:
        return self._topic(
            ".deadletter",
            "request_id",
            DeadLetter,
            "messages that could not be processed, with the reason",
            partitions=1,
            retention_ms=30 * DAY_MS,
        )

    @property
    def budget_changelog(self) -> TopicSpec:
        # faust names a table's changelog "<app id>-<table>-changelog".
        return self._topic(
            "-router-budget-changelog",
            "tenant",
            BudgetSnapshot,
            "the router's budget table (faust changelog)",
            partitions=ROUTING_PARTITIONS,
            retention_ms=None,
            cleanup_policy="compact",
        )

    @property
    def router_leader(self) -> TopicSpec:
        # faust's internal leader-election topic; declared so nothing auto-creates it.
        return self._topic(
            "-router-__assignor-__leader",
            "-",
            BudgetSnapshot,
            "faust leader election (internal)",
            partitions=1,
            retention_ms=None,
        )

    def all(self) -> list[TopicSpec]:
        return [
            self.requests,
            self.prepared,
            self.dispatch,
            *self.retry,
            self.health,
            self.answers,
            self.replies,
            self.settlements,
            self.telemetry,
            self.feedback,
            self.cache,
            self.dead_letter,
            self.budget_changelog,
            self.router_leader,
        ]


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds}s"
