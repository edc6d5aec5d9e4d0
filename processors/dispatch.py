"""What a provider worker does next with a job, decided from its attempts so far.

A job's flow (``processors.provider_hop``) asks, acts (has a model called,
parks the job on a retry topic, or finishes it), records the outcome and
asks again. This module calls nothing and reads no clock: the whole retry,
fallback and deadline policy is testable with plain lists and hand-set
breakers.

A *round* is one pass over the job's chain (chosen model, then fallbacks).
When a round ends with nothing answered, the job is parked until the chain's
first endpoint is usable again, with exponential backoff and jitter when the
round had real failures. Rounds that only met 429s or open circuits do not
count towards ``max_rounds``: those endpoints said when to come back, and the
job waits for that (up to ``max_parked_s``) instead of failing.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from processors.circuit import CallPacer, CircuitBreaker
from schemas.errors import ContextTooLong, DeadlineExpired, ProviderUnavailable
from schemas.messages import Attempt, AttemptOutcome, ErrorInfo
from schemas.runtime_settings import RetryPolicy

# Delay topics, shortest first: a parked job goes to the longest tier not
# longer than its wait, so records within a tier become due in about the
# order they were written and the head of a partition is the next one due.
RETRY_TIERS_S: tuple[int, ...] = (1, 5, 30, 120)

# A pacing wait up to this long is spent in memory; longer ones park the job.
MAX_IN_MEMORY_WAIT_S = 1.0
# A rate-limited job comes back at least this often to see if the limit lifted.
PARK_CAP_S = 5.0

_COUNTED_FAILURES = frozenset({"error", "timeout", "unavailable"})


@dataclass
class EndpointGate:
    """A model endpoint's breaker and pacer, as one worker holds them."""

    breaker: CircuitBreaker
    pacer: CallPacer = field(default_factory=CallPacer)


@dataclass(frozen=True)
class Call:
    model: str
    wait_s: float  # pacing: sleep this long first
    skipped: list[Attempt]  # chain models passed over (open circuit or throttled)


@dataclass(frozen=True)
class Park:
    resume_at: float
    next_round: int
    reason: str


@dataclass(frozen=True)
class Finish:
    """Done: answered (``error`` None) or failed with ``error``."""

    error: ErrorInfo | None
    exhausted: bool = False  # failed after every retry: worth a dead letter


def retry_tier(delay_s: float) -> int:
    """Index of the delay topic for a wait of ``delay_s``."""
    tier = 0
    for i, tier_s in enumerate(RETRY_TIERS_S):
        if tier_s <= delay_s:
            tier = i
    return tier


def backoff_s(failed_rounds: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** max(failed_rounds - 1, 0))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def next_step(
    chain: list[str],
    attempts: list[Attempt],
    round_: int,
    parked_s: float,
    now: float,
    deadline: float | None,
    gates: Mapping[str, EndpointGate],
    policy: RetryPolicy,
    rng: random.Random,
) -> Call | Park | Finish:
    """The next thing to do for a job whose chain is ``chain`` (times in epoch seconds)."""
    calls = [a for a in attempts if a.outcome not in ("circuit_open", "throttled")]
    if calls:
        last = calls[-1]
        if last.outcome == "ok":
            return Finish(None)
        if last.error is not None and not last.error.retryable:
            if last.error.code != ContextTooLong.code:
                return Finish(last.error)
    if deadline is not None and now >= deadline:
        return Finish(DeadlineExpired("deadline passed before the job could be answered").info())
    too_long = {a.model for a in calls if a.error and a.error.code == ContextTooLong.code}
    tried = {a.model for a in calls if a.round == round_}
    usable = [m for m in chain if m not in too_long and m in gates]
    if not usable:
        return Finish(_last_error(calls) or _no_model(), exhausted=True)
    skipped: list[Attempt] = []
    for model in usable:
        if model in tried:
            continue
        gate = gates[model]
        wait = gate.pacer.wait_s(now)
        if wait > MAX_IN_MEMORY_WAIT_S:
            skipped.append(_skip(model, "throttled", round_))
            continue
        if not gate.breaker.allow(now):
            skipped.append(_skip(model, "circuit_open", round_))
            continue
        return Call(model, gate.pacer.reserve(now), skipped)

    failed_rounds = len({a.round for a in calls if a.outcome in _COUNTED_FAILURES})
    if failed_rounds >= policy.max_rounds:
        return Finish(_last_error(calls) or _no_model(), exhausted=True)
    first = min(usable, key=lambda m: _ready_at(gates[m], now))
    ready_at = _ready_at(gates[first], now)
    if gates[first].pacer.wait_s(now) > MAX_IN_MEMORY_WAIT_S:
        # Rate-limited: come back in turn, spread at the learned rate.
        ready_at = max(ready_at, gates[first].pacer.park_until(now, PARK_CAP_S))
    if any(a.round == round_ and a.outcome in _COUNTED_FAILURES for a in calls):
        ready_at = max(ready_at, now + backoff_s(failed_rounds, policy, rng))
    if deadline is not None and ready_at >= deadline:
        return Finish(DeadlineExpired("deadline falls before any endpoint can be retried").info())
    if parked_s + (ready_at - now) > policy.max_parked_s:
        return Finish(_last_error(calls) or _no_model(), exhausted=True)
    reasons = sorted({a.outcome for a in calls if a.round == round_} | {s.outcome for s in skipped})
    return Park(ready_at, round_ + 1, ", ".join(reasons))


def _ready_at(gate: EndpointGate, now: float) -> float:
    """When this endpoint could take a call (no side effects)."""
    if gate.breaker.state == "open":
        breaker_at = gate.breaker.retry_at()
    elif gate.breaker.state == "half_open":
        # Another job holds the probe: its answer comes within one call.
        breaker_at = now + RETRY_TIERS_S[0]
    else:
        breaker_at = now
    return max(breaker_at, now + gate.pacer.wait_s(now))


def _skip(model: str, outcome: AttemptOutcome, round_: int) -> Attempt:
    return Attempt(model=model, provider="-", outcome=outcome, latency_ms=0, round=round_)


def _last_error(calls: list[Attempt]) -> ErrorInfo | None:
    return next((a.error for a in reversed(calls) if a.error is not None), None)


def _no_model() -> ErrorInfo:
    return ProviderUnavailable("no endpoint of the job's chain was available").info()
