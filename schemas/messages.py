"""The request a backend publishes and the reply it reads back."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.plan import PlanStep, RoutePlan

Quality = Literal["economy", "balanced", "premium"]
DataClass = Literal["public", "internal", "confidential", "restricted"]
# interactive jobs overtake queued batch jobs at every stage (see README "Fair share").
Priority = Literal["interactive", "batch"]
ReplyStatus = Literal["ok", "error", "rejected", "expired"]
AttemptOutcome = Literal[
    "ok", "error", "timeout", "rate_limited", "unavailable", "circuit_open", "throttled", "rejected"
]

# Topic names as Kafka allows them; ids are what a producer can safely use as a key.
TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"
ID_PATTERN = r"^[A-Za-z0-9._:@/-]{1,128}$"


def _require_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError("must carry a timezone (UTC), e.g. 2026-01-01T12:00:00Z")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


class ChatMessage(BaseModel):
    """One message in OpenAI chat format; unknown fields (tool calls...) pass through."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, with multi-part content joined (images are skipped)."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class InferenceRequest(BaseModel):
    """An inference job: OpenAI chat body, who is asking, and routing hints.

    ``request_id`` is the idempotency key: the producer chooses it and a replay
    of the same id is the same job.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    request_id: str = Field(pattern=ID_PATTERN)
    tenant: str = Field(pattern=ID_PATTERN)
    team: str | None = None
    user: str | None = None
    app: str | None = None

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None

    # Routing hints: all optional, the tenant's and router's defaults fill the gaps.
    task: str | None = Field(default=None, pattern=r"^[a-z_]{1,32}$")
    quality: Quality | None = None
    quality_target: float | None = Field(
        default=None, ge=0, le=1, description="explicit quality to reach; overrides the tier"
    )
    max_latency_ms: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    allowed_regions: list[str] | None = None
    allowed_providers: list[str] | None = None
    model: str | None = None
    data_classification: DataClass | None = None
    priority: Priority | None = Field(default=None, description="none = the tenant's default")

    reply_to: str | None = Field(default=None, pattern=TOPIC_PATTERN)
    deadline: UtcDatetime | None = None
    submitted_at: UtcDatetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    def prompt_chars(self) -> int:
        return sum(len(m.text()) for m in self.messages)


class Usage(BaseModel):
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


class ErrorInfo(BaseModel):
    """What went wrong, with a stable code (see schemas/errors.py for the tree)."""

    code: str
    message: str
    retryable: bool = False
    retry_after_s: float | None = Field(default=None, ge=0)  # when a retry can succeed


class Attempt(BaseModel):
    """One call to one provider endpoint, or one skipped because its circuit was open.

    ``rejected``: the model answered but a cascade's check refused the answer,
    so the job escalated; its ``cost_usd`` is still spent.

    ``round`` counts passes over the fallback chain: a job that found every model
    failing waits on a retry topic and comes back for the next round.
    """

    model: str
    provider: str
    outcome: AttemptOutcome
    latency_ms: float = Field(ge=0)
    error: ErrorInfo | None = None
    round: int = Field(default=0, ge=0)
    retry_after_s: float | None = Field(default=None, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    tokens: int = Field(default=0, ge=0)  # input plus output the call consumed


class Timings(BaseModel):
    """Milliseconds spent per phase; ``queued`` is from submission to routing start."""

    queued_ms: float = 0.0
    routing_ms: float = 0.0
    provider_ms: float = 0.0
    total_ms: float = 0.0


class RoutingExplanation(BaseModel):
    """Why this model: compact enough to ride on every reply."""

    strategy: str
    task: str
    task_source: Literal["hint", "classifier", "default"]
    quality: Quality
    chosen: str | None
    reason: str
    fallbacks: list[str] = Field(default_factory=list)
    rejected: dict[str, str] = Field(default_factory=dict)
    plan: RoutePlan | None = None


class InferenceReply(BaseModel):
    """What the producer reads back on its ``reply_to`` topic, once per request_id."""

    schema_version: Literal[1] = 1
    request_id: str
    tenant: str
    status: ReplyStatus
    message: ChatMessage | None = None
    usage: Usage | None = None
    cost_usd: float = 0.0
    model: str | None = None
    provider: str | None = None
    region: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    timings: Timings = Field(default_factory=Timings)
    routing: RoutingExplanation | None = None
    steps: list[PlanStep] = Field(default_factory=list)
    error: ErrorInfo | None = None
    finished_at: datetime
