"""Circuit breaker and call pacing for one model endpoint; the clock is passed in.

Times are wall-clock seconds (epoch) because breaker states travel between
workers on the health topic and must mean the same instant everywhere.

Breaker: ``closed`` counts consecutive failures; at the threshold it opens
for ``open_s``. After that the first caller becomes the one *probe*
(``half_open``); its success closes the circuit, its failure opens it again.
A remote state (another worker's transition) is applied as it comes.

Pacer: a 429 stops calls until its Retry-After has passed and lowers the
call rate to what the provider let through (multiplicative decrease); quiet
seconds (after two) raise it again by 10% each, and after
``_FORGET_S`` without a 429 the limit is dropped.
"""

from collections import deque
from dataclasses import dataclass

from schemas.health import CircuitState
from schemas.runtime_settings import BreakerPolicy


@dataclass(frozen=True)
class Transition:
    """A state change worth telling other workers about."""

    state: CircuitState
    open_until: float | None
    reason: str


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self.state: CircuitState = "closed"
        self.failures = 0
        self.open_until = 0.0
        self._probing = False

    def allow(self, now: float) -> bool:
        """May a call go now? In half-open exactly one caller (the probe) gets True."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now < self.open_until:
                return False
            self.state = "half_open"
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_at(self) -> float:
        """When an open circuit lets its next probe through (0 when closed)."""
        return self.open_until if self.state != "closed" else 0.0

    def record_success(self) -> Transition | None:
        self.failures = 0
        if self.state == "closed":
            return None
        self.state = "closed"
        self._probing = False
        return Transition("closed", None, "probe succeeded")

    def record_failure(self, now: float, reason: str) -> Transition | None:
        if self.state == "open":
            return None  # calls sent before it opened, failing late: already counted
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.policy.failure_threshold:
            was_probe = self.state == "half_open"
            self.state = "open"
            self._probing = False
            self.open_until = now + self.policy.open_s
            self.failures = 0
            why = f"probe failed: {reason}" if was_probe else reason
            return Transition("open", self.open_until, why)
        return None

    def apply_remote(self, state: CircuitState, open_until: float | None) -> None:
        """Adopt another worker's transition (idempotent; later opens win)."""
        if state == "open" and open_until is not None:
            # Compare times, not states: a repeat of an opening already applied
            # (at-least-once, compacted topic) must not re-arm a second probe.
            if open_until > self.open_until:
                self.state = "open"
                self.open_until = open_until
                self._probing = False
        elif state == "closed" and self.state != "closed":
            self.state = "closed"
            self.failures = 0
            self._probing = False


_WINDOW_S = 2.0
_MIN_RATE = 0.5
_QUIET_S = 2.0
_FORGET_S = 10.0


class CallPacer:
    """How long a call to one endpoint must wait, learned from its 429s."""

    def __init__(self) -> None:
        self.rate: float | None = None  # calls per second; None = no limit known
        # This worker's share of the endpoint's configured limit (calls per second):
        # its dispatch partitions' share of ``requests_per_minute`` (``set_limit``).
        self.limit: float | None = None
        self.cool_until = 0.0
        self._next_slot = 0.0
        self._next_park = 0.0
        self._last_429 = 0.0
        self._last_raise = 0.0
        self._ok_times: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """Seconds until a call may go; ``reserve`` takes that slot."""
        return max(self.cool_until, self._slot(now)) - now

    def reserve(self, now: float) -> float:
        start = max(now, self.cool_until, self._slot(now))
        pace = self.pace()
        if pace is not None:
            self._next_slot = start + 1 / pace
        return start - now

    def pace(self) -> float | None:
        """Calls per second this worker may make: the lower of the learned rate and its
        share of the configured limit; None = unpaced."""
        known = [r for r in (self.rate, self.limit) if r is not None]
        return min(known) if known else None

    def set_limit(self, calls_per_s: float | None) -> None:
        self.limit = calls_per_s

    def park_until(self, now: float, cap_s: float) -> float:
        """When a job that cannot wait in memory should come back.

        Parked jobs are spread at the learned rate (so they do not all return
        at once) but come back within ``cap_s`` to see whether the limit lifted.
        """
        earliest = max(now + self.wait_s(now), self._next_park)
        pace = self.pace()
        self._next_park = earliest + (1 / pace if pace else 0.0)
        return min(earliest, now + cap_s)

    def record_ok(self, now: float) -> None:
        self._ok_times.append(now)
        while self._ok_times and self._ok_times[0] < now - _WINDOW_S:
            self._ok_times.popleft()
        if self.rate is None:
            return
        if now - self._last_429 > _FORGET_S:
            self.rate = None
            self._next_park = 0.0
        elif now - self._last_429 > _QUIET_S and now - self._last_raise >= 1.0:
            self.rate *= 1.1
            self._last_raise = now

    def record_rate_limited(self, now: float, retry_after_s: float | None) -> None:
        wait = retry_after_s if retry_after_s is not None else 1.0
        self.cool_until = max(self.cool_until, now + wait)
        while self._ok_times and self._ok_times[0] < now - _WINDOW_S:
            self._ok_times.popleft()
        # Calls in flight when the limit hit all come back 429 together: lower
        # the rate once per second, not once per call.
        if now - self._last_429 >= 1.0:
            let_through = len(self._ok_times) / _WINDOW_S
            ceiling = self.rate * 0.7 if self.rate is not None else float("inf")
            self.rate = max(_MIN_RATE, min(ceiling, let_through or _MIN_RATE))
        self._last_429 = now

    def cool_down(self, until: float) -> None:
        """Another worker saw a Retry-After: stop calling until then."""
        self.cool_until = max(self.cool_until, until)

    def _slot(self, now: float) -> float:
        return max(now, self._next_slot) if self.pace() is not None else now
