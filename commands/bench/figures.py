"""Small measurements the bench's scenarios share: percentiles and peak memory."""

import math
import os
import resource
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def quantile_ms(values: list[float], q: float) -> float:
    """The ``q`` quantile (0 < q <= 1, nearest rank) of ``values``, rounded to 0.1."""
    return round(percentile(values, 100 * q), 1)


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident set (Linux ``VmHWM``) in MiB of process ``pid``, this one by default;
    for this process ``getrusage`` where /proc is missing, else 0."""
    try:
        status = Path(f"/proc/{pid or 'self'}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far; 0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")
