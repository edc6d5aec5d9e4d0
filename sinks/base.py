"""The contract every sink follows: buffer with ``add``, write a batch with ``flush``."""

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from schemas.errors import SinkBackpressure

T = TypeVar("T")


class BatchSink(ABC, Generic[T]):
    """Buffers items and writes them in batches.

    ``add`` never does I/O; it raises ``SinkBackpressure`` when ``max_buffered``
    items are waiting. ``flush`` writes everything buffered as one batch (or a
    few) and clears the buffer only when the write succeeded, so a failed flush
    can be retried with nothing lost. Callers commit their input offsets only
    after ``flush`` returns.
    """

    def __init__(self, max_buffered: int = 10_000) -> None:
        self.max_buffered = max_buffered
        self._buffer: list[T] = []

    def add(self, item: T) -> None:
        if len(self._buffer) >= self.max_buffered:
            raise SinkBackpressure(f"{len(self._buffer)} items waiting to be flushed")
        self._buffer.append(item)

    def flush(self) -> int:
        """Write the buffer; return how many items were written."""
        if not self._buffer:
            return 0
        batch = list(self._buffer)
        self.write(batch)
        del self._buffer[: len(batch)]
        return len(batch)

    @abstractmethod
    def write(self, batch: list[T]) -> None:
        """Write one batch or raise; must be safe to repeat (the caller may retry)."""
