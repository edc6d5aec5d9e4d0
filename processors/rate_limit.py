"""Requests and tokens per minute, per scope (a tenant, one of its teams, one of its apps).

Each limit is a GCRA (generic cell rate algorithm) cell: one number per scope and unit,
the theoretical arrival time (``tat``) of the next unit if units came at exactly the
limit's rate. A request costing ``n`` units is admitted when, after it, ``tat`` runs at
most one minute ahead of now. That is a token bucket holding one minute's limit, refilled
at the limit's rate: an idle scope may spend a whole minute's limit at once, and after
that exactly the limit's rate, so any 60 s admit at most twice the limit and any long
stretch the limit per minute. When a request is not admitted, the wait until it would be
is exact, which is what a ``rate_limited`` reply's ``retry_after_s`` says.

The state is plain data for the router to keep beside the tenant's budget snapshot, on
the tenant's home partition: one writer per tenant, so limits hold exactly across
router instances and come back exactly after a restart. Time is always passed in.

Tokens are charged at admission as the job's estimated input plus the most it may write;
when the job is settled, what its calls did not use is given back (``give_back``), so over
time a token limit counts the tokens really used.

Queueing is the same cell run as a schedule: a job over a limit, if allowed to wait up to
``queue_up_to_s``, is charged now as if admitted and told to wait until it conforms
(``Admission.wait_s``). Each later job of the scope starts from the cell the one before it
advanced, so waits never go backwards: the queue keeps the scope's order, and its rate is
exactly the limit's.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas.rate_limits import RateLimitSpec, TenantRateLimits

WINDOW_S = 60.0
Unit = str  # "requests" or "tokens"


@dataclass(frozen=True)
class Limit:
    """At most ``per_minute`` units of ``unit`` per minute for ``scope``."""

    scope: str  # "tenant", "team:search", "app:checkout"
    unit: Unit
    per_minute: int

    @property
    def key(self) -> str:
        return f"{self.scope}/{self.unit}"

    @property
    def interval_s(self) -> float:
        return WINDOW_S / self.per_minute


@dataclass(frozen=True)
class Refused:
    """The limit a request would break, and how long until it would not."""

    limit: Limit
    retry_after_s: float


@dataclass(frozen=True)
class Admission:
    tat: dict[str, float]  # the state after the decision (unchanged when refused)
    refused: Refused | None = None
    wait_s: float = 0.0  # admitted into the queue: run this long after now
    waited_for: Limit | None = None  # the limit that set ``wait_s``


def admit(
    tat: Mapping[str, float],
    limits: Sequence[Limit],
    cost: Mapping[Unit, int],
    now: float,
    queue_up_to_s: float = 0.0,
) -> Admission:
    """Admit a request costing ``cost`` units (``{"requests": 1, "tokens": 900}``) at
    ``now`` (seconds) under every limit, queued if it may wait ``queue_up_to_s``, or
    refuse it naming the limit that waits longest.

    All or nothing: a refused request charges no limit."""
    after = dict(tat)
    worst: Refused | None = None
    for limit in limits:
        units = cost.get(limit.unit, 0)
        if units <= 0:
            continue
        if units > limit.per_minute:  # never fits, however long it waits
            return Admission(dict(tat), Refused(limit, float("inf")))
        start = max(tat.get(limit.key, now), now)
        after[limit.key] = start + units * limit.interval_s
        wait = after[limit.key] - now - WINDOW_S
        if wait > 1e-9 and (worst is None or wait > worst.retry_after_s):
            worst = Refused(limit, wait)
    if worst is None:
        return Admission(after)
    if worst.retry_after_s <= queue_up_to_s:
        return Admission(after, wait_s=worst.retry_after_s, waited_for=worst.limit)
    return Admission(dict(tat), worst)


def give_back(
    tat: Mapping[str, float], limits: Sequence[Limit], units: Mapping[Unit, int], now: float
) -> dict[str, float]:
    """The cells with ``units`` that were charged but not used given back to each limit
    (a job settled with fewer tokens than it was charged), never below idle."""
    after = dict(tat)
    for limit in limits:
        back = units.get(limit.unit, 0)
        if back > 0 and limit.key in after:
            after[limit.key] -= back * limit.interval_s
    return forget_idle(after, now)


def forget_idle(tat: Mapping[str, float], now: float) -> dict[str, float]:
    """The state without cells at or behind now: they behave exactly like no cell."""
    return {key: value for key, value in tat.items() if value > now}


def limits_for(spec: TenantRateLimits, team: str | None, app: str | None) -> list[Limit]:
    """Every limit a job of ``team`` and ``app`` falls under: its tenant's, its team's,
    its app's (a team or app the config does not name has only the tenant's)."""
    scoped: list[tuple[str, RateLimitSpec]] = [("tenant", spec)]
    if team is not None and team in spec.teams:
        scoped.append((f"team:{team}", spec.teams[team]))
    if app is not None and app in spec.apps:
        scoped.append((f"app:{app}", spec.apps[app]))
    limits = []
    for scope, one in scoped:
        if one.requests_per_minute is not None:
            limits.append(Limit(scope, "requests", one.requests_per_minute))
        if one.tokens_per_minute is not None:
            limits.append(Limit(scope, "tokens", one.tokens_per_minute))
    return limits


def describe(refused: Refused) -> str:
    """The reply's message: which limit, and when to retry."""
    wait = (
        "this job alone is over it"
        if refused.retry_after_s == float("inf")
        else f"retry after {refused.retry_after_s:.1f} s"
    )
    return f"{named(refused.limit)}: {wait}"


def named(limit: Limit) -> str:
    """``over the tenant's limit of 5 requests per minute``."""
    scope = "the tenant's" if limit.scope == "tenant" else limit.scope.replace(":", " ", 1) + "'s"
    return f"over {scope} limit of {limit.per_minute} {limit.unit} per minute"
