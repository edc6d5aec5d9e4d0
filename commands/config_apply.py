"""`switchyard config apply`: publish a validated config as the deployment's new version."""

import asyncio
import getpass
import os
from datetime import UTC, datetime
from pathlib import Path

from commands.console import say
from commands.stack_control import current_config, require_bootstrap
from processors.config_change import applied, restart_only_changes
from schemas.config import SwitchyardConfig
from schemas.config_file import load_config
from schemas.errors import ConfigNeedsRestart
from streams.config_topic import current_version, publish_version
from streams.kafka.seals import SealGate, cluster_key_from_env
from streams.local.environment import Environment
from streams.local.stack import running_stack
from streams.topics import TopicCatalogue


def apply_config(env: Environment, file: Path, by: str | None) -> int:
    """Publish the config in ``file`` unless it is current already or changes what needs
    a restart.

    The running config is the last version on the config topic (workers seed it with
    theirs), else the file the stack started with. The file's ``${VAR}``s are filled in
    as the workers' are: the simulator's address of a stack `switchyard up` runs is
    theirs. Prints the version and the diff (secrets masked)."""
    bootstrap = require_bootstrap(env)
    running_info = running_stack(env) or {}
    if running_info.get("simulator_url"):
        os.environ.setdefault("SWITCHYARD_SIMULATOR_URL", running_info["simulator_url"])
    new = load_config(file)
    stack_key = running_info.get("cluster_key")
    cluster_key = stack_key.encode() if stack_key else cluster_key_from_env()
    catalogue = TopicCatalogue(env.namespace)
    latest = asyncio.run(current_version(bootstrap, catalogue, SealGate(cluster_key, "config")))
    running = SwitchyardConfig.model_validate(latest.config) if latest else current_config(env)
    if latest is not None and latest.version == new.version:
        say(f"config {new.version} is already the current version: nothing published")
        return 0
    blocked = restart_only_changes(running, new)
    if blocked:
        raise ConfigNeedsRestart(
            f"not applied: it changes {', '.join(blocked)}, which workers read only at "
            "start; edit the config file and restart the workers (`switchyard down`, "
            "`switchyard up`)"
        )
    record = applied(new, running, by or getpass.getuser(), datetime.now(UTC))
    asyncio.run(publish_version(bootstrap, catalogue.config.name, cluster_key, record))
    print(record.diff, end="")
    say(f"config {record.version} applied by {record.applied_by} (was {record.previous}); "
        "workers switch to it within seconds")  # fmt: skip
    return 0
