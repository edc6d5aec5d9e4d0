"""``switchyard query``: a shipped question by name, or a read-only SQL query.

``switchyard query NAME [--param k=v ...] [--json]`` runs ``sinks/queries/NAME.sql``
with its parameters bound by the engine: the ones given, else their documented
defaults, some filled from the loaded config (``processors.named_query``).
``switchyard query --list`` names them. Registered with the Inspect commands
(``commands.inspect``). Anything that is not a plain name is SQL,
run as before (``{name:Type}`` placeholders in it take ``--param`` too).
"""

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer

from commands.console import Column, print_table, say
from processors.named_query import (
    CONFIG,
    NAME_PATTERN,
    NamedQuery,
    adhoc_query,
    bind,
    parse_assignments,
)
from schemas.config_file import load_config
from schemas.errors import UsageError
from streams.local.environment import Environment

DATABASE = "{db:Identifier}"


def query(
    target: Annotated[
        str | None, typer.Argument(help="a shipped query's NAME (see --list), or one SELECT")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="NAME=VALUE for the query's parameter; repeatable"),
    ] = None,
    list_queries: Annotated[
        bool, typer.Option("--list", help="the shipped queries and their parameters")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per row")] = False,
) -> int:
    """Answer a shipped question (`switchyard query --list`) or run a read-only SQL query
    on the telemetry database."""
    from sinks.queries import all_queries, load_query

    if list_queries:
        _print_list(all_queries(), as_json)
        return 0
    if target is None:
        raise UsageError("give a query NAME (switchyard query --list) or a SELECT")
    env = Environment.from_env()
    named = NAME_PATTERN.match(target) is not None
    chosen = load_query(target) if named else adhoc_query(target)
    columns, rows = run_named(env, chosen, parse_assignments(param or []))
    if as_json:
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            sys.stdout.write(orjson.dumps(record, default=str).decode() + "\n")
    elif named:
        _print_result(chosen.title, columns, rows)
    else:
        print_table([Column(c) for c in columns], [[str(v) for v in r] for r in rows], tsv=True)
    return 0


def run_named(
    env: Environment, chosen: NamedQuery, given: dict[str, str], now: datetime | None = None
) -> tuple[list[str], list[Any]]:
    """Bind ``chosen``'s parameters (config ones from ``env``'s config file) and run it
    where the telemetry is: the path every caller takes, tests included."""
    from commands.telemetry_reader import query_telemetry, run_query
    from sinks.clickhouse import database_of

    needs_config = any(p.default == CONFIG and p.name not in given for p in chosen.params)
    config = load_config(env.config_path) if needs_config else None
    values = bind(chosen, given, config, now or datetime.now(UTC))
    sql = chosen.sql.replace(DATABASE, database_of(env.clickhouse_url))
    if chosen.name == "query":  # typed in: its errors are the engine's, as they always were
        return run_query(env, sql, values)
    return query_telemetry(env, sql, values)


def _print_list(queries: list[NamedQuery], as_json: bool) -> None:
    if as_json:
        for q in queries:
            params = {p.name: {"type": p.type, "default": p.default, "doc": p.doc}
                      for p in q.params}  # fmt: skip
            record = {"name": q.name, "title": q.title, "answers": q.answers, "params": params}
            sys.stdout.write(orjson.dumps(record).decode() + "\n")
        return
    rows = [(q.name, q.title, " ".join(f"{p.name}={p.default}" for p in q.params)) for q in queries]
    print_table([Column("name"), Column("question"), Column("parameters (defaults)")], rows)


def _print_result(title: str, columns: list[str], rows: list[Any]) -> None:
    if not rows:  # the engine names no columns for an empty result
        say(f"{title}: no rows in the window (see the query's as_of and days in --list)")
        return
    numeric = [
        any(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        for i in range(len(columns))
    ]
    heads = [Column(c, right=n) for c, n in zip(columns, numeric, strict=True)]
    print_table(heads, [[_cell(v) for v in row] for row in rows], title=title)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN: a rate over nothing
            return ""
        text = f"{value:.6f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return str(value)
