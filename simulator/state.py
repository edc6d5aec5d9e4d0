"""What changes while the simulator serves: overrides, rate limiters, counters.

Single-threaded by design: every method runs on the event loop between awaits,
so no locks are needed.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.errors import UsageError
from schemas.simulator import FakeModelProfile, SimulatorSettings
from simulator.behaviour import Completion, Outcome, Prompt, TokenBucket, decide

COUNTERS = ("requests", "ok", "errors", "rate_limited", "unavailable", "rejected")
_COUNTER_BY_STATUS = {500: "errors", 429: "rate_limited", 503: "unavailable"}
# Occurrence indexes are kept per distinct request; a long load test with
# unique prompts would grow the table forever, so it is reset past this size
# (determinism of repeats only matters within short scenarios).
_MAX_TRACKED_REQUESTS = 100_000


@dataclass
class _ModelState:
    down: bool = False
    bucket: TokenBucket | None = None
    counts: Counter[str] = field(default_factory=Counter)
    watched: Counter[str] = field(default_factory=Counter)  # requests per watched marker


class SimulatorState:
    """Decides answers for requests as they arrive and keeps per-model counters.

    ``clock`` returns seconds (monotonic); outage windows are measured from the
    clock's value when this object is created.
    """

    def __init__(self, settings: SimulatorSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._started = clock()
        self._models = {name: _ModelState() for name in settings.models}
        self._seen: dict[tuple[str, str], int] = {}
        # Markers whose requests are counted per model: the provider's own evidence of
        # which data reached which model (``watch``).
        self.markers: tuple[str, ...] = ()
        # Calls answered but not yet returned (sleeping out their latency), all models.
        self.in_flight = 0

    def knows(self, model: str) -> bool:
        return model in self._models

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def answer(self, model: str, prompt: Prompt) -> Outcome:
        """The outcome for a request that arrives now; ``model`` must be known.

        Decided on arrival, not after the latency, so the answers depend on the
        order requests arrive in and not on how their sleeps interleave.
        """
        now = self._clock()
        elapsed = now - self._started
        profile = self.settings.models[model]
        state = self._models[model]
        occurrence = self._next_occurrence(model, prompt.digest)
        throttled: float | None = None
        # A model that is down never reaches its rate limiter, so it spends no token.
        if profile.rate_limit_rps and not (state.down or profile.in_outage(elapsed)):
            if state.bucket is None:
                state.bucket = TokenBucket(profile.rate_limit_rps, now)
            throttled = state.bucket.take(now)
        outcome = decide(
            self.settings, model, prompt, occurrence, elapsed,
            down=state.down, throttled_s=throttled,
        )  # fmt: skip
        state.counts["requests"] += 1
        for marker in self.markers:
            if any(marker in text for text in prompt.texts):
                state.watched[marker] += 1
        if isinstance(outcome, Completion):
            state.counts["ok"] += 1
        else:
            state.counts[_COUNTER_BY_STATUS.get(outcome.status, "rejected")] += 1
        return outcome

    def update(self, model: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply runtime overrides to a known model; returns its new view.

        ``down`` forces an outage until set false; any other key is a
        ``FakeModelProfile`` field, validated as such (``ValueError`` if bad).
        """
        changes = dict(changes)
        down = changes.pop("down", None)
        if down is not None and not isinstance(down, bool):
            raise UsageError("down must be true or false")
        current = self.settings.models[model]
        profile = FakeModelProfile.model_validate({**current.model_dump(), **changes})
        models = {**self.settings.models, model: profile}
        self.settings = self.settings.model_copy(update={"models": models})
        state = self._models[model]
        if down is not None:
            state.down = down
        if profile.rate_limit_rps != current.rate_limit_rps:
            state.bucket = None  # a new limit starts with a full bucket
        return self.view(model)

    def watch(self, markers: list[str]) -> None:
        """Count, per model, the requests whose messages contain each of ``markers``
        (replacing the markers watched so far; their counts are kept)."""
        self.markers = tuple(markers)

    def view(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "down": self._models[model].down,
            "profile": self.settings.models[model].model_dump(mode="json"),
        }

    def stats(self) -> dict[str, Any]:
        """Counters per model (every request that named a known model and parsed) and
        the calls in flight now."""
        models = {
            name: {
                "down": state.down,
                **{c: state.counts[c] for c in COUNTERS},
                "watched": dict(state.watched),
            }
            for name, state in self._models.items()
        }
        elapsed = round(self.elapsed_s, 3)
        return {"elapsed_s": elapsed, "in_flight": self.in_flight, "models": models}

    def reset_stats(self) -> None:
        for state in self._models.values():
            state.counts.clear()
            state.watched.clear()

    def _next_occurrence(self, model: str, digest: str) -> int:
        if len(self._seen) >= _MAX_TRACKED_REQUESTS:
            self._seen.clear()
        key = (model, digest)
        occurrence = self._seen.get(key, 0)
        self._seen[key] = occurrence + 1
        return occurrence
