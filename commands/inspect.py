"""Commands that look at the stack and its files: topics, query (``commands.query``), report,
drift, budget, config, schema."""

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from commands.app import INSPECT, JsonFlag, new_app
from commands.console import Column, print_table, say
from commands.query import query
from commands.stack_control import ensure_catalogue_topics
from processors.drift.windows import drift_windows
from schemas.access import ADMIN_TOKEN_ENV
from schemas.config_file import load_config
from schemas.drift import DriftSettings
from schemas.errors import UsageError
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


app.command(name="query", rich_help_panel=INSPECT)(query)


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
def report(
    since: Annotated[str, typer.Option(help="requests finished within: 7d, 12h, 30m")] = "7d",
    tenant: Annotated[
        str | None, typer.Option(help="only this tenant's requests and budgets")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="also write a self-contained HTML report with plots"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the report as one JSON object")
    ] = False,
) -> int:
    """Summarize the telemetry for operators, in the terminal or as an HTML page.

    Totals, cost and p50/p95/p99 latency per model, error and fallback rates per provider,
    budget burn per tenant with days to exhaustion, routing mix per task. --html FILE also
    writes one self-contained page with plots (cost over time, latency distributions,
    routing mix over time, budget burn-down, error and fallback rates over time).
    """
    from datetime import UTC, datetime

    from commands.report.build import build_report
    from commands.stack_control import current_config
    from processors.whatif import parse_since

    env = Environment.from_env()
    now = datetime.now(UTC)
    found = build_report(env, current_config(env), parse_since(since), now, tenant)
    if as_json:
        sys.stdout.write(found.model_dump_json() + "\n")
    if found.data.totals.requests == 0:
        scope = f" of tenant {tenant}" if tenant else ""
        say(f"no requests{scope} in the last {since}: nothing to report, no HTML written")
        return 0
    if not as_json:
        from commands.report.terminal import print_report

        print_report(found)
    if html is not None:
        from commands.report.html import write_html

        say(f"wrote the HTML report to {write_html(found, html)}")
    return 0


@app.command(rich_help_panel=INSPECT)
def drift(
    baseline_days: Annotated[
        float, typer.Option(help="baseline: the days before the recent window")
    ] = 7,
    recent_hours: Annotated[float, typer.Option(help="recent window: the last hours")] = 24,
    baseline: Annotated[
        str | None, typer.Option(metavar="START..END", help="explicit baseline (ISO 8601, UTC)")
    ] = None,
    recent: Annotated[
        str | None, typer.Option(metavar="START..END", help="explicit recent window")
    ] = None,
    alpha: Annotated[float, typer.Option(help="family-wise error rate of one run")] = 0.01,
    tenant: Annotated[str | None, typer.Option(help="one tenant's requests only")] = None,
    as_json: JsonFlag = False,
) -> int:
    """Compare recent routing with a baseline; exit 1 on a significant shift.

    Per task: model mix, cost per request, failure and fallback rates, predicted
    quality, feedback; per provider: failed calls. Holm-corrected across the run.
    """
    from commands.drift import SHIFT_EXIT, print_report, run_drift

    windows = drift_windows(baseline, recent, baseline_days, recent_hours, datetime.now(UTC))
    if not 0 < alpha < 1:
        raise UsageError("--alpha must be between 0 and 1")
    report = run_drift(Environment.from_env(), *windows, DriftSettings(alpha=alpha), tenant)
    if as_json:
        body = report.model_dump(mode="json") | {"drifted": report.drifted}
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
    else:
        print_report(report)
    return SHIFT_EXIT if report.drifted else 0


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
