"""Commands for operating a deployment: bench, chaos, whatif, feedback."""

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from commands.app import OPERATE, JsonFlag, at_least, exclusive, new_app, one_of
from commands.bench.names import SCENARIOS as BENCH_SCENARIOS
from commands.chaos import SCENARIOS
from commands.console import say
from commands.stack_control import current_config, keys_to_send_as, require_bootstrap
from schemas.config_file import load_config
from schemas.errors import UsageError
from streams.local.environment import Environment
from streams.topics import TopicCatalogue

app = new_app("Operate a deployment.")


@app.command(rich_help_panel=OPERATE)
def bench(
    jobs: Annotated[int, typer.Option(help="end to end: jobs at once, 0 ms provider")] = 20_000,
    inflight_jobs: Annotated[
        int, typer.Option(help="jobs at once against a 1-second provider")
    ] = 10_000,
    idle_jobs: Annotated[int, typer.Option(help="jobs sent one at a time")] = 200,
    routing_jobs: Annotated[int, typer.Option(help="jobs queued for the router alone")] = 10_000,
    scaleout_jobs: Annotated[
        int, typer.Option(help="jobs at once through one, then two, of each worker")
    ] = 10_000,
    scenario: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help=f"run only these (repeat): {', '.join(BENCH_SCENARIOS)}"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
    router: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="instead: compare the router stage's rate per strategy (rules, learned, "
            "cheapest-capable) using this trained router for `learned`",
        ),
    ] = None,
) -> int:
    """Measure Switchyard end to end and stage by stage, all scenarios in one run."""
    from commands.bench.report import print_report
    from commands.bench.run import BenchPlan, run_bench
    from commands.bench.strategies import run_strategy_bench

    for flag, value in (("--jobs", jobs), ("--inflight-jobs", inflight_jobs),
                        ("--idle-jobs", idle_jobs), ("--routing-jobs", routing_jobs),
                        ("--scaleout-jobs", scaleout_jobs)):  # fmt: skip
        at_least(flag, value, 1)
    for name in scenario or []:
        one_of(BENCH_SCENARIOS)(name)
    env = Environment.from_env()
    if router is not None:
        result = run_strategy_bench(env, current_config(env), routing_jobs, router)
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return 0
    plan = BenchPlan(jobs, inflight_jobs, 1000, idle_jobs, routing_jobs, scaleout_jobs,
                     tuple(scenario) if scenario else BENCH_SCENARIOS)  # fmt: skip
    result = run_bench(env, current_config(env), plan)
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    else:
        print_report(result)
    return 0


@app.command(rich_help_panel=OPERATE)
def chaos(
    scenario: Annotated[
        str,
        typer.Argument(
            metavar="SCENARIO",
            callback=one_of(list(SCENARIOS)),
            help="one of: " + ", ".join(SCENARIOS),
        ),
    ],
    jobs: Annotated[
        int | None, typer.Option(help="how many jobs (default: the scenario's, 2,000 for most)")
    ] = None,
    as_json: JsonFlag = False,
) -> int:
    """Run the real pipeline under a named fault and count."""
    from commands.chaos import print_summary, run_chaos

    if jobs is not None:
        at_least("--jobs", jobs, 1)
    env = Environment.from_env()
    summary = run_chaos(env, current_config(env), scenario, jobs)
    if as_json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        print_summary(summary)
    return 0 if summary["ok"] else 1


@app.command(rich_help_panel=OPERATE)
def whatif(
    new_config: Annotated[
        Path,
        typer.Option(
            "--config",
            metavar="NEW.yaml",
            help="the config to compare with the current one (SWITCHYARD_CONFIG)",
        ),
    ],
    since: Annotated[str, typer.Option(help="requests finished within: 7d, 12h, 30m")] = "7d",
    router: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="trained router for the new config's `learned`"),
    ] = None,
    as_json: JsonFlag = False,
) -> int:
    """Replay logged requests' routing under a new config.

    Reports model changes, cost, quality and latency per tenant and task.
    """
    from commands import whatif as replay
    from processors.whatif import parse_since

    try:
        window = parse_since(since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    env = Environment.from_env()
    current = current_config(env)
    new = load_config(new_config)
    if router is not None:
        new = replay.with_router(new, router)
    report = replay.run_whatif(env, current, new, window, datetime.now(UTC))
    if as_json:
        body = {"since": since, "current": str(env.config_path), "new": str(new_config)}
        sys.stdout.write(orjson.dumps(body | report.model_dump()).decode() + "\n")
    else:
        print(f"{new_config} against {env.config_path}, requests of the last {since}:")
        replay.print_report(report)
    return 0


@app.command(rich_help_panel=OPERATE)
def feedback(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(metavar="REQUEST_ID", help="the request_id of the judged reply")
    ],
    tenant: Annotated[str, typer.Option(help="the tenant that sent the request")],
    up: Annotated[bool, typer.Option("--up", help="thumbs up (thumbs = 1)")] = False,
    down: Annotated[bool, typer.Option("--down", help="thumbs down (thumbs = 0)")] = False,
    success: Annotated[
        bool, typer.Option("--success", help="the task succeeded (success = 1)")
    ] = False,
    failure: Annotated[
        bool, typer.Option("--failure", help="the task failed (success = 0)")
    ] = False,
    score: Annotated[float | None, typer.Option(metavar="X", help="a score from 0 to 1")] = None,
    source: Annotated[str, typer.Option(help="who judged: app, user, evaluator")] = "cli",
) -> int:
    """Report how a reply worked out; ClickHouse joins it to the routing decision."""
    from pydantic import ValidationError

    from commands.feedback import build_feedback, describe_invalid, publish_feedback

    flags = {"--up": up, "--down": down, "--success": success, "--failure": failure}
    chosen = exclusive(ctx, flags | {"--score": score})
    verdict = None if chosen == "--score" else (chosen or "").removeprefix("--")
    env = Environment.from_env()
    try:
        judged = build_feedback(request_id, tenant, verdict, score, source, datetime.now(UTC))
    except ValidationError as exc:
        say("switchyard: invalid feedback:")
        for line in describe_invalid(exc):
            say(f"  {line}")
        return 2
    keys = keys_to_send_as(current_config(env), tenant)
    bootstrap = require_bootstrap(env)
    catalogue = TopicCatalogue(env.namespace)
    now = datetime.now(UTC)
    asyncio.run(publish_feedback(bootstrap, catalogue, judged, keys.get(tenant), now))
    print(
        f"feedback {judged.kind}={judged.value:g} for {judged.tenant}/{judged.request_id} "
        f"sent to {catalogue.feedback.name}"
    )
    return 0
