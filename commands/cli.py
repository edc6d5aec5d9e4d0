"""The ``switchyard`` command. Run ``switchyard COMMAND --help`` for each command's options."""

import argparse
import asyncio
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from commands.progress import say
from schemas.config import SwitchyardConfig
from schemas.config_file import load_config
from schemas.errors import ConfigError, StackError, SwitchyardError
from schemas.messages import ChatMessage, InferenceRequest
from streams.local.environment import Environment
from streams.local.stack import WORKERS, Stack, find_bootstrap, running_stack
from streams.topics import TopicCatalogue

log = logging.getLogger("switchyard")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # SIGTERM unwinds like Ctrl-C, so commands that own processes stop them
    # (workers replace this with their own graceful handlers).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        say(f"invalid config {exc.source}:")
        for issue in exc.issues:
            say(f"  {issue}")
        return exc.exit_code
    except SwitchyardError as exc:
        say(f"switchyard: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at info level")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("up", cmd_up, "run broker (if needed), simulator and all workers until Ctrl-C")
    p.add_argument("--no-simulator", action="store_true", help="use the config's real endpoints")

    p = command("demo", cmd_demo, "start what is missing, send sample jobs, report from ClickHouse")
    p.add_argument("--requests", type=int, default=200, help="how many jobs (default 200)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for replies")

    p = command("bench", cmd_bench, "measure router and provider-worker throughput")
    p.add_argument("--jobs", type=int, default=3000, help="how many jobs (default 3000)")
    p.add_argument(
        "--router",
        type=Path,
        metavar="DIR",
        help="compare the router stage's rate per strategy (rules, learned, cheapest-capable) "
        "using this trained router for `learned`",
    )

    p = command("chaos", cmd_chaos, "run the real pipeline under a named fault and count")
    p.add_argument("scenario", choices=_chaos_scenarios(), metavar="SCENARIO",
                   help="one of: " + ", ".join(_chaos_scenarios()))  # fmt: skip
    p.add_argument("--jobs", type=int, default=2000, help="how many jobs (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("send", cmd_send, "submit one job and print its reply with the routing explanation")
    p.add_argument("prompt")
    p.add_argument("--tenant", required=True)
    p.add_argument("--quality", choices=["economy", "balanced", "premium"])
    p.add_argument("--task")
    p.add_argument("--model", help="pin a model")
    p.add_argument("--max-tokens", type=int)
    p.add_argument(
        "--data-classification", choices=["public", "internal", "confidential", "restricted"]
    )
    p.add_argument("--timeout", type=float, default=60)

    p = command("worker", cmd_worker, "run one worker in the foreground")
    p.add_argument("kind", choices=WORKERS)
    p.add_argument("--web-port", type=int, default=6066, help="router only: budget endpoint port")

    p = command("topics", cmd_topics, "create or list the catalogue's topics")
    p.add_argument("action", choices=["create", "list"])

    p = command("simulate", cmd_simulate, "serve OpenAI-compatible fake models")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8811)

    p = command("query", cmd_query, "run a read-only SQL query on the telemetry database")
    p.add_argument("sql")
    p.add_argument("--json", action="store_true", help="one JSON object per row")

    p = command("budget", cmd_budget, "show the router's per-tenant budget table")
    p.add_argument("--web-port", type=int, help="default: the running stack's router, else 6066")

    p = command("broker", cmd_broker, "run the embedded broker in the foreground")
    p.add_argument("--port", type=int, default=9092)

    p = command("config", cmd_config, "check a config file")
    p.add_argument("action", choices=["validate"])
    p.add_argument("file", type=Path)

    p = command("dlq", cmd_dlq, "list dead letters, or replay them to the requests topic")
    actions = p.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="print the dead letters, oldest first")
    p.add_argument("--json", action="store_true", help="one JSON object per letter")
    p.add_argument("--code", help="only letters with this error code")
    p.add_argument("--stage", choices=["validate", "dispatch"], help="only letters of this stage")
    p.add_argument("--limit", type=int, help="print at most N letters (the oldest)")
    p = actions.add_parser("replay", help="publish letters' original payloads to requests")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--offset", type=int, action="append", dest="offsets", metavar="N", help="repeatable"
    )
    which.add_argument(
        "--request-id", action="append", dest="request_ids", metavar="ID", help="repeatable"
    )
    which.add_argument("--code", help="every letter with this error code")
    which.add_argument("--all", action="store_true", help="every letter")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")

    p = command("router", cmd_router, "train, evaluate and query a learned router on outcome data")
    actions = p.add_subparsers(dest="action", required=True)
    p = actions.add_parser(
        "train",
        help="train on the train split (--data), or refit a router from production feedback "
        "(--from-telemetry); write a new version of a router directory",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, nargs="+", metavar="FILE",
                        help="outcome JSONL files, plain or gzip")  # fmt: skip
    source.add_argument("--from-telemetry", action="store_true",
                        help="refit --router from feedback joined to its decisions")  # fmt: skip
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="router directory (default with --from-telemetry: --router)")  # fmt: skip
    p.add_argument("--router", type=Path, metavar="DIR",
                   help="--from-telemetry: the router to refit")  # fmt: skip
    p.add_argument("--since", default="30d",
                   help="--from-telemetry: requests finished within (default 30d)")  # fmt: skip
    p.add_argument("--kind", action="append", choices=["thumbs", "success", "score"],
                   help="--from-telemetry: only this feedback kind (repeatable)")  # fmt: skip
    p.add_argument("--min-rows", type=int, default=30,
                   help="--from-telemetry: judgements before a model is shifted or added "
                   "(default 30)")  # fmt: skip
    p = actions.add_parser("eval", help="cost-quality figures on the test split vs baselines")
    p.add_argument("--router", type=Path, required=True, metavar="DIR")
    p.add_argument("--data", type=Path, nargs="+", required=True, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", type=Path, metavar="FILE", help="also write the curve as a PNG")
    p = actions.add_parser("predict", help='print {"id", "model"} per test prompt')
    p.add_argument("--router", type=Path, required=True, metavar="DIR")
    p.add_argument("--data", type=Path, required=True, metavar="FILE")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--quality-target", type=float, metavar="Q",
                     help="cheapest model predicted to reach Q (0..1)")  # fmt: skip
    how.add_argument("--lambda", type=float, dest="lam", metavar="L",
                     help="maximise quality - L x cost / strongest's mean cost")  # fmt: skip

    p = command(
        "feedback",
        cmd_feedback,
        "report how a reply worked out; ClickHouse joins it to the routing decision",
    )
    p.add_argument("request_id", metavar="REQUEST_ID", help="the request_id of the judged reply")
    p.add_argument("--tenant", required=True, help="the tenant that sent the request")
    verdict = p.add_mutually_exclusive_group(required=True)
    for flag, meaning in (
        ("up", "thumbs up (thumbs = 1)"),
        ("down", "thumbs down (thumbs = 0)"),
        ("success", "the task succeeded (success = 1)"),
        ("failure", "the task failed (success = 0)"),
    ):
        verdict.add_argument(
            f"--{flag}", dest="verdict", action="store_const", const=flag, help=meaning
        )
    verdict.add_argument("--score", type=float, metavar="X", help="a score from 0 to 1")
    p.add_argument("--source", default="cli", help="who judged: app, user, evaluator (default cli)")

    p = command(
        "whatif",
        cmd_whatif,
        "replay logged requests' routing under a new config: model changes, cost, quality, "
        "latency per tenant and task",
    )
    p.add_argument(
        "--config",
        required=True,
        type=Path,
        dest="new_config",
        metavar="NEW.yaml",
        help="the config to compare with the current one (SWITCHYARD_CONFIG)",
    )
    p.add_argument(
        "--since", default="7d", help="requests finished within: 7d, 12h, 30m (default 7d)"
    )
    p.add_argument(
        "--router", type=Path, metavar="DIR", help="trained router for the new config's `learned`"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("schema", cmd_schema, "export JSON Schema of every message")
    p.add_argument("action", choices=["export"])
    p.add_argument("dir", type=Path)
    return parser


# --- commands ---------------------------------------------------------------


def _load(env: Environment) -> SwitchyardConfig:
    return load_config(env.config_path)


def _require_bootstrap(env: Environment) -> str:
    bootstrap = find_bootstrap(env)
    if bootstrap is None:
        raise StackError("no broker: set KAFKA_BOOTSTRAP, or run `switchyard up` first")
    return bootstrap


def _run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> int:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0


def _ensure_topics(stack: Stack) -> None:
    from streams.kafka.admin import ensure_topics

    catalogue = TopicCatalogue(stack.env.namespace)
    created = asyncio.run(
        ensure_topics(stack.bootstrap, catalogue.all(), stack.env.replication_factor)
    )
    if created:
        say(f"created {len(created)} topics")


def _start_stack(env: Environment, simulator: bool) -> Stack:
    """Start what is missing; a stack that `switchyard up` runs is reused whole."""
    running = running_stack(env)
    if running is not None and running["bootstrap"] == find_bootstrap(env):
        say(f"reusing the stack `switchyard up` runs (pid {running['pid']})")
        return Stack(env=env, bootstrap=running["bootstrap"])
    stack = Stack.connect(env, start_broker=True, notify=say)
    try:
        _ensure_topics(stack)
        if simulator:
            say(f"simulated providers on {stack.start_simulator()}")
        for kind in WORKERS:
            stack.start_worker(kind)
        say(f"workers starting: {', '.join(WORKERS)} (logs in {env.state_dir / 'logs'})")
        stack.wait_router_web()
    except BaseException:
        stack.stop()
        raise
    return stack


def cmd_up(args: argparse.Namespace) -> int:
    env = Environment.from_env()
    _load(env)
    if running_stack(env) is not None:
        raise StackError(f"a stack already runs for {env.state_dir}; stop it first")
    stack = _start_stack(env, simulator=not args.no_simulator)
    stack.publish_state()
    say(f"switchyard is up on {stack.bootstrap}; Ctrl-C stops it")
    try:
        while True:
            stack.check_alive()
            time.sleep(1)
    finally:
        stack.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    from commands.demo import format_summary, run_demo

    if args.requests < 1:
        raise StackError("--requests must be at least 1")
    env = Environment.from_env()
    config = _load(env)
    stack = _start_stack(env, simulator=True)
    try:
        summary = run_demo(env, config, stack.bootstrap, args.requests, args.timeout)
    finally:
        stack.stop()
    if args.json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        print(format_summary(summary))
    return 0 if summary["lost"] == 0 else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from commands.bench import run_bench

    if args.jobs < 1:
        raise StackError("--jobs must be at least 1")
    env = Environment.from_env()
    if args.router is not None:
        from commands.bench import run_strategy_bench

        result = run_strategy_bench(env, _load(env), args.jobs, args.router)
    else:
        result = run_bench(env, _load(env), args.jobs)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def _chaos_scenarios() -> list[str]:
    from commands.chaos import SCENARIOS

    return list(SCENARIOS)


def cmd_chaos(args: argparse.Namespace) -> int:
    from commands.chaos import format_summary, run_chaos

    if args.jobs < 1:
        raise StackError("--jobs must be at least 1")
    env = Environment.from_env()
    summary = run_chaos(env, _load(env), args.scenario, args.jobs)
    if args.json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        print(format_summary(summary))
    return 0 if summary["ok"] else 1


def cmd_send(args: argparse.Namespace) -> int:
    from streams.client import SwitchyardClient

    env = Environment.from_env()
    config = _load(env)
    bootstrap = _require_bootstrap(env)
    request = InferenceRequest(
        request_id=f"cli-{uuid.uuid4().hex[:12]}",
        tenant=args.tenant,
        messages=[ChatMessage(role="user", content=args.prompt)],
        quality=args.quality,
        task=args.task,
        model=args.model,
        max_tokens=args.max_tokens,
        data_classification=args.data_classification,
    )

    async def send() -> Any:
        catalogue = TopicCatalogue(env.namespace)
        async with SwitchyardClient(
            bootstrap, catalogue, max_message_bytes=config.limits.max_message_bytes
        ) as client:
            return await client.request(request, timeout_s=args.timeout)

    reply = asyncio.run(send())
    sys.stdout.write(reply.model_dump_json(indent=2, exclude_none=True) + "\n")
    return 0 if reply.status == "ok" else 1


def cmd_worker(args: argparse.Namespace) -> int:
    env = Environment.from_env()
    config = _load(env)
    bootstrap = _require_bootstrap(env)
    catalogue = TopicCatalogue(env.namespace)
    if args.kind == "router":
        import faust

        from streams.workers.router import build_router_app

        app = build_router_app(
            config, bootstrap, catalogue, args.web_port, env.state_dir, env.replication_factor
        )
        worker = faust.Worker(app, loglevel="INFO" if args.verbose else "WARNING", quiet=True)
        worker.execute_from_commandline()
        return 0
    if args.kind == "provider":
        from streams.workers.provider import ProviderWorker

        return _run_until_signal(ProviderWorker(config, bootstrap, catalogue).run)
    from streams.workers.telemetry import run_telemetry_worker

    return _run_until_signal(
        lambda stop: run_telemetry_worker(
            bootstrap, catalogue, env.clickhouse_url, env.state_dir, stop
        )
    )


def cmd_topics(args: argparse.Namespace) -> int:
    env = Environment.from_env()
    catalogue = TopicCatalogue(env.namespace)
    if args.action == "list":
        print(f"{'topic':<44}{'partitions':>11}  {'cleanup':<8} {'key':<11} purpose")
        for spec in catalogue.all():
            print(
                f"{spec.name:<44}{spec.partitions:>11}  {spec.cleanup_policy:<8} "
                f"{spec.key:<11} {spec.purpose}"
            )
        return 0
    stack = Stack.connect(env, start_broker=False, notify=say)
    _ensure_topics(stack)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator import SimulatorSettings, run_simulator

    env = Environment.from_env()
    settings = SimulatorSettings()
    if env.config_path.exists():
        settings = _load(env).simulator or settings
    ready = lambda url: say(f"simulated models {', '.join(settings.models)} on {url}")  # noqa: E731
    return _run_until_signal(
        lambda stop: _until(stop, run_simulator(settings, args.host, args.port, ready))
    )


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, waiter):
        t.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception():
        raise task.exception()  # type: ignore[misc]


def cmd_query(args: argparse.Namespace) -> int:
    from commands.telemetry_reader import run_query

    columns, rows = run_query(Environment.from_env(), args.sql)
    if args.json:
        for row in rows:
            sys.stdout.write(
                orjson.dumps(dict(zip(columns, row, strict=True)), default=str).decode() + "\n"
            )
        return 0
    print("\t".join(columns))
    for row in rows:
        print("\t".join(str(v) for v in row))
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    import httpx

    running = running_stack(Environment.from_env())
    port = args.web_port or (running or {}).get("router_web_port") or 6066
    data = httpx.get(f"http://127.0.0.1:{port}/budget/", timeout=5).json()
    print(f"{'tenant':<20}{'period':<10}{'spent USD':>14}{'reserved USD':>14}{'requests':>10}")
    for tenant, snap in sorted(data.items()):
        print(
            f"{tenant:<20}{snap['period']:<10}{snap['spent_usd']:>14.6f}"
            f"{snap['reserved_usd']:>14.6f}{snap['requests']:>10}"
        )
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from streams.local.broker import EmbeddedBroker
    from streams.local.stack import broker_state_file

    env = Environment.from_env()
    broker = EmbeddedBroker.start(state_file=broker_state_file(env), port=args.port)
    say(f"embedded broker on {broker.bootstrap} (memory only); Ctrl-C stops it")
    try:
        while broker.process.poll() is None:
            time.sleep(1)
    finally:
        broker.stop()
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(f"{args.file}: valid ({len(config.models)} models, {len(config.tenants)} tenants)")
    return 0


def cmd_router(args: argparse.Namespace) -> int:
    from commands import router as router_commands

    if args.action == "train" and args.from_telemetry:
        return _router_refit(args)
    if args.action == "train":
        if args.out is None:
            raise StackError("router train --data needs --out DIR")
        return router_commands.cmd_train(args.data, args.out)
    if args.action == "eval":
        return router_commands.cmd_eval(args.router, args.data, args.json, args.plot)
    if args.quality_target is not None and not 0 <= args.quality_target <= 1:
        raise StackError("--quality-target must be within 0 and 1")
    if args.lam is not None and args.lam < 0:
        raise StackError("--lambda must be at least 0")
    return router_commands.cmd_predict(args.router, args.data, args.quality_target, args.lam)


def _router_refit(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from commands.router_refit import cmd_refit
    from processors.whatif import parse_since

    if args.router is None:
        raise StackError("router train --from-telemetry needs --router DIR (the router to refit)")
    if args.min_rows < 1:
        raise StackError("--min-rows must be at least 1")
    try:
        window = parse_since(args.since)
    except ValueError as exc:
        raise StackError(str(exc)) from None
    env = Environment.from_env()
    aliases = _load(env).routing.learned.aliases
    now = datetime.now(UTC)
    return cmd_refit(
        env, aliases, args.router, args.out, window, now, args.kind or [], args.min_rows
    )


def cmd_dlq(args: argparse.Namespace) -> int:
    if args.action == "list" and args.limit is not None and args.limit < 1:
        raise StackError("--limit must be at least 1")
    env = Environment.from_env()
    bootstrap = _require_bootstrap(env)
    catalogue = TopicCatalogue(env.namespace)
    if args.action == "replay":
        return _dlq_replay(args, bootstrap, catalogue)
    return _dlq_list(args, bootstrap, catalogue)


def _dlq_list(args: argparse.Namespace, bootstrap: str, catalogue: TopicCatalogue) -> int:
    from commands import dlq

    keep = dlq.letter_filter(args.code, args.stage)
    found = asyncio.run(dlq.read_letters(bootstrap, catalogue.dead_letter.name, keep, args.limit))
    if found.unreadable:
        say(f"skipped records that are not dead letters at offsets {found.unreadable}")
    if args.json:
        for stored in found.letters:
            sys.stdout.write(dlq.letter_json(stored) + "\n")
        return 0
    print(dlq.LIST_HEADER)
    for stored in found.letters:
        print(dlq.format_letter(stored))
    return 0


def _dlq_replay(args: argparse.Namespace, bootstrap: str, catalogue: TopicCatalogue) -> int:
    from commands import dlq

    selection = dlq.Selection(
        offsets=tuple(args.offsets or ()),
        request_ids=tuple(args.request_ids or ()),
        code=args.code,
        all=args.all,
    )
    report = asyncio.run(dlq.replay_letters(bootstrap, catalogue, selection, args.dry_run))
    for line in dlq.format_problems(report):
        say(line)
    print("\n".join(dlq.format_report(report)))
    return 0 if report.complete else 1


def cmd_schema(args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    written = export_json_schemas(args.dir)
    print(f"wrote {len(written)} schemas to {args.dir}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from commands.feedback import build_feedback, describe_invalid, publish_feedback

    env = Environment.from_env()
    try:
        feedback = build_feedback(
            args.request_id, args.tenant, args.verdict, args.score, args.source, datetime.now(UTC)
        )
    except ValidationError as exc:
        say("switchyard: invalid feedback:")
        for line in describe_invalid(exc):
            say(f"  {line}")
        return 2
    bootstrap = _require_bootstrap(env)
    catalogue = TopicCatalogue(env.namespace)
    asyncio.run(publish_feedback(bootstrap, catalogue, feedback))
    print(
        f"feedback {feedback.kind}={feedback.value:g} for {feedback.tenant}/{feedback.request_id} "
        f"sent to {catalogue.feedback.name}"
    )
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from commands import whatif
    from processors.whatif import parse_since

    try:
        window = parse_since(args.since)
    except ValueError as exc:
        say(f"switchyard: {exc}")
        return 2
    env = Environment.from_env()
    current = _load(env)
    new = load_config(args.new_config)
    if args.router is not None:
        new = whatif.with_router(new, args.router)
    report = whatif.run_whatif(env, current, new, window, datetime.now(UTC))
    if args.json:
        body = {"since": args.since, "current": str(env.config_path), "new": str(args.new_config)}
        sys.stdout.write(orjson.dumps(body | report.model_dump()).decode() + "\n")
    else:
        print(f"{args.new_config} against {env.config_path}, requests of the last {args.since}:")
        print(whatif.format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
