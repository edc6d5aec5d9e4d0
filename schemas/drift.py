"""Drift detection's contract: what one telemetry window sums to, and what moved.

``switchyard drift`` reads two windows (a baseline and a recent one) as
aggregates only (``WindowStats``: counts and sums, never rows), and
``processors.drift`` compares them into a ``DriftReport``: one ``Comparison``
per metric and scope, each with its test, raw and Holm-adjusted p-value and
effect, so a reader sees what moved, by how much, and how sure the check is.
"""

from datetime import datetime
from math import sqrt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Metric = Literal[
    "model_mix",  # share of a task's answered requests per model
    "cost_per_request",  # mean cost of a task's answered requests
    "failure_rate",  # share of a task's requests not answered (error, expired, rejected)
    "fallback_rate",  # share of a task's answered requests that took more than one call
    "provider_error_rate",  # share of a provider's calls (attempts) that did not succeed
    "predicted_quality",  # mean predicted quality of a task's learned-routed requests
    "feedback",  # mean feedback value of a task's judged requests, per feedback kind
]
TestName = Literal["chi-square", "welch-t", "fisher-exact"]


class Moments(BaseModel):
    """Count, sum and sum of squares of one value: enough for a mean and a variance."""

    model_config = ConfigDict(frozen=True)

    n: int = Field(default=0, ge=0)
    total: float = 0.0
    total_sq: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def std(self) -> float:
        """The sample standard deviation (0 below two values; never negative from rounding)."""
        if self.n < 2:
            return 0.0
        return sqrt(max(0.0, (self.total_sq - self.n * self.mean**2) / (self.n - 1)))

    def is_binary(self) -> bool:
        """True if every value is 0 or 1 (for values in [0, 1], v*v == v only then)."""
        return self.n > 0 and abs(self.total_sq - self.total) < 1e-9 * max(1.0, self.total)

    def __add__(self, other: "Moments") -> "Moments":
        return Moments(
            n=self.n + other.n,
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
        )


class TaskWindow(BaseModel):
    """One task's requests in one window."""

    requests: int = Field(default=0, ge=0)  # every request, answered or not
    failed: int = Field(default=0, ge=0)  # status other than ok
    answered_by: dict[str, int] = Field(default_factory=dict)  # model -> answered requests
    fell_back: int = Field(default=0, ge=0)  # answered after more than one call (no escalation)
    cost: Moments = Moments()  # cost_usd of answered requests
    log_cost: Moments = Moments()  # log1p(cost_usd * 1e6) of the same: what is tested
    predicted_quality: Moments = Moments()  # answered requests with a prediction
    feedback: dict[str, Moments] = Field(default_factory=dict)  # kind -> values

    @property
    def answered(self) -> int:
        return sum(self.answered_by.values())


class ProviderWindow(BaseModel):
    """One provider's calls in one window."""

    attempts: int = Field(default=0, ge=0)
    errors: int = Field(default=0, ge=0)  # outcome other than ok


class WindowStats(BaseModel):
    """Everything drift detection reads of one window."""

    start: datetime
    end: datetime  # exclusive
    tasks: dict[str, TaskWindow] = Field(default_factory=dict)
    providers: dict[str, ProviderWindow] = Field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.tasks.values())


# Why these minima: below about 30 values per window neither the normal approximations
# (Welch's t, the z-test) nor a share is worth a verdict; a move smaller than these
# effects is not worth a page at any volume (with 10^6 requests, a 0.3-point move in a
# model's share is "significant" and meaningless).
DEFAULT_MIN_EFFECT: dict[Metric, float] = {
    "model_mix": 0.05,  # total variation distance: 5% of the task's traffic changed model
    "cost_per_request": 0.10,  # relative: the mean moved by 10%
    "failure_rate": 0.02,  # absolute: 2 percentage points
    "fallback_rate": 0.02,
    "provider_error_rate": 0.02,
    "predicted_quality": 0.02,  # absolute, on the 0-1 scale
    "feedback": 0.05,  # absolute, on the 0-1 scale
}


class DriftSettings(BaseModel):
    """How strict the check is: the family-wise error rate, minimum counts and effects."""

    model_config = ConfigDict(frozen=True)

    # 0.01: a check that runs from cron and pages someone; with Holm's correction this
    # bounds the chance that a run with no real shift flags anything at all to 1%.
    alpha: float = Field(default=0.01, gt=0, lt=1)
    min_count: int = Field(default=30, ge=2)  # values per window a comparison needs
    min_effect: dict[Metric, float] = Field(default_factory=lambda: dict(DEFAULT_MIN_EFFECT))


class Comparison(BaseModel):
    """One metric in one scope, baseline against recent."""

    metric: Metric
    scope: str  # "task=chat", "provider=sim", "task=chat kind=thumbs"
    test: TestName | None = None  # None: not tested (see ``skipped``)
    baseline: float | None = None  # the metric's value (for model_mix: ``subject``'s share)
    recent: float | None = None
    change: float | None = None  # recent - baseline
    subject: str = ""  # model_mix: the model whose share grew most
    moves: dict[str, float] = Field(default_factory=dict)  # model_mix: model -> share change
    effect: float | None = None  # what is held against the metric's minimum effect
    n_baseline: int = 0
    n_recent: int = 0
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # Holm-Bonferroni over every tested comparison of the run
    significant: bool = False
    skipped: str = ""  # why it was not tested: too little data, one model only


class DriftReport(BaseModel):
    """Every comparison of one run; ``drifted`` if any is significant."""

    baseline_start: datetime
    baseline_end: datetime
    recent_start: datetime
    recent_end: datetime
    baseline_requests: int
    recent_requests: int
    alpha: float
    min_count: int
    correction: Literal["holm"] = "holm"
    comparisons: list[Comparison]

    @property
    def tested(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.p_value is not None]

    @property
    def significant(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.significant]

    @property
    def drifted(self) -> bool:
        return bool(self.significant)
