"""Terminal output for every command: rich tables on a terminal, plain lines otherwise.

Whether stdout is a terminal is rich's answer (``Console().is_terminal``), asked at
each print, so ``FORCE_COLOR=1`` or ``TTY_COMPATIBLE=1`` in the environment forces
tables (and live progress) into a pipe, and ``TTY_COMPATIBLE=0`` forces plain lines
on a terminal. Plain tables are aligned columns under a one-line header, or
tab-separated values (``tsv``); no command lays out columns itself.

Reports go to stdout, status lines (``say``) to stderr, so ``--json`` output on
stdout stays machine-readable.
"""

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

Row = Sequence[str]


@dataclass(frozen=True)
class Column:
    """One column: its header, its least width in plain output, its alignment."""

    header: str
    width: int = 0
    right: bool = False  # numbers: aligned on the right


def say(message: str) -> None:
    """A one-off status line on stderr (above a live progress bar, if one runs)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def print_json(report: BaseModel) -> None:
    """One report as one JSON line on stdout (``--json``)."""
    sys.stdout.write(orjson.dumps(report.model_dump(mode="json")).decode() + "\n")


def stdout_is_terminal() -> bool:
    return Console().is_terminal


def print_table(
    columns: Sequence[Column],
    *sections: Sequence[Row],
    title: str | None = None,
    tsv: bool = False,
) -> None:
    """Print ``sections`` of rows under ``columns`` to stdout, a rule between sections.

    On a terminal: a rich table with ``title`` above it. Otherwise: the header line
    and one line per row (``title`` is left out), tab-separated if ``tsv``.
    """
    if stdout_is_terminal():
        Console().print(rich_table(columns, sections, title))
    elif tsv:
        for row in [[c.header for c in columns], *(row for rows in sections for row in rows)]:
            sys.stdout.write("\t".join(row) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in plain_table(columns, sections)))


def rich_table(
    columns: Sequence[Column], sections: Sequence[Sequence[Row]], title: str | None = None
) -> Table:
    table = Table(title=title, box=box.HORIZONTALS, title_justify="left")
    for column in columns:
        table.add_column(column.header, justify="right" if column.right else "left")
    for number, rows in enumerate(sections):
        for index, row in enumerate(rows):
            last = index == len(rows) - 1 and number < len(sections) - 1
            table.add_row(*row, end_section=last)
    return table


def plain_table(columns: Sequence[Column], sections: Sequence[Sequence[Row]]) -> list[str]:
    """Aligned lines: the header, each row, a dashed rule between sections."""
    rows = [row for section in sections for row in section]
    widths = [
        max([column.width, len(column.header)] + [len(row[i]) for row in rows])
        for i, column in enumerate(columns)
    ]

    def line(cells: Row) -> str:
        return "  ".join(
            cell.rjust(width) if column.right else cell.ljust(width)
            for cell, width, column in zip(cells, widths, columns, strict=True)
        ).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    lines = [line([c.header for c in columns])]
    for number, section in enumerate(sections):
        if number:
            lines.append(rule)
        lines += [line(row) for row in section]
    return lines
