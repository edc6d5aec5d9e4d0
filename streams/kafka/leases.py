"""A worker's hold on each partition it consumes, as the jobs it is running see it.

A provider worker keeps slow calls in flight across a rebalance. When a
partition moves to another worker, that worker replays every job after the last
commit, including the ones still running here; if both answered, the producer
would get two replies. So a job sends its outputs only while its partition is
held (``Lease``):

- ``held``: outputs go out.
- ``suspended``: a rebalance is under way (partitions revoked, not yet
  reassigned). Outputs wait: the partition may come back to this worker, and
  then its jobs in flight are still ours.
- ``lost``: the partition went elsewhere; its next owner answers the job, so
  this worker drops the outputs (``processors.handover`` keeps the calls' cost).

The other half of the handover: ``Leases.quiesce`` returns once every send that
began before the suspension is acknowledged, and the revocation waits for it.
The group assigns the partition only after every member's revocation returned,
and the next owner reads the answer ledger to its end before replaying, so
whatever this worker sent is known to it. A worker expelled without running its
revocation (stalled past the session timeout) is not fenced: the broker offers
no transactions or producer epochs to close that.
"""

import asyncio
from collections.abc import Hashable, Iterable
from typing import Generic, Literal, TypeVar

P = TypeVar("P", bound=Hashable)
LeaseState = Literal["held", "suspended", "lost"]


class Lease:
    __slots__ = ("_decided", "_idle", "sending", "state")

    def __init__(self) -> None:
        self.state: LeaseState = "held"
        self.sending = 0
        self._decided = asyncio.Event()
        self._decided.set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def begin_send(self) -> bool:
        """Wait out a rebalance; True if the outputs may go out (then call ``end_send``).

        Returns without yielding while the lease is held, so nothing can suspend it
        between this check and the send the caller starts next."""
        await self._decided.wait()
        if self.state != "held":
            return False
        self.sending += 1
        self._idle.clear()
        return True

    def end_send(self) -> None:
        self.sending -= 1
        if self.sending == 0:
            self._idle.set()

    def suspend(self) -> None:
        if self.state == "held":
            self.state = "suspended"
            self._decided.clear()

    def keep(self) -> None:
        if self.state == "suspended":
            self.state = "held"
            self._decided.set()

    def lose(self) -> None:
        self.state = "lost"
        self._decided.set()

    async def idle(self) -> None:
        """Return once no send that began under this lease is still unacknowledged."""
        await self._idle.wait()


class Leases(Generic[P]):
    """The worker's leases, one per partition it has fetched from since its assignment."""

    def __init__(self) -> None:
        self._by_partition: dict[P, Lease] = {}

    def of(self, partition: P) -> Lease:
        lease = self._by_partition.get(partition)
        if lease is None:
            lease = self._by_partition[partition] = Lease()
        return lease

    def suspend(self, partitions: Iterable[P]) -> None:
        for partition in partitions:
            lease = self._by_partition.get(partition)
            if lease is not None:
                lease.suspend()

    async def quiesce(self) -> None:
        """Return once every send begun under a suspended or lost lease is acknowledged."""
        waiting = [lease.idle() for lease in self._by_partition.values() if lease.state != "held"]
        await asyncio.gather(*waiting)

    def settle(self, assigned: Iterable[P]) -> list[P]:
        """A rebalance ended: suspended partitions assigned again are kept, the rest lost.

        Returns the partitions lost."""
        kept = set(assigned)
        lost = [
            partition
            for partition, lease in self._by_partition.items()
            if lease.state == "suspended" and partition not in kept
        ]
        for partition, lease in list(self._by_partition.items()):
            if partition in kept:
                lease.keep()
        for partition in lost:
            self._by_partition.pop(partition).lose()
        return lost

    async def release_all(self) -> None:
        """Shutting down: let sends under way finish; nothing still running may answer."""
        self.suspend(self._by_partition)
        await self.quiesce()
        for lease in self._by_partition.values():
            lease.lose()
        self._by_partition.clear()
