"""The topic catalogue: every topic Switchyard uses, declared once.

No topic name appears as a literal anywhere else. ``switchyard topics create``
creates all of them before any worker or producer starts, because the embedded
broker auto-creates unknown topics (with 4 partitions) on any metadata request
and cannot add partitions later.
"""

import functools
from dataclasses import dataclass
from typing import Literal

from aiokafka.partitioner import murmur2
from pydantic import BaseModel

from processors.dispatch import RETRY_TIERS_S
from schemas.answer import AnsweredRequest
from schemas.budget import BudgetSnapshot, StoredBudget
from schemas.cache import CachedAnswer
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob
from schemas.errors import InternalError
from schemas.feedback import Feedback
from schemas.health import EndpointHealth
from schemas.live_config import AppliedConfig
from schemas.messages import InferenceReply, InferenceRequest
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent

DAY_MS = 24 * 3600 * 1000

# Dispatch (keyed by request_id) and the answer ledger (keyed by tenant|request_id,
# so compaction never lets one tenant's entry replace another's) have the same
# partition count; every provider worker follows the whole ledger.
DISPATCH_PARTITIONS = 8

# Requests, settlements and the budget changelog must agree: the budget table is
# partitioned like its source topics, and a tenant's key lands on one partition.
ROUTING_PARTITIONS = 4


@functools.cache  # per job on the router's path; murmur2 is pure Python
def home_partition(tenant: str, partitions: int = ROUTING_PARTITIONS) -> int:
    """The partition of the routing topics (and budget changelog) that holds ``tenant``:
    where the producers' default partitioner puts a record keyed by the tenant's name.
    faust assigns one partition number of co-partitioned topics to one router, so the
    router that owns a tenant's home partition owns its budget snapshot too."""
    hashed: int = murmur2(tenant.encode())
    return (hashed & 0x7FFFFFFF) % partitions


CleanupPolicy = Literal["delete", "compact", "compact,delete"]


@dataclass(frozen=True)
class TopicSpec:
    """One topic of one deployment, as created on the broker."""

    name: str
    key: str
    schema: type[BaseModel]
    partitions: int
    retention_ms: int | None
    cleanup_policy: CleanupPolicy
    purpose: str

    def broker_config(self) -> dict[str, str]:
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


@dataclass(frozen=True)
class TopicEntry:
    """One row of the catalogue: a topic's settings, its name without the namespace.

    ``role`` is the catalogue attribute that returns it; the retry tiers share
    the role ``retry`` (a list, one entry per tier).
    """

    role: str
    suffix: str
    key: str
    schema: type[BaseModel]
    purpose: str
    partitions: int = 4
    retention_ms: int | None = DAY_MS
    cleanup_policy: CleanupPolicy = "delete"

    def spec(self, namespace: str) -> TopicSpec:
        return TopicSpec(
            f"{namespace}{self.suffix}",
            self.key,
            self.schema,
            self.partitions,
            self.retention_ms,
            self.cleanup_policy,
            self.purpose,
        )


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds}s"


# Every topic, in the order ``all()`` lists them (and ``switchyard topics list`` prints).
TOPICS: tuple[TopicEntry, ...] = (
    TopicEntry(
        "requests", ".requests", "tenant", InferenceRequest, "inference jobs from producers",
        partitions=ROUTING_PARTITIONS, retention_ms=7 * DAY_MS,
    ),
    # Producers put interactive jobs here (``StreamClient`` does it for ``priority``
    # interactive), so they never queue behind a tenant's batch backlog at the router.
    TopicEntry(
        "interactive", ".requests.interactive", "tenant", InferenceRequest,
        "interactive jobs from producers: routed before queued batch jobs",
        partitions=ROUTING_PARTITIONS, retention_ms=7 * DAY_MS,
    ),
    TopicEntry(
        "prepared", ".requests.prepared", "tenant", InferenceRequest,
        "jobs back from a tenant's pre-step service, routed without the pre-step",
        partitions=ROUTING_PARTITIONS, retention_ms=7 * DAY_MS,
    ),
    TopicEntry(
        "dispatch", ".dispatch", "request_id", DispatchJob, "routed jobs for provider workers",
        partitions=DISPATCH_PARTITIONS,
    ),
    *(
        TopicEntry(
            "retry", f".retry.{_duration(tier_s)}", "request_id", DispatchJob,
            f"jobs waiting about {_duration(tier_s)} before their next round",
        )
        for tier_s in RETRY_TIERS_S
    ),
    TopicEntry(
        "health", ".health", "model", EndpointHealth,
        "circuit state per model endpoint, shared by all provider workers",
        partitions=1, retention_ms=None, cleanup_policy="compact",
    ),
    # Compacted to one record per (tenant, request_id), and dropped after a day.
    TopicEntry(
        "answers", ".answers", "tenant|request_id", AnsweredRequest,
        "the reply each (tenant, request_id) got (dedup and crash recovery)",
        partitions=DISPATCH_PARTITIONS, cleanup_policy="compact,delete",
    ),
    TopicEntry(
        "replies", ".replies", "request_id", InferenceReply,
        "default reply topic (requests may name their own reply_to)",
    ),
    TopicEntry(
        "settlements", ".settlements", "tenant", SpendSettlement,
        "actual spend per answered job, back to the budget table",
        partitions=ROUTING_PARTITIONS, retention_ms=7 * DAY_MS,
    ),
    TopicEntry(
        "telemetry", ".telemetry", "request_id", TelemetryEvent,
        "finished-request rows for the ClickHouse sink", retention_ms=7 * DAY_MS,
    ),
    TopicEntry(
        "feedback", ".feedback", "request_id", Feedback,
        "outcome feedback from consumers, joined to decisions in ClickHouse",
        retention_ms=30 * DAY_MS,
    ),
    TopicEntry(
        "cache", ".cache", "cache_key", CachedAnswer,
        "exact-match response cache, followed whole by every router",
        retention_ms=7 * DAY_MS, cleanup_policy="compact,delete",
    ),
    TopicEntry(
        "dead_letter", ".deadletter", "request_id", DeadLetter,
        "messages that could not be processed, with the reason",
        partitions=1, retention_ms=30 * DAY_MS,
    ),
    # Every version stays (keyed by version; the last one is current); one partition keeps
    # them in the order applied.
    TopicEntry(
        "config", ".config", "version", AppliedConfig,
        "config versions applied live (switchyard config apply), followed by every worker",
        partitions=1, retention_ms=None, cleanup_policy="compact",
    ),
    # faust names a table's changelog "<app id>-<table>-changelog".
    TopicEntry(
        "budget_changelog", "-router-budget-changelog", "tenant", StoredBudget,
        "the router's budget table (faust changelog)",
        partitions=ROUTING_PARTITIONS, retention_ms=None, cleanup_policy="compact",
    ),
    # faust's internal leader-election topic; declared so nothing auto-creates it.
    TopicEntry(
        "router_leader", "-router-__assignor-__leader", "-", BudgetSnapshot,
        "faust leader election (internal)", partitions=1, retention_ms=None,
    ),
)  # fmt: skip


class _Topic:
    """A catalogue attribute: the spec of the one table entry whose role is its name."""

    def __set_name__(self, owner: type, name: str) -> None:
        entries = [e for e in TOPICS if e.role == name]
        if len(entries) != 1:
            raise InternalError(f"topic role {name!r} has {len(entries)} table entries, not 1")
        self.entry = entries[0]

    def __get__(self, catalogue: "TopicCatalogue", owner: type | None = None) -> TopicSpec:
        return self.entry.spec(catalogue.namespace)


class _Topics:
    """A catalogue attribute for a role with several entries (the retry tiers)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.entries = tuple(e for e in TOPICS if e.role == name)

    def __get__(self, catalogue: "TopicCatalogue", owner: type | None = None) -> list[TopicSpec]:
        return [e.spec(catalogue.namespace) for e in self.entries]


@dataclass(frozen=True)
class TopicCatalogue:
    """All topics of one Switchyard deployment; ``namespace`` prefixes every name."""

    namespace: str = "switchyard"

    requests = _Topic()
    interactive = _Topic()
    prepared = _Topic()
    dispatch = _Topic()
    retry = _Topics()
    """Delay topics, one per tier: jobs parked until their ``not_before``."""
    health = _Topic()
    answers = _Topic()
    replies = _Topic()
    settlements = _Topic()
    telemetry = _Topic()
    feedback = _Topic()
    cache = _Topic()
    dead_letter = _Topic()
    config = _Topic()
    budget_changelog = _Topic()
    router_leader = _Topic()

    @property
    def router_app_id(self) -> str:
        return f"{self.namespace}-router"

    def all(self) -> list[TopicSpec]:
        """Every topic, in the table's order."""
        return [entry.spec(self.namespace) for entry in TOPICS]

    def short_names(self) -> dict[str, str]:
        """Each topic's name -> that name without the namespace (``requests.interactive``,
        ``retry.5s``): the same in every deployment, so metrics label topics by it."""
        return {entry.spec(self.namespace).name: entry.suffix[1:] for entry in TOPICS}
