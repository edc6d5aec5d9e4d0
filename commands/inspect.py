"""Commands that look at the stack and its files: topics, query, budget, config, schema."""

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from commands.app import INSPECT, JsonFlag, new_app
from commands.console import Column, print_table, say
from commands.stack_control import ensure_catalogue_topics
from schemas.access import ADMIN_TOKEN_ENV
from schemas.config_file import load_config
from streams.local.environment import Environment
from streams.local.stack import Stack, read_budget_page, running_stack
from streams.topics import TopicCatalogue

app = new_app("Look at the stack and its files.")

TOPIC_COLUMNS = (
    Column("topic", 42),
    Column("partitions", right=True),
    Column("cleanup", 7),
    Column("key", 10),
    Column("purpose"),
)
METRICS_COLUMNS = (Column("worker", 10), Column("pid", 8, right=True), Column("metrics URL"))
BUDGET_COLUMNS = (
    Column("tenant", 18),
    Column("period", 8),
    Column("spent USD", 12, right=True),
    Column("reserved USD", 12, right=True),
    Column("requests", 8, right=True),
)


@app.command(rich_help_panel=INSPECT)
def topics(action: Literal["create", "list"]) -> int:
    """Create or list the catalogue's topics."""
    env = Environment.from_env()
    catalogue = TopicCatalogue(env.namespace)
    if action == "list":
        rows = [
            (spec.name, str(spec.partitions), spec.cleanup_policy, spec.key, spec.purpose)
            for spec in catalogue.all()
        ]
        print_table(TOPIC_COLUMNS, rows)
        return 0
    ensure_catalogue_topics(Stack.connect(env, start_broker=False, notify=say))
    return 0


@app.command(rich_help_panel=INSPECT)
def metrics(as_json: JsonFlag = False) -> int:
    """List the Prometheus endpoints of the workers running on this state dir."""
    from streams.observe.endpoint import endpoints

    found = endpoints(Environment.from_env().state_dir)
    if as_json:
        sys.stdout.write(orjson.dumps(found).decode() + "\n")
    elif not found:
        say("no worker is serving metrics here (is the stack up? observability.metrics.enabled?)")
    else:
        print_table(METRICS_COLUMNS, [(e["role"], str(e["pid"]), e["url"]) for e in found])
    return 0


@app.command(rich_help_panel=INSPECT)
def query(
    sql: str,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per row")] = False,
) -> int:
    """Run a read-only SQL query on the telemetry database."""
    from commands.telemetry_reader import run_query

    columns, rows = run_query(Environment.from_env(), sql)
    if as_json:
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            sys.stdout.write(orjson.dumps(record, default=str).decode() + "\n")
        return 0
    print_table([Column(c) for c in columns], [[str(v) for v in row] for row in rows], tsv=True)
    return 0


@app.command(rich_help_panel=INSPECT)
def budget(
    web_port: Annotated[
        int | None, typer.Option(help="default: the running stack's router, else 6066")
    ] = None,
) -> int:
    """Show the router's per-tenant budget table (its token: the running stack's, else
    SWITCHYARD_ADMIN_TOKEN)."""
    running = running_stack(Environment.from_env()) or {}
    port = web_port or running.get("router_web_port") or 6066
    token = running.get("admin_token") or os.environ.get(ADMIN_TOKEN_ENV)
    data = read_budget_page(int(port), token)
    rows = [
        (
            tenant,
            snap["period"],
            f"{snap['spent_usd']:.6f}",
            f"{snap['reserved_usd']:.6f}",
            str(snap["requests"]),
        )
        for tenant, snap in sorted(data.items())
    ]
    print_table(BUDGET_COLUMNS, rows)
    return 0


@app.command(rich_help_panel=INSPECT)
def config(
    action: Literal["validate", "apply"],
    file: Path,
    by: Annotated[
        str | None, typer.Option(help="apply: who applies it (default: your login name)")
    ] = None,
) -> int:
    """Check a config file, or apply it live: every worker switches to it within seconds
    and the `configs` table records it (a change that needs a restart is refused)."""
    if action == "apply":
        from commands.config_apply import apply_config

        return apply_config(Environment.from_env(), file, by)
    loaded = load_config(file)
    print(f"{file}: valid ({len(loaded.models)} models, {len(loaded.tenants)} tenants)")
    return 0


@app.command(rich_help_panel=INSPECT)
def schema(action: Literal["export"], dir: Path) -> int:
    """Export JSON Schema of every message."""
    from schemas.export import export_json_schemas

    written = export_json_schemas(dir)
    print(f"wrote {len(written)} schemas to {dir}")
    return 0
