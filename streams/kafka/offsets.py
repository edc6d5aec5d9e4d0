"""Committing offsets when jobs finish out of order.

The provider worker keeps many jobs in flight; a slow call must not hold back
the commit of faster ones fetched after it, and must not be skipped either.
An offset is safe to commit once it and every earlier offset fetched from its
partition have finished: the commit position is the oldest unfinished offset.
"""

from typing import Generic, TypeVar

P = TypeVar("P")


class CommitTracker(Generic[P]):
    def __init__(self) -> None:
        self._in_flight: dict[P, set[int]] = {}
        self._next: dict[P, int] = {}

    def started(self, partition: P, offset: int) -> None:
        self._in_flight.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finished(self, partition: P, offset: int) -> None:
        # A partition forgotten on revocation may still see its jobs finish.
        self._in_flight.get(partition, set()).discard(offset)

    def forget(self, partition: P) -> None:
        """Drop a revoked partition: its next owner starts from the committed offset."""
        self._in_flight.pop(partition, None)
        self._next.pop(partition, None)

    def pending(self, partition: P) -> int:
        return len(self._in_flight.get(partition, ()))

    def positions(self) -> dict[P, int]:
        """Per partition, the offset to commit: everything before it has finished."""
        return {
            partition: min(pending) if pending else self._next[partition]
            for partition, pending in self._in_flight.items()
        }

    @property
    def in_flight(self) -> int:
        return sum(len(pending) for pending in self._in_flight.values())
