"""Deciding a live config change: may it apply without a restart, and what changed.

A worker builds some things from config once, at start: an HTTP pool, client, gate
and breaker per model endpoint, its consumers' and producers' sizes, retry and
breaker policies, the signature window, the latency book, the learned router. A
change to any of those needs a restart (``restart_only_changes``); everything else
(tenants and their keys, budgets, limits, priorities and shares, routing tiers and
rules, prices and qualities, data classes and regions, redaction) applies live.
``switchyard config apply`` refuses a config that changes what needs a restart,
and a worker refuses one too, so no worker ever runs part of a version.
"""

import difflib
from datetime import datetime

import orjson
import yaml

from schemas.config import REVEAL_SECRETS, SwitchyardConfig
from schemas.live_config import AppliedConfig
from schemas.telemetry import ConfigRow

# Whole sections a worker reads only at start.
RESTART_SECTIONS = ("limits", "dispatch", "security", "observability", "simulator")
RESTART_ROUTING = ("latency", "learned")
# Per model: what its client, pool and gate were built with.
RESTART_MODEL_FIELDS = (
    "provider", "api", "base_url", "api_model", "api_key_env",
    "timeout_s", "connect_timeout_s", "first_byte_timeout_s", "max_concurrency",
)  # fmt: skip


def restart_only_changes(running: SwitchyardConfig, new: SwitchyardConfig) -> list[str]:
    """What ``new`` changes that only a restart applies, as config paths; [] if none."""
    changes = [s for s in RESTART_SECTIONS if getattr(running, s) != getattr(new, s)]
    changes += [
        f"routing.{s}" for s in RESTART_ROUTING
        if getattr(running.routing, s) != getattr(new.routing, s)
    ]  # fmt: skip
    before = {m.name: m for m in running.models}
    after = {m.name: m for m in new.models}
    if before.keys() != after.keys():
        added, removed = sorted(after.keys() - before.keys()), sorted(before.keys() - after.keys())
        changes.append(f"models (added: {added or 'none'}, removed: {removed or 'none'})")
    for name in sorted(before.keys() & after.keys()):
        changes += [
            f"models.{name}.{field}" for field in RESTART_MODEL_FIELDS
            if getattr(before[name], field) != getattr(after[name], field)
        ]  # fmt: skip
    return changes


def masked_yaml(config: SwitchyardConfig) -> str:
    """The config as YAML with sorted keys and demo secrets masked: what the ``configs``
    table keeps and diffs compare."""
    data = orjson.loads(config.model_dump_json())  # masks SecretStr values
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def config_diff(running: SwitchyardConfig | None, new: SwitchyardConfig) -> str:
    """A unified diff from ``running`` (None: from nothing) to ``new``, secrets masked."""
    before = masked_yaml(running).splitlines(keepends=True) if running is not None else []
    after = masked_yaml(new).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, "running", "applied", n=2))


def applied(
    new: SwitchyardConfig, running: SwitchyardConfig | None, by: str, now: datetime
) -> AppliedConfig:
    """The config topic's record of ``new`` replacing ``running``."""
    return AppliedConfig(
        version=new.version,
        config=new.model_dump(mode="json", context={REVEAL_SECRETS: True}),
        applied_by=by,
        applied_at=now,
        previous=running.version if running is not None else None,
        diff=config_diff(running, new),
    )


def config_row(record: AppliedConfig) -> ConfigRow:
    """The ``configs`` row of a version: its content and diff with secrets masked.
    Raises ValidationError when the record's config is not one."""
    content = masked_yaml(SwitchyardConfig.model_validate(record.config))
    return ConfigRow(
        version=record.version,
        applied_by=record.applied_by,
        applied_at=record.applied_at,
        previous=record.previous or "",
        diff=record.diff,
        content=content,
    )


__all__ = ["applied", "config_diff", "config_row", "masked_yaml", "restart_only_changes"]
