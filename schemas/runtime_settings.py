"""The config's runtime sections: dispatch (retries, breakers, concurrency), limits the
broker does not enforce, and security. A worker reads these at start: a live config
change (``switchyard config apply``) may not change them (``schemas.live_config``).
"""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.telemetry import DEFAULT_TTL_DAYS, TELEMETRY_TABLES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    max_in_flight: int = Field(
        default=4096,
        gt=0,
        description="jobs one provider worker runs at once (each model's max_concurrency "
        "caps its calls within them)",
    )
    read_ahead_mb: float = Field(default=64, gt=0, description="fetched jobs held for fair "
        "share beyond those running; fetching pauses while it is full")  # fmt: skip


class Limits(_Strict):
    """Limits the broker does not enforce itself."""

    max_message_bytes: int = Field(default=1_000_000, gt=0)


class SecuritySettings(_Strict):
    """How producers prove their tenant (see docs/signing.md)."""

    signature_window_s: float = Field(
        default=300,
        gt=0,
        description="a signature's timestamp may differ from the router's clock by at most this, "
        "either way; older copies are refused as replays",
    )
    broker_authenticates: bool = Field(
        default=False,
        description="the Kafka cluster authenticates every client (SASL) and its ACLs decide "
        "who may write the requests topic; required by auth: principal",
    )


class MetricsSettings(_Strict):
    """Each worker's Prometheus endpoint (``GET /metrics``, ``streams.observe.endpoint``).

    Off, a worker neither serves nor counts anything (the hot path skips every metric call).
    """

    enabled: bool = True
    host: str = Field(default="127.0.0.1", description="bound to loopback unless widened")
    port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="0 = a free port, written to the state dir; SWITCHYARD_METRICS_PORT "
        "overrides it per process",
    )


class TracingSettings(_Strict):
    """OpenTelemetry traces: exported over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

    service_name: str = Field(default="switchyard", description="prefix of each worker's name")
    sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="share of jobs traced; a producer's sampled traceparent decides for its job",
    )


class TelemetrySettings(_Strict):
    """How long ClickHouse keeps telemetry: a TTL per table, in days (0 = forever), applied
    by the telemetry worker's migrate step at start (``sinks.ttl``)."""

    ttl_days: dict[str, int] = Field(
        default_factory=dict,
        description="table -> days (0 = forever); tables not named keep their default: "
        + ", ".join(f"{t} {d}" for t, d in DEFAULT_TTL_DAYS.items()),
    )

    @field_validator("ttl_days")
    @classmethod
    def _known_tables(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(TELEMETRY_TABLES))
        if unknown:
            raise ValueError(
                f"unknown telemetry tables {', '.join(unknown)} "
                f"(known: {', '.join(TELEMETRY_TABLES)})"
            )
        negative = sorted(t for t, days in value.items() if days < 0)
        if negative:
            raise ValueError(f"ttl_days must be 0 (forever) or more: {', '.join(negative)}")
        return value

    def effective_ttl_days(self) -> dict[str, int]:
        """Every table's TTL: the configured days over the defaults."""
        return {**DEFAULT_TTL_DAYS, **self.ttl_days}


class ObservabilitySettings(_Strict):
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)


__all__ = [
    "BreakerPolicy",
    "DispatchSettings",
    "Limits",
    "MetricsSettings",
    "ObservabilitySettings",
    "RetryPolicy",
    "SecuritySettings",
    "TelemetrySettings",
    "TracingSettings",
]
