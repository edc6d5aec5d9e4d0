"""Small measurements the bench's scenarios share: percentiles and peak memory."""

import os
from pathlib import Path


def quantile_ms(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``, rounded to 0.1; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 1)


def worker_peak_rss_mb(pid: int) -> float:
    """A running process's peak resident set (Linux ``VmHWM``), in MB; 0 if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far; 0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")
