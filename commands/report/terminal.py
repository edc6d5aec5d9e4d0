"""The report in the terminal: the totals, then one table per section (``commands.console``)."""

from commands.console import print_table, stdout_is_terminal
from commands.report.tables import (
    Table,
    burn_table,
    mix_table,
    model_table,
    provider_table,
    summary_lines,
)
from schemas.report import Report

SECTIONS = (
    ("Cost and latency per model", model_table),
    ("Errors and fallbacks per provider", provider_table),
    ("Budget burn", burn_table),
    ("Routing mix per task", mix_table),
)


def print_report(report: Report) -> None:
    print("\n".join(summary_lines(report)))
    for title, table in SECTIONS:
        print()
        _print_section(title, table(report))


def _print_section(title: str, table: Table) -> None:
    columns, rows = table
    if not rows:
        print(f"{title}: none")
        return
    if stdout_is_terminal():
        print_table(columns, rows, title=title)
    else:  # plain output leaves the title out of the table
        print(f"{title}:")
        print_table(columns, rows)
