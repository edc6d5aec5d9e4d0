"""The two windows a drift check compares, from the command's options; no clock inside.

By default the recent window is the last ``recent_hours`` before ``now`` and the
baseline the ``baseline_days`` just before it, so they never overlap. Explicit
ranges are ``START..END`` in ISO 8601 (a date, or a date and time; UTC unless an
offset is given), end exclusive.
"""

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from schemas.errors import UsageError


class Window(NamedTuple):
    start: datetime
    end: datetime  # exclusive

    def __str__(self) -> str:
        return f"{_text(self.start)}..{_text(self.end)}"


def default_windows(
    now: datetime, baseline_days: float, recent_hours: float
) -> tuple[Window, Window]:
    """(baseline, recent): the last ``recent_hours``, and the ``baseline_days`` before them."""
    if baseline_days <= 0 or recent_hours <= 0:
        raise ValueError("--baseline-days and --recent-hours must be positive")
    recent = Window(now - timedelta(hours=recent_hours), now)
    return Window(recent.start - timedelta(days=baseline_days), recent.start), recent


def parse_range(text: str, option: str) -> Window:
    """``START..END`` as a window; ValueError naming ``option`` if it is not one."""
    start_text, dots, end_text = text.partition("..")
    if not dots:
        raise ValueError(f"{option}: expected START..END, got {text!r}")
    try:
        window = Window(_instant(start_text), _instant(end_text))
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not two ISO 8601 times") from None
    if window.end <= window.start:
        raise ValueError(f"{option}: the end must be after the start")
    return window


def drift_windows(
    baseline: str | None,
    recent: str | None,
    baseline_days: float,
    recent_hours: float,
    now: datetime,
) -> tuple[Window, Window]:
    """(baseline, recent) from the command's options; UsageError for bad ones.

    An explicit ``--recent`` moves the default baseline to the days just before it.
    """
    try:
        _, default_recent = default_windows(now, baseline_days, recent_hours)
        recent_window = parse_range(recent, "--recent") if recent else default_recent
        if baseline:
            baseline_window = parse_range(baseline, "--baseline")
        else:
            start = recent_window.start - timedelta(days=baseline_days)
            baseline_window = Window(start, recent_window.start)
        check_apart(baseline_window, recent_window)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return baseline_window, recent_window


def check_apart(baseline: Window, recent: Window) -> None:
    """ValueError if the windows overlap: a request counted in both would hide a shift."""
    if baseline.start < recent.end and recent.start < baseline.end:
        raise ValueError(f"the baseline {baseline} and the recent window {recent} overlap")


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M" if moment.second == 0 else "%Y-%m-%dT%H:%M:%S")
