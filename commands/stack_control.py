"""What commands share to reach the stack: the config, the broker, topics, signals."""

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from commands.console import say
from processors.authenticate import SigningKey
from schemas.access import new_token
from schemas.config import SwitchyardConfig
from schemas.config_file import load_config
from schemas.errors import InvalidOption, StackError
from streams.local.environment import Environment
from streams.local.stack import WORKERS, Stack, find_bootstrap, running_stack
from streams.topics import TopicCatalogue


def current_config(env: Environment) -> SwitchyardConfig:
    """The config ``SWITCHYARD_CONFIG`` names; raises ConfigError if it is invalid."""
    return load_config(env.config_path)


def require_bootstrap(env: Environment) -> str:
    """The broker's address; raises StackError when there is none to reach."""
    bootstrap = find_bootstrap(env)
    if bootstrap is None:
        raise StackError("no broker: set KAFKA_BOOTSTRAP, or run `switchyard up` first")
    return bootstrap


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> int:
    """Run ``main(stop)``; SIGINT and SIGTERM set ``stop``. Returns 0 once it ends."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0


async def until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or ``stop`` is set; re-raise what ``work`` raised."""
    task = asyncio.create_task(work)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for t in (task, waiter):
        t.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception():
        raise task.exception()  # type: ignore[misc]


def ensure_catalogue_topics(stack: Stack) -> None:
    """Create the catalogue's missing topics on the stack's broker."""
    from streams.kafka.admin import ensure_topics

    catalogue = TopicCatalogue(stack.env.namespace)
    created = asyncio.run(
        ensure_topics(stack.bootstrap, catalogue.all(), stack.env.replication_factor)
    )
    if created:
        say(f"created {len(created)} topics")


def start_stack(env: Environment, simulator: bool) -> Stack:
    """Start what is missing; a stack that `switchyard up` runs is reused whole."""
    running = running_stack(env)
    if running is not None and running["bootstrap"] == find_bootstrap(env):
        say(f"reusing the stack `switchyard up` runs (pid {running['pid']})")
        return Stack(
            env=env,
            bootstrap=running["bootstrap"],
            cluster_key=running.get("cluster_key") or new_token(),
        )
    stack = Stack.connect(env, start_broker=True, notify=say)
    try:
        ensure_catalogue_topics(stack)
        if simulator:
            say(f"simulated providers on {stack.start_simulator(wait=False)}")
        for kind in WORKERS:
            stack.start_worker(kind)
        say(f"workers starting: {', '.join(WORKERS)} (logs in {env.state_dir / 'logs'})")
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack


def keys_to_send_as(config: SwitchyardConfig, tenant: str) -> dict[str, SigningKey]:
    """The tenant's signing key, for jobs and feedback; a tenant that requires signing
    and has no secret here is an InvalidOption."""
    from streams.tenant_keys import signing_keys

    keys = signing_keys(config, [tenant])
    spec = config.tenants.get(tenant)
    if spec is not None and spec.auth == "signed" and tenant not in keys:
        names = ", ".join(k.secret_env for k in spec.keys)
        raise InvalidOption(f"tenant {tenant} signs its jobs and feedback: set one of {names}")
    return keys
