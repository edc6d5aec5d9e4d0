"""The report's tables as rows of text, shared by the terminal and the HTML page.

Each function returns its columns and its rows, formatted once, so both renderers
show the same numbers the same way.
"""

from collections.abc import Sequence

from commands.console import Column
from processors.report_math import rate, task_mix
from schemas.report import BudgetBurn, Report

Rows = list[tuple[str, ...]]
Table = tuple[Sequence[Column], Rows]
NONE = "(none)"  # a request that no model answered (refused before a call, or failed)


def usd(value: float) -> str:
    return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"


def share(part: int | float, whole: int | float) -> str:
    found = rate(part, whole)
    return "-" if found is None else f"{found:.1%}"


def days(value: float | None) -> str:
    if value is None:
        return "never"
    return "exhausted" if value == 0 else f"{value:,.1f}"


def summary_lines(report: Report) -> list[str]:
    """The window and the totals, one fact per line."""
    data, totals = report.data, report.data.totals
    scope = f"tenant {data.tenant}" if data.tenant else f"{totals.tenants} tenant(s)"
    return [
        f"window: {data.since:%Y-%m-%d %H:%M} to {data.until:%Y-%m-%d %H:%M} UTC, {scope}",
        f"requests: {totals.requests:,} ({share(totals.ok, totals.requests)} ok)",
        f"cost: {usd(totals.cost_usd)} USD",
        f"tokens: {totals.input_tokens:,} in, {totals.output_tokens:,} out",
    ]


MODEL_COLUMNS = (
    Column("model", 12),
    Column("requests", 8, right=True),
    Column("cost USD", 10, right=True),
    Column("cost share", right=True),
    Column("p50 ms", right=True),
    Column("p95 ms", right=True),
    Column("p99 ms", right=True),
)


def model_table(report: Report) -> Table:
    total = report.data.totals.cost_usd
    rows: Rows = [
        (m.model or NONE, f"{m.requests:,}", usd(m.cost_usd), share(m.cost_usd, total),
         f"{m.p50_ms:,.0f}", f"{m.p95_ms:,.0f}", f"{m.p99_ms:,.0f}")
        for m in report.data.models
    ]  # fmt: skip
    return MODEL_COLUMNS, rows


PROVIDER_COLUMNS = (
    Column("provider", 10),
    Column("calls", right=True),
    Column("errors", right=True),
    Column("error rate", right=True),
    Column("answered", right=True),
    Column("by fallback", right=True),
    Column("fallback rate", right=True),
)


def provider_table(report: Report) -> Table:
    rows: Rows = [
        (p.provider, f"{p.calls:,}", f"{p.errors:,}", share(p.errors, p.calls),
         f"{p.answered:,}", f"{p.fallbacks:,}", share(p.fallbacks, p.answered))
        for p in report.data.providers
    ]  # fmt: skip
    return PROVIDER_COLUMNS, rows


BURN_COLUMNS = (
    Column("tenant", 10),
    Column("budget", 10),
    Column("period", 6),
    Column("limit USD", right=True),
    Column("spent USD", right=True),
    Column("used", right=True),
    Column("USD/day", right=True),
    Column("days left", right=True),
    Column("projected USD", right=True),
)


def burn_table(report: Report) -> Table:
    return BURN_COLUMNS, [_burn_row(b) for b in report.burn]


def _burn_row(b: BudgetBurn) -> tuple[str, ...]:
    projected = "-" if b.projected_usd is None else usd(b.projected_usd)
    return (b.tenant, b.scope, b.period, usd(b.budget_usd), usd(b.spent_usd),
            share(b.spent_usd, b.budget_usd), usd(b.daily_rate_usd),
            days(b.days_to_exhaustion), projected)  # fmt: skip


MIX_COLUMNS = (Column("task", 14), Column("requests", 8, right=True), Column("models"))


def mix_table(report: Report, top: int = 4) -> Table:
    """Per task: its requests and its ``top`` models' shares."""
    rows: Rows = []
    for task, models in task_mix(report.data.mix_series).items():
        total = sum(n for _, n in models)
        shown = ", ".join(f"{model or NONE} {share(n, total)}" for model, n in models[:top])
        if len(models) > top:
            shown += f", {len(models) - top} more"
        rows.append((task or NONE, f"{total:,}", shown))
    return MIX_COLUMNS, rows
