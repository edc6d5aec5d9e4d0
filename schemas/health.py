"""Endpoint health shared by every provider worker through a compacted topic."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

CircuitState = Literal["closed", "open", "half_open"]


class EndpointHealth(BaseModel):
    """The latest circuit state one worker saw for one model endpoint.

    ``open_until`` is wall-clock: other workers apply it as is, so a worker
    that finds an outage (or a Retry-After) stops every worker calling that
    endpoint until then.
    """

    model: str
    kind: Literal["circuit", "rate_limit"] = "circuit"  # rate_limit: only cool_until is news
    state: CircuitState
    open_until: datetime | None = None
    cool_until: datetime | None = None  # a 429's Retry-After: no calls before then
    reason: str
    worker: str
    changed_at: datetime
