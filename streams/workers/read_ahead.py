"""The provider worker's read-ahead: fetched jobs waiting for a slot, by lane and tenant.

A routed or parked job carries lane headers (``streams.outputs``: tenant and
priority), so it is queued without being decoded; it is decoded once, when it
starts. A record without them (written before they existed) is decoded here.
"""

from dataclasses import dataclass

from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.decision import DispatchJob
from schemas.messages import Priority
from streams.outputs import LANE_PRIORITY, LANE_TENANT

# Records asked for per fetch while the read-ahead has room.
FETCH_RECORDS = 2000
# What a waiting record costs beyond its value: the entry, its headers, the queue slot.
WAITING_OVERHEAD_BYTES = 512


@dataclass(frozen=True, slots=True)
class Waiting:
    """A fetched job waiting for a slot: where it was read, as read, and decoded if
    it had to be already (a retry record, or one without lane headers)."""

    tp: TopicPartition
    offset: int
    value: bytes | None
    headers: list[tuple[str, bytes]]
    job: DispatchJob | None
    parked_at_ms: int | None = None  # read from a retry topic: when it was parked

    @property
    def size(self) -> int:
        return len(self.value or b"") + WAITING_OVERHEAD_BYTES


def decoded(raw: bytes | None) -> DispatchJob | None:
    try:
        return DispatchJob.model_validate_json(raw or b"")
    except ValidationError:
        return None


def lane_of(
    headers: list[tuple[str, bytes]], job: DispatchJob | None, raw: bytes | None
) -> tuple[str, Priority, DispatchJob | None]:
    """The job's tenant and priority from its lane headers (``streams.outputs``), decoding
    it only when they are missing; an undecodable job goes first, to its dead letter."""
    lane = dict(headers)
    tenant, priority = lane.get(LANE_TENANT), lane.get(LANE_PRIORITY)
    if tenant is not None and priority in (b"interactive", b"batch"):
        return tenant.decode(), "interactive" if priority == b"interactive" else "batch", job
    job = job if job is not None else decoded(raw)
    if job is None:
        return "", "interactive", None
    return job.decision.tenant, job.decision.priority, job


__all__ = ["FETCH_RECORDS", "Waiting", "decoded", "lane_of"]
