"""The one configuration model: models, tenants, routing defaults, limits.

Loaded from YAML by ``schemas.config_file.load_config``; secrets never live in
the file, only the *names* of environment variables that hold them.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from schemas.messages import ID_PATTERN, DataClass, Quality
from simulator.settings import SimulatorSettings


def _default_data_classes() -> list[DataClass]:
    return ["public", "internal"]


def _default_quality_floor() -> dict[Quality, float]:
    return {"economy": 0.5, "balanced": 0.7, "premium": 0.85}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """One model behind one endpoint, with what it costs and what it is good at."""

    name: str = Field(pattern=ID_PATTERN)
    provider: str = Field(pattern=ID_PATTERN, description="who runs it: openai, anthropic, sim")
    api: Literal["openai", "anthropic"] = "openai"
    base_url: HttpUrl
    api_model: str | None = Field(default=None, description="model name sent to the API")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    price_in_per_mtok: float = Field(ge=0, description="USD per 1M input tokens")
    price_out_per_mtok: float = Field(ge=0, description="USD per 1M output tokens")
    context_window: int = Field(gt=0)
    region: str
    data_classes: list[DataClass] = Field(
        default_factory=_default_data_classes,
        description="data classifications this model is cleared to receive",
    )
    tasks: dict[str, float] = Field(
        default_factory=dict, description="task -> quality score in [0, 1]"
    )
    default_quality: float = Field(default=0.5, ge=0, le=1)
    typical_latency_ms: float = Field(default=1000, gt=0)
    timeout_s: float = Field(default=60, gt=0, description="total time for one call")
    connect_timeout_s: float = Field(default=5, gt=0)
    first_byte_timeout_s: float | None = Field(
        default=None, gt=0, description="time to the first response byte; none = timeout_s"
    )
    max_concurrency: int = Field(default=64, gt=0, description="calls in flight per worker")
    fallbacks: list[str] = Field(
        default_factory=list,
        description="preferred alternatives, in order; used when they pass the same policy",
    )

    @property
    def wire_model(self) -> str:
        return self.api_model or self.name

    def quality_for(self, task: str) -> float:
        return self.tasks.get(task, self.default_quality)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.price_in_per_mtok + output_tokens * self.price_out_per_mtok
        ) / 1_000_000


class TenantSpec(_Strict):
    """A tenant's budget and the providers and regions it may use."""

    budget_usd: float | None = Field(default=None, ge=0, description="per period; none = no cap")
    budget_period: Literal["day", "month", "total"] = "month"
    allowed_providers: list[str] | None = None
    allowed_regions: list[str] | None = None
    default_quality: Quality | None = None


class RoutingDefaults(_Strict):
    """How the router fills in what a request leaves out."""

    strategy: Literal["cheapest-capable"] = "cheapest-capable"
    quality: Quality = "balanced"
    default_task: str = "chat"
    data_classification: DataClass = "internal"
    quality_floor: dict[Quality, float] = Field(default_factory=_default_quality_floor)
    max_fallbacks: int = Field(default=2, ge=0)
    default_max_tokens: int = Field(default=512, gt=0)


class RetryPolicy(_Strict):
    """Retries through delay topics once every model of a job's chain has failed."""

    base_delay_s: float = Field(default=1.0, gt=0, description="first round's backoff")
    max_delay_s: float = Field(default=120, gt=0)
    max_rounds: int = Field(
        default=4, ge=1, description="passes over the fallback chain before giving up"
    )
    max_parked_s: float = Field(
        default=600, gt=0, description="longest a rate-limited job waits for its turn"
    )


class BreakerPolicy(_Strict):
    """Per-endpoint circuit breaker, shared by all workers through the health topic."""

    failure_threshold: int = Field(default=5, ge=1, description="consecutive failures to open")
    open_s: float = Field(default=5.0, gt=0, description="how long open before a probe")


class DispatchSettings(_Strict):
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    dedup_window_s: float = Field(
        default=3600, gt=0, description="a request_id re-sent within this gets the same reply"
    )
    drain_timeout_s: float = Field(
        default=15, ge=0, description="SIGTERM: wait this long for calls in flight"
    )


class Limits(_Strict):
    """Limits the broker does not enforce itself."""

    max_message_bytes: int = Field(default=1_000_000, gt=0)


class SwitchyardConfig(_Strict):
    models: list[ModelSpec] = Field(min_length=1)
    tenants: dict[str, TenantSpec] = Field(min_length=1)
    routing: RoutingDefaults = Field(default_factory=RoutingDefaults)
    limits: Limits = Field(default_factory=Limits)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    simulator: SimulatorSettings | None = None

    @model_validator(mode="after")
    def _names_unique(self) -> "SwitchyardConfig":
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique, repeated: {', '.join(dupes)}")
        for m in self.models:
            unknown = [f for f in m.fallbacks if f not in names or f == m.name]
            if unknown:
                raise ValueError(f"model {m.name}: unknown fallbacks {', '.join(unknown)}")
        return self

    def model(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)
