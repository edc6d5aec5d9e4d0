"""Per-model latency and error rates learned from the workers' own results.

Provider workers publish every attempt to telemetry; the router follows that
topic and feeds each call here. Routing then respects ``max_latency_ms`` and
deadlines by prediction (the model's recent p95), not only by timeouts.
"""

from collections import deque
from dataclasses import dataclass, field

from schemas.config import LatencySettings, ModelSpec

# Outcomes that say nothing about the endpoint's speed or health.
# A 429 says the endpoint is busy, not slow or broken: pacing handles it.
_NOT_CALLS = frozenset({"circuit_open", "throttled", "rate_limited"})
_FAILURES = frozenset({"error", "timeout", "unavailable"})


@dataclass(frozen=True)
class LatencyEstimate:
    """What routing knows about a model's speed: observed, or its configured typical."""

    ewma_ms: float
    p95_ms: float
    error_rate: float
    samples: int

    @property
    def observed(self) -> bool:
        return self.samples > 0


@dataclass
class ModelLatency:
    settings: LatencySettings
    ewma_ms: float | None = None
    error_rate: float = 0.0
    samples: int = 0
    recent: deque[float] = field(default_factory=deque)
    last_at: float | None = None

    def record(self, outcome: str, latency_ms: float, at: float | None = None) -> None:
        if outcome in _NOT_CALLS:
            return
        self.last_at = at
        alpha = self.settings.ewma_alpha
        failed = 1.0 if outcome in _FAILURES else 0.0
        self.error_rate = (
            failed if self.samples == 0 else (1 - alpha) * self.error_rate + alpha * failed
        )
        self.samples += 1
        # Timeouts count towards latency too: they are the slow tail.
        if outcome in ("ok", "rejected", "timeout"):
            self.ewma_ms = (
                latency_ms
                if self.ewma_ms is None
                else (1 - alpha) * self.ewma_ms + alpha * latency_ms
            )
            self.recent.append(latency_ms)
            while len(self.recent) > self.settings.window:
                self.recent.popleft()

    def p95_ms(self) -> float | None:
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(int(0.95 * len(ordered)), len(ordered) - 1)]


class LatencyBook:
    """All models' latency state, fed by attempts and read by the router."""

    def __init__(self, models: list[ModelSpec], settings: LatencySettings) -> None:
        self.settings = settings
        self.typical = {m.name: m.typical_latency_ms for m in models}
        self.models = {m.name: ModelLatency(settings) for m in models}

    def record(self, model: str, outcome: str, latency_ms: float, at: float | None = None) -> None:
        state = self.models.get(model)
        if state is not None:
            state.record(outcome, latency_ms, at)

    def estimates(self, now: float | None = None) -> dict[str, LatencyEstimate]:
        """Observed figures once a model has ``min_samples`` calls, typical latency before.

        An error rate older than ``error_memory_s`` (no call recorded since, at
        ``now``) is forgotten: a model demoted for failing gets traffic again,
        so its breaker can probe it and the rate can recover.
        """
        out: dict[str, LatencyEstimate] = {}
        memory = self.settings.error_memory_s
        for name, state in self.models.items():
            typical = self.typical[name]
            p95 = state.p95_ms()
            stale = now is not None and state.last_at is not None and now - state.last_at > memory
            errors = 0.0 if stale else state.error_rate
            if state.samples >= self.settings.min_samples and p95 is not None:
                out[name] = LatencyEstimate(state.ewma_ms or typical, p95, errors, state.samples)
            else:
                out[name] = LatencyEstimate(typical, typical, errors, state.samples)
        return out
