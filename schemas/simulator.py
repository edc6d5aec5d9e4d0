"""What the simulated providers look like: one profile per fake model.

Every field has a default so a config file only states what it changes. The
defaults are fault-free on purpose: demos and tests opt into errors, rate
limits and outages explicitly, so nothing flaky happens by accident.
"""

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutageWindow(_Frozen):
    """A period, in seconds since the simulator started, when a model answers 503.

    The window is half-open: ``start_s <= elapsed < end_s``.
    """

    start_s: float = Field(ge=0)
    end_s: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_s <= self.start_s:
            raise ValueError(f"outage end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class FakeModelProfile(_Frozen):
    """How one fake model behaves; faults are checked in the order of the fields below.

    Order of checks for each request: outage (503), rate limit (429), context
    window (400), random server error (500), otherwise a completion.
    """

    latency_ms: float = Field(default=200, ge=0, description="median latency")
    latency_sigma: float = Field(default=0.3, ge=0, description="lognormal shape; 0 = constant")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share answered with HTTP 500")
    rate_limit_rps: float | None = Field(
        default=None, gt=0, description="token bucket per model, burst of one second; none = off"
    )
    outages: list[OutageWindow] = Field(default_factory=list, description="503 inside each window")
    output_tokens: int = Field(default=40, ge=1, description="typical completion length")
    context_window: int = Field(default=32768, ge=1, description="longer prompt -> 400")

    def in_outage(self, elapsed_s: float) -> bool:
        return any(w.start_s <= elapsed_s < w.end_s for w in self.outages)


def _default_models() -> dict[str, FakeModelProfile]:
    # Context windows match the sample config's model specs so the router's
    # view of a model and the simulator's answer agree.
    return {
        "sim-small": FakeModelProfile(latency_ms=40, output_tokens=40, context_window=16384),
        "sim-medium": FakeModelProfile(latency_ms=120, output_tokens=60, context_window=65536),
        "sim-large": FakeModelProfile(
            latency_ms=300, latency_sigma=0.4, output_tokens=80, context_window=131072
        ),
        "sim-local": FakeModelProfile(latency_ms=80, output_tokens=40, context_window=8192),
    }


class SimulatorSettings(_Frozen):
    """The whole simulator: a seed, the fake models, and a global latency factor.

    The same seed, models and sequence of requests give the same answers; only
    rate limiting depends on when requests arrive.
    """

    seed: int = 7
    models: dict[str, FakeModelProfile] = Field(default_factory=_default_models, min_length=1)
    latency_scale: float = Field(
        default=1.0, ge=0, description="multiplies every latency; tests use 0.01, 0 = no wait"
    )
