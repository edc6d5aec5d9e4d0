"""Fair share: which waiting job goes next when a slot frees.

Two lanes, served in order: every waiting ``interactive`` job goes before any
``batch`` one. Within a lane, tenants take turns by deficit round robin
(Shreedhar and Varghese, 1995): each visit credits a tenant its weight (the
config's ``share``), and it is served one job per whole credit, so over any
stretch where several tenants wait, each gets slots in proportion to its
weight whatever the length of its backlog. A tenant whose queue empties leaves
the round and forfeits its credit: an idle tenant banks nothing.

What a tenant waits is bounded by the tenants ahead of it in the round, not by
anyone's backlog: with ``n`` tenants waiting in its lane, a job at the head of
its tenant's queue is served within about ``n / min(weight)`` pops.

The queue holds anything (raw records in the provider worker's read-ahead,
futures of calls waiting for a model's slot); it never reads a clock.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from schemas.messages import Priority

T = TypeVar("T")

LANES: tuple[Priority, ...] = ("interactive", "batch")


@dataclass
class _Lane(Generic[T]):
    queues: dict[str, deque[T]] = field(default_factory=dict)
    turns: deque[str] = field(default_factory=deque)  # tenants with jobs, in round order
    deficit: dict[str, float] = field(default_factory=dict)
    credited: bool = False  # the head of ``turns`` got its credit for this visit

    def push(self, item: T, tenant: str) -> None:
        queue = self.queues.get(tenant)
        if queue is None:
            queue = self.queues[tenant] = deque()
            self.turns.append(tenant)
            self.deficit[tenant] = 0.0
        queue.append(item)

    def pop(self, weight: Callable[[str], float]) -> T | None:
        while self.turns:
            tenant = self.turns[0]
            if not self.credited:
                self.deficit[tenant] += weight(tenant)
                self.credited = True
            if self.deficit[tenant] >= 1:
                self.deficit[tenant] -= 1
                queue = self.queues[tenant]
                item = queue.popleft()
                if not queue:
                    self._leave(tenant)
                return item
            self.turns.rotate(-1)  # visit over: the next tenant's turn
            self.credited = False
        return None

    def drop(self, unwanted: Callable[[T], bool]) -> list[T]:
        dropped: list[T] = []
        for tenant, queue in list(self.queues.items()):
            kept: deque[T] = deque()
            for item in queue:
                (dropped if unwanted(item) else kept).append(item)
            if kept:
                self.queues[tenant] = kept
            else:
                self._leave(tenant)
        return dropped

    def _leave(self, tenant: str) -> None:
        if self.turns and self.turns[0] == tenant:
            self.credited = False
        self.turns.remove(tenant)
        del self.queues[tenant]
        del self.deficit[tenant]


class FairQueue(Generic[T]):
    """Per-lane, per-tenant FIFO queues popped by lane, then deficit round robin.

    ``weight(tenant)`` must be positive (``TenantSpec.share``); order within one
    tenant and lane is kept."""

    def __init__(self, weight: Callable[[str], float]) -> None:
        self.weight = weight
        self.lanes: dict[Priority, _Lane[T]] = {lane: _Lane() for lane in LANES}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def push(self, item: T, tenant: str, priority: Priority) -> None:
        self.lanes[priority].push(item, tenant)
        self.size += 1

    def pop(self) -> T | None:
        """The next item by lane and fair share; None when nothing waits."""
        for lane in LANES:
            item = self.lanes[lane].pop(self.weight)
            if item is not None:
                self.size -= 1
                return item
        return None

    def drop(self, unwanted: Callable[[T], bool]) -> list[T]:
        """Remove and return every waiting item ``unwanted`` picks (a revoked partition's)."""
        dropped = [item for lane in LANES for item in self.lanes[lane].drop(unwanted)]
        self.size -= len(dropped)
        return dropped


__all__ = ["LANES", "FairQueue"]
