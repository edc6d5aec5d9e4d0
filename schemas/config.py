"""The one configuration model: models, tenants, routing defaults, limits.

Loaded from YAML by ``schemas.config_file.load_config``; secrets never live in
the file, only the *names* of environment variables that hold them.
"""

import hashlib
from functools import cached_property
from typing import Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    SerializationInfo,
    field_serializer,
    model_validator,
)

from schemas.live_config import VERSION_CHARS
from schemas.messages import ID_PATTERN, TOPIC_PATTERN, DataClass, Priority, Quality
from schemas.plan import AnswerCheck
from schemas.rate_limits import TenantRateLimits
from schemas.redaction import RedactionSettings
from schemas.runtime_settings import (
    DispatchSettings,
    Limits,
    ObservabilitySettings,
    SecuritySettings,
)
from schemas.scoped_budgets import ScopedBudgets
from schemas.simulator import SimulatorSettings


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
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="the provider's own limit for this endpoint, paced "
        "across all provider workers together; none = learned from its 429s only",
    )  # fmt: skip
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


StrategyName = Literal["rules", "cheapest-capable", "learned", "cascade"]
TASK_PATTERN = r"^([a-z_]{1,32}|\*)$"


class CacheSettings(_Strict):
    """Exact-match response cache: opt-in per tenant."""

    enabled: bool = False
    ttl_s: float = Field(default=3600, gt=0, description="how long a cached answer serves")


AuthMode = Literal["none", "signed", "principal"]
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
REVEAL_SECRETS = "reveal_secrets"  # model_dump(context={REVEAL_SECRETS: True}) keeps demo secrets


class TenantKey(_Strict):
    """One signing key of a tenant: its id (sent in ``sy-key-id``) and where its secret is.

    Rotation: add the new key, move the producers to it, then remove the old one.
    """

    id: str = Field(pattern=ID_PATTERN)
    secret_env: str = Field(
        pattern=ENV_NAME_PATTERN, description="NAME of the environment variable with the secret"
    )
    demo_secret: SecretStr | None = Field(
        default=None,
        description="used only while secret_env is unset; for local demos and tests, never for "
        "production (anyone who can read the file can sign as the tenant)",
    )

    @field_serializer("demo_secret", when_used="json")
    def _masked(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        if value is None:
            return None
        context = info.context or {}
        return value.get_secret_value() if context.get(REVEAL_SECRETS) else str(value)


class TenantSpec(_Strict):
    """A tenant's budget, the providers and regions it may use, and how it is routed."""

    auth: AuthMode = Field(
        default="none",
        description="none: jobs accepted unsigned; signed: every job must carry a valid "
        "signature by one of keys; principal: the broker authenticates producers "
        "(needs security.broker_authenticates)",
    )
    keys: list[TenantKey] = Field(default_factory=list, description="signing keys, newest last")
    budget_usd: float | None = Field(default=None, ge=0, description="per period; none = no cap")
    budget_period: Literal["day", "month", "total"] = "month"
    budget_alert_at: float | None = Field(
        default=None, gt=0, le=1, description="share of budget_usd whose crossing raises a "
        "budget_alert, as a team or app budget's alert_at does",
    )  # fmt: skip
    allowed_providers: list[str] | None = None
    allowed_regions: list[str] | None = None
    default_quality: Quality | None = None
    priority: Priority = Field(default="batch", description="of a job that names none")
    share: float = Field(default=1, gt=0, description="weight of its fair share of model slots")
    strategy: StrategyName | None = Field(default=None, description="none = routing.strategy")
    strategy_by_task: dict[str, StrategyName] = Field(default_factory=dict)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    pre_step_topic: str | None = Field(
        default=None,
        pattern=TOPIC_PATTERN,
        description="a service of yours reads jobs here and publishes them to the prepared topic",
    )
    reply_topics: list[str] = Field(
        default_factory=lambda: ["{namespace}.replies.{tenant}"],
        description="fnmatch patterns of the topics a job may name as reply_to, beside the "
        "shared replies topic; {namespace} and {tenant} are filled in; internal topics and "
        "topics that do not exist are refused whatever the patterns say",
    )
    rate_limits: TenantRateLimits = Field(default_factory=TenantRateLimits)
    budgets: ScopedBudgets = Field(
        default_factory=ScopedBudgets, description="per team and app, beside budget_usd"
    )
    content_logging: Literal["off", "redacted", "full"] = Field(
        default="off",
        description="prompt and completion text in telemetry: none, with secrets and "
        "personal data replaced by placeholders (`redaction`), or whole",
    )
    dead_letter_payload: Literal["hash", "redacted", "full"] = Field(
        default="hash",
        description="what a dead letter keeps of a job: its size and SHA-256; its text with "
        "secrets and personal data replaced by placeholders (`redaction`); or its text "
        "(which `switchyard dlq replay` needs)",
    )

    @model_validator(mode="after")
    def _keys_fit_auth(self) -> "TenantSpec":
        ids = [k.id for k in self.keys]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique within a tenant")
        if self.auth == "signed" and not self.keys:
            raise ValueError("auth: signed needs at least one key")
        return self


class LearnedSettings(_Strict):
    """The ``learned`` strategy: a quality model trained by ``switchyard router train``."""

    artifact: str | None = Field(default=None, description="router directory; none = priors only")
    aliases: dict[str, str] = Field(
        default_factory=dict, description="catalogue model name -> model name in the artifact"
    )
    reload_s: float = Field(
        default=30.0,
        ge=0,
        description="routers check the directory's CURRENT this often and load a new version "
        "(0 = only at start)",
    )


class CascadeSettings(_Strict):
    """The ``cascade`` strategy: cheapest first, escalate when the answer fails ``check``."""

    max_rungs: int = Field(default=2, ge=2, description="models tried at most, cheapest first")
    check: AnswerCheck = Field(default_factory=AnswerCheck)


class ShadowSettings(_Strict):
    """Shadow routing: also send a share of traffic to the runner-up, recording its answer."""

    share: float = Field(default=0.0, ge=0, le=1)
    unsure_margin: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="only shadow requests whose predicted quality is within this of the target "
        "(none = any request)",
    )


class LatencySettings(_Strict):
    """Latency learned from the workers' own results (EWMA and p95 per model)."""

    min_samples: int = Field(
        default=20, ge=1, description="before this many calls, typical_latency_ms is used"
    )
    window: int = Field(default=200, ge=10, description="recent calls the p95 is taken over")
    ewma_alpha: float = Field(default=0.1, gt=0, le=1)
    max_error_rate: float = Field(
        default=0.5, gt=0, le=1, description="models failing more often are only fallbacks"
    )
    error_memory_s: float = Field(
        default=10, gt=0, description="an error rate with no call since is forgotten"
    )
    probe_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="share of a failing model's jobs still sent to it first, so its "
        "circuit can probe it and close as soon as it recovers",
    )


class RoutingDefaults(_Strict):
    """How the router fills in what a request leaves out."""

    strategy: StrategyName = "cheapest-capable"
    strategy_by_task: dict[str, StrategyName] = Field(default_factory=dict)
    rules: dict[str, dict[Quality, list[str]]] = Field(
        default_factory=dict,
        description="rules strategy: task ('*' = any) -> tier -> models in preference order",
    )
    learned: LearnedSettings = Field(default_factory=LearnedSettings)
    cascade: CascadeSettings = Field(default_factory=CascadeSettings)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    quality: Quality = "balanced"
    default_task: str = "chat"
    data_classification: DataClass = "internal"
    quality_floor: dict[Quality, float] = Field(default_factory=_default_quality_floor)
    max_fallbacks: int = Field(default=2, ge=0)
    default_max_tokens: int = Field(default=512, gt=0)


class SwitchyardConfig(_Strict):
    models: list[ModelSpec] = Field(min_length=1)
    tenants: dict[str, TenantSpec] = Field(min_length=1)
    routing: RoutingDefaults = Field(default_factory=RoutingDefaults)
    limits: Limits = Field(default_factory=Limits)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    simulator: SimulatorSettings | None = None

    @model_validator(mode="after")
    def _auth_possible(self) -> "SwitchyardConfig":
        principal = [t for t, spec in self.tenants.items() if spec.auth == "principal"]
        if principal and not self.security.broker_authenticates:
            raise ValueError(
                f"auth: principal (tenants {', '.join(principal)}) needs a broker that "
                "authenticates producers: set security.broker_authenticates once it does"
            )
        if self.security.signature_window_s > self.dispatch.dedup_window_s:
            # A replay inside the window must still find the first answer in the ledger.
            raise ValueError("security.signature_window_s must not exceed dispatch.dedup_window_s")
        return self

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
        for task, tiers in self.routing.rules.items():
            for tier, models in tiers.items():
                unknown = [n for n in models if n not in names]
                if unknown:
                    raise ValueError(f"rules {task}/{tier}: unknown models {', '.join(unknown)}")
        unknown = [n for n in self.routing.learned.aliases if n not in names]
        if unknown:
            raise ValueError(f"learned.aliases: unknown models {', '.join(unknown)}")
        return self

    def data_class_for(self, requested: DataClass | None) -> DataClass:
        """The request's data class, or the configured default when it names none."""
        return requested or self.routing.data_classification

    def strategy_for(self, tenant: str, task: str) -> StrategyName:
        """Tenant-and-task, then tenant, then task, then the default."""
        spec = self.tenants.get(tenant)
        if spec is not None:
            chosen = spec.strategy_by_task.get(task) or spec.strategy
            if chosen is not None:
                return chosen
        return self.routing.strategy_by_task.get(task, self.routing.strategy)

    def model(self, name: str) -> ModelSpec | None:
        models, by_name = self._models_by_name
        if models is not self.models:  # a model_copy(update=...) carried the cache over
            del self.__dict__["_models_by_name"]
            models, by_name = self._models_by_name
        return by_name.get(name)

    def share(self, tenant: str) -> float:
        """The tenant's fair-share weight (1 for one the config does not name)."""
        spec = self.tenants.get(tenant)
        return spec.share if spec is not None else 1.0

    @cached_property
    def _models_by_name(self) -> tuple[list[ModelSpec], dict[str, ModelSpec]]:
        # Looked up for every call a provider worker makes: a scan showed in its profile.
        return self.models, {m.name: m for m in self.models}

    @property
    def version(self) -> str:
        """A digest of the whole config: the version every request row names, and
        ``switchyard config apply`` publishes (``schemas.live_config``)."""
        parts, digest = self._version
        if any(a is not b for a, b in zip(parts, self._parts(), strict=True)):
            del self.__dict__["_version"]  # a model_copy(update=...) carried the cache over
            parts, digest = self._version
        return digest

    def _parts(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in type(self).model_fields)

    @cached_property
    def _version(self) -> tuple[tuple[object, ...], str]:
        # The first 16 hex digits of SHA-256 over the canonical JSON, secrets revealed.
        data = self.model_dump(mode="json", context={REVEAL_SECRETS: True})
        canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        return self._parts(), hashlib.sha256(canonical).hexdigest()[:VERSION_CHARS]
