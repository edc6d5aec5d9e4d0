"""Progress for long commands, on stderr: live rich bars on a terminal, plain lines otherwise.

Every bar open at one time shares one live display (rich allows one); it stops
when the last bar finishes or is closed. Off a terminal a bar prints
``label: done/total (rate/s) extra`` at most every 2 s, and once when it finishes.
"""

import sys
import time
import weakref

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as LiveBars

from commands.console import say as say  # re-exported: commands/chaos.py imports it from here

PLAIN_EVERY_S = 2.0


class _Board:
    """The one live display and the bars open on it."""

    def __init__(self) -> None:
        self.live: LiveBars | None = None
        self.open: set[TaskID] = set()

    def add(self, label: str, total: int) -> TaskID:
        if self.live is None:
            self.live = LiveBars(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(stderr=True),
            )
            self.live.start()
        task = self.live.add_task(label, total=total, rate="", extra="")
        self.open.add(task)
        return task

    def update(self, task: TaskID, done: int, rate: str, extra: str) -> None:
        if self.live is not None and task in self.open:
            self.live.update(task, completed=done, rate=rate, extra=extra)

    def close(self, task: TaskID) -> None:
        self.open.discard(task)
        if not self.open and self.live is not None:
            self.live.stop()
            self.live = None


_BOARD = _Board()


class Progress:
    """One count towards ``total``: call ``update`` as it grows; finishing closes the bar."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.started = time.monotonic()
        self._last_line = 0.0
        self._done = -1
        self._task: TaskID | None = None
        if Console(stderr=True).is_terminal:
            self._task = _BOARD.add(label, total)
            # A bar its caller drops unfinished (a timeout) must not hold the display.
            weakref.finalize(self, _BOARD.close, self._task)

    def update(self, done: int, extra: str = "") -> None:
        if done == self._done:
            return
        self._done = done
        now = time.monotonic()
        rate = f"{done / max(now - self.started, 1e-9):.0f}/s"
        finished = done >= self.total
        if self._task is not None:
            _BOARD.update(self._task, done, rate, extra)
            if finished:
                _BOARD.close(self._task)
            return
        if not finished and now - self._last_line < PLAIN_EVERY_S:
            return
        self._last_line = now
        tail = f" {extra}" if extra else ""
        sys.stderr.write(f"{self.label}: {done}/{self.total} ({rate}){tail}\n")
        sys.stderr.flush()

    def close(self) -> None:
        """Stop showing this bar, finished or not."""
        if self._task is not None:
            _BOARD.close(self._task)
