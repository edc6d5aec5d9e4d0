"""Live configuration: the versions ``switchyard config apply`` publishes.

A version is a digest of the whole config, secrets included (a changed key is a
new version), over its canonical JSON (``SwitchyardConfig.version``). The config
topic (compacted, keyed by version, one partition) holds every version in the
order applied; the last one is current. Workers follow it and switch between
batches (``streams.workers.live_config``); the telemetry worker records each
version in the ``configs`` table.

The record carries the whole config, secrets and all, because workers run it: the
config topic is as private as the config file (README "Live configuration"). The
``configs`` table and the diff keep secrets masked.
"""

from typing import Any

from pydantic import BaseModel, Field

from schemas.messages import UtcDatetime

VERSION_CHARS = 16


class AppliedConfig(BaseModel):
    """One config version on the config topic."""

    version: str = Field(min_length=VERSION_CHARS, max_length=VERSION_CHARS)
    config: dict[str, Any] = Field(description="the whole config, as workers run it")
    applied_by: str = Field(min_length=1)
    applied_at: UtcDatetime
    previous: str | None = Field(default=None, description="the version it replaced")
    diff: str = Field(default="", description="unified diff from previous, secrets masked")


__all__ = ["VERSION_CHARS", "AppliedConfig"]
