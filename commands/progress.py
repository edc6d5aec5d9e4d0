"""Progress for long commands: a live line on a terminal, plain lines otherwise.

Always written to stderr, so ``--json`` output on stdout stays machine-readable.
"""

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self._last_line = 0.0
        self._done = -1

    def update(self, done: int, extra: str = "") -> None:
        if done == self._done:
            return
        self._done = done
        now = time.monotonic()
        finished = done >= self.total
        if not self.live and not finished and now - self._last_line < 2.0:
            return
        self._last_line = now
        rate = done / max(now - self.started, 1e-9)
        line = f"{self.label}: {done}/{self.total} ({rate:.0f}/s){' ' + extra if extra else ''}"
        if self.live:
            self.stream.write("\r\033[K" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def say(message: str) -> None:
    """A one-off status line on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
