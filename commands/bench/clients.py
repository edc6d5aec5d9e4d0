"""What the client-side runs share: the concurrency cap, the clock, the figures.

``drive`` runs every job through one call function with at most ``concurrency``
calls in flight, using a fixed pool of that many worker tasks (never one task
per job), and turns the timings into a ``ClientRun``. Both the LiteLLM side and
the bare-client ceiling use it, so their figures mean the same thing.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from commands.bench.figures import peak_rss_mb, percentile
from commands.bench.jobs import Job
from schemas.errors import InvalidOption

# One call, returning the HTTP status the job was answered with (200: answered). A raised
# exception counts as a failure under its class name; it never stops the run.
Call = Callable[[Job], Awaitable[int]]

_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class ClientRun:
    """One client's run over a list of jobs.

    ``p50_ms``/``p99_ms`` are over answered jobs, each from the moment a worker
    took the job to its answer, so waits inside the client (its own queues,
    its connection pool) count. ``errors`` counts failures by kind, most
    frequent first (``HTTP 503``, an exception's class name).
    """

    label: str
    jobs: int
    ok: int
    seconds: float
    jobs_per_s: float
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float
    errors: tuple[tuple[str, int], ...] = field(default=())


def reset_peak_rss() -> None:
    """Start this process's peak-RSS count again from its current RSS, where Linux allows it.

    Without the reset (no /proc, an old kernel) ``peak_rss_mb`` is the peak since
    the process started, which can include an earlier run.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


async def drive(label: str, jobs: list[Job], concurrency: int, call: Call) -> ClientRun:
    """Run every job through ``call`` with at most ``concurrency`` in flight; measure it."""
    if concurrency < 1:
        raise InvalidOption(f"concurrency must be at least 1, not {concurrency}")
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    pending = iter(jobs)
    reset_peak_rss()
    started = time.perf_counter()
    workers = min(concurrency, len(jobs))
    ends = await asyncio.gather(
        *(_worker(pending, call, latencies, errors) for _ in range(workers))
    )
    seconds = max(ends, default=started) - started
    return ClientRun(
        label=label,
        jobs=len(jobs),
        ok=len(latencies),
        seconds=seconds,
        jobs_per_s=len(latencies) / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        peak_rss_mb=peak_rss_mb(),
        errors=tuple(errors.most_common()),
    )


async def _worker(
    pending: Iterator[Job], call: Call, latencies: list[float], errors: Counter[str]
) -> float:
    """Take jobs until none is left; return when the last one ended."""
    ended = time.perf_counter()
    for job in pending:  # shared iterator: each job goes to exactly one worker
        began = time.perf_counter()
        try:
            status = await call(job)
            failure = None if status == 200 else f"HTTP {status}"
        except Exception as exc:  # a failed call is a figure, not the end of the run
            failure = type(exc).__name__
        ended = time.perf_counter()
        if failure is None:
            latencies.append(ended - began)
        else:
            errors[failure] += 1
    return ended
