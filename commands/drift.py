"""``switchyard drift``: has routing shifted silently? A recent window against a baseline.

This module reads the two windows' aggregates (``sinks.drift_queries``, through
``run_query``, so it works whether or not the telemetry worker holds the embedded
database), asks ``processors.drift`` what moved, and prints it. Exit codes: 0
nothing moved significantly (including: too little data to tell), 1 a significant
shift (``SHIFT_EXIT``), 2 a usage error; a database that cannot be read exits 1
too, with its message on stderr and nothing on stdout.
"""

from collections.abc import Sequence

from commands.console import Column, print_table
from commands.telemetry_reader import query_telemetry
from processors.drift import detect_drift
from processors.drift.windows import Window
from schemas.drift import Comparison, DriftReport, DriftSettings
from sinks.clickhouse import database_of
from sinks.drift_queries import read_windows
from streams.local.environment import Environment

SHIFT_EXIT = 1

COLUMNS = (
    Column("metric", 18),
    Column("scope", 16),
    Column("baseline", right=True),
    Column("recent", right=True),
    Column("change", right=True),
    Column("n", right=True),
    Column("test", 12),
    Column("p adjusted", right=True),
    Column("shift"),
)


def run_drift(
    env: Environment,
    baseline: Window,
    recent: Window,
    settings: DriftSettings,
    tenant: str | None = None,
) -> DriftReport:
    """Read both windows and compare them."""

    def run(sql: str) -> tuple[list[str], list[list[object]]]:
        columns, rows = query_telemetry(env, sql)
        return columns, [list(row) for row in rows]

    windows = read_windows(run, database_of(env.clickhouse_url), baseline, recent, tenant)
    return detect_drift(*windows, settings)


def print_report(report: DriftReport) -> None:
    """The windows, every tested comparison (shifts first), what was not tested, a verdict."""
    print(
        f"baseline {Window(report.baseline_start, report.baseline_end)}: "
        f"{report.baseline_requests:,} requests; "
        f"recent {Window(report.recent_start, report.recent_end)}: "
        f"{report.recent_requests:,} requests"
    )
    tested = sorted(report.tested, key=lambda c: (not c.significant, c.p_adjusted or 1.0))
    if tested:
        print_table(COLUMNS, [_row(c) for c in tested])
    for line in _not_tested(report):
        print(line)
    print(_verdict(report))


def _not_tested(report: DriftReport) -> list[str]:
    """What was not tested and why: one line per reason, or one for a window too small."""
    smaller = min(report.baseline_requests, report.recent_requests)
    if smaller < report.min_count:
        window = "baseline" if report.baseline_requests == smaller else "recent"
        return [
            f"the {window} window has {smaller} requests: too little data to compare "
            f"(each comparison needs at least {report.min_count} values in both windows)"
        ]
    reasons = {
        "too little data": f"fewer than {report.min_count} values in a window",
        "one model only": "one model only",
    }
    lines = []
    for reason, says in reasons.items():
        which = [
            f"{c.metric} {c.scope}" for c in report.comparisons if c.skipped.startswith(reason)
        ]
        if which:
            lines.append(f"not tested, {says}: {', '.join(which)}")
    return lines


def _verdict(report: DriftReport) -> str:
    tested, shifted = report.tested, report.significant
    if not tested:
        return "no comparison could be made: nothing flagged (exit 0)"
    rule = f"Holm-adjusted p < {report.alpha:g} and past the minimum effect"
    if shifted:
        moved = "; ".join(_moved(c) for c in shifted)
        return f"SHIFT: {len(shifted)} of {len(tested)} comparisons moved ({rule}): {moved}"
    return f"no significant shift in {len(tested)} comparisons ({rule})"


def _moved(c: Comparison) -> str:
    if c.metric == "model_mix":
        return f"{c.scope} traffic moved to {c.subject} ({_moves(c.moves)})"
    return f"{c.metric} {c.scope} {_value(c, c.baseline)} -> {_value(c, c.recent)}"


def _moves(moves: dict[str, float], most: int = 3) -> str:
    biggest = sorted(moves.items(), key=lambda kv: -abs(kv[1]))[:most]
    return ", ".join(f"{model} {change * 100:+.1f} pts" for model, change in biggest if change)


def _row(c: Comparison) -> Sequence[str]:
    metric = f"{c.metric} {c.subject}" if c.metric == "model_mix" else c.metric
    return (
        metric,
        c.scope,
        _value(c, c.baseline),
        _value(c, c.recent),
        _change(c),
        f"{c.n_baseline}/{c.n_recent}",
        c.test or "",
        f"{c.p_adjusted:.2g}" if c.p_adjusted is not None else "",
        "SHIFT" if c.significant else "",
    )


def _value(c: Comparison, value: float | None) -> str:
    if value is None:
        return "-"
    if c.metric == "cost_per_request":
        return f"${value:.6f}"
    if c.metric in ("model_mix", "failure_rate", "fallback_rate", "provider_error_rate"):
        return f"{value:.1%}"
    return f"{value:.3f}"


def _change(c: Comparison) -> str:
    if c.change is None:
        return "-"
    if c.metric == "cost_per_request":
        return f"{c.change / c.baseline:+.1%}" if c.baseline else f"{c.change:+.6f}"
    if c.metric in ("model_mix", "failure_rate", "fallback_rate", "provider_error_rate"):
        return f"{c.change * 100:+.1f} pts"
    return f"{c.change:+.3f}"
