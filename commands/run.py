"""Commands that run the stack or a part of it: up, demo, worker, simulate, broker."""

import asyncio
import sys
import time
from typing import Annotated

import orjson
import typer

from commands.app import RUN, JsonFlag, at_least, new_app, one_of, verbose
from commands.console import say
from commands.stack_control import (
    current_config,
    require_bootstrap,
    run_until_signal,
    start_stack,
    until,
)
from schemas.config import SwitchyardConfig
from schemas.errors import StackError
from streams.kafka.broker_profile import detect
from streams.kafka.seals import cluster_key_from_env
from streams.local.environment import Environment
from streams.local.stack import WORKERS, Stack, running_stack
from streams.topics import TopicCatalogue
from streams.workers.runtime import tune_gc

app = new_app("Run the stack or a part of it.")


@app.command(rich_help_panel=RUN)
def up(
    no_simulator: Annotated[
        bool, typer.Option("--no-simulator", help="use the config's real endpoints")
    ] = False,
) -> int:
    """Run broker (if needed), simulator and all workers until Ctrl-C."""
    env = Environment.from_env()
    config = current_config(env)
    if running_stack(env) is not None:
        raise StackError(f"a stack already runs for {env.state_dir}; stop it first")
    stack = start_stack(env, simulator=not no_simulator)
    stack.publish_state()
    try:
        _say_metric_urls(stack, config)
        say(f"switchyard is up on {stack.bootstrap}; Ctrl-C stops it")
        while True:
            stack.check_alive()
            time.sleep(1)
    finally:
        stack.stop()


@app.command(rich_help_panel=RUN)
def demo(
    requests: Annotated[int, typer.Option(help="how many jobs")] = 200,
    as_json: JsonFlag = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for replies")] = 300,
) -> int:
    """Start what is missing, send sample jobs, report from ClickHouse."""
    from commands.demo import print_summary, run_demo

    at_least("--requests", requests, 1)
    env = Environment.from_env()
    config = current_config(env)
    stack = start_stack(env, simulator=True)
    try:
        _say_metric_urls(stack, config)
        summary = run_demo(env, config, stack.bootstrap, requests, timeout)
    finally:
        stack.stop()
    if as_json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        print_summary(summary)
        say(
            f"the telemetry stays in {env.state_dir}: try `switchyard report`, "
            "`switchyard query --list` and `switchyard drift`"
        )
    return 0 if summary["lost"] == 0 else 1


@app.command(rich_help_panel=RUN)
def worker(
    ctx: typer.Context,
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND", callback=one_of(WORKERS), help="one of: " + ", ".join(WORKERS)
        ),
    ],
    web_port: Annotated[int, typer.Option(help="router only: budget endpoint port")] = 6066,
) -> int:
    """Run one worker in the foreground."""
    env = Environment.from_env()
    config = current_config(env)
    bootstrap = require_bootstrap(env)
    catalogue = TopicCatalogue(env.namespace)
    cluster_key = cluster_key_from_env()  # before anything starts: no key, no worker
    asyncio.run(detect(bootstrap))  # which broker workarounds apply (broker_profile)
    _serve_metrics(kind, config, env)
    tune_gc()
    from streams.observe.tracing import configure_tracing

    # None without OTEL_EXPORTER_OTLP_ENDPOINT: the workers then record nothing.
    tracer_provider = configure_tracing(config.observability.tracing, kind)
    if kind == "router":
        from streams.kafka.admin import cluster_replication
        from streams.kafka.quirks import quiet_worker
        from streams.workers.router import build_router_app

        router = build_router_app(
            config,
            bootstrap,
            catalogue,
            web_port,
            env.state_dir,
            cluster_key,
            asyncio.run(cluster_replication(bootstrap, env.replication_factor))[0],
            tracer_provider,
        )
        level = "INFO" if verbose(ctx) else "WARNING"
        quiet_worker(router, level).execute_from_commandline()
        return 0
    if kind == "provider":
        from streams.workers.provider import ProviderWorker

        provider = ProviderWorker(config, bootstrap, catalogue, cluster_key, tracer_provider)
        return run_until_signal(provider.run)
    from streams.workers.telemetry import run_telemetry_worker

    return run_until_signal(
        lambda stop: run_telemetry_worker(
            bootstrap, catalogue, env.clickhouse_url, env.state_dir, stop, cluster_key, config
        )
    )


def _say_metric_urls(stack: Stack, config: SwitchyardConfig) -> None:
    if config.observability.metrics.enabled:
        for worker, url in stack.metric_urls():
            say(f"metrics: {worker} on {url}")


def _serve_metrics(kind: str, config: SwitchyardConfig, env: Environment) -> None:
    """Serve the worker's metrics, before its loop starts (``streams.observe.endpoint``)."""
    from streams.observe.endpoint import serve_metrics
    from streams.observe.metrics import metrics_for

    settings = config.observability.metrics
    if settings.enabled:
        endpoint = serve_metrics(settings, kind, metrics_for(kind).registry, env.state_dir)
        if endpoint is not None:
            say(f"{kind} metrics on {endpoint.url}")


@app.command(rich_help_panel=RUN)
def simulate(host: str = "127.0.0.1", port: int = 8811) -> int:
    """Serve OpenAI-compatible fake models."""
    from simulator import SimulatorSettings, run_simulator

    env = Environment.from_env()
    settings = SimulatorSettings()
    if env.config_path.exists():
        settings = current_config(env).simulator or settings

    def ready(url: str) -> None:
        say(f"simulated models {', '.join(settings.models)} on {url}")

    return run_until_signal(lambda stop: until(stop, run_simulator(settings, host, port, ready)))


@app.command(rich_help_panel=RUN)
def broker(port: int = 9092) -> int:
    """Run the embedded broker in the foreground."""
    from streams.local.broker import EmbeddedBroker
    from streams.local.stack import broker_state_file

    env = Environment.from_env()
    embedded = EmbeddedBroker.start(state_file=broker_state_file(env), port=port)
    say(f"embedded broker on {embedded.bootstrap} (memory only); Ctrl-C stops it")
    try:
        while embedded.process.poll() is None:
            time.sleep(1)
    finally:
        embedded.stop()
    return 0
