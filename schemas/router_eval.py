"""What ``switchyard router eval`` reports: a router's cost-quality figures and baselines.

Costs are mean true USD per prompt and qualities mean true scores, over the test
prompts where every evaluated model has an outcome. A *frontier* is the upper,
non-decreasing, concave envelope of (cost, quality) points (RouterBench's
convex hull), extended flat to the right; AIQ is its mean height between the
cheapest and the strongest model's cost.
"""

from typing import Literal

from pydantic import BaseModel, Field

Pair = tuple[float, float]


class Figures(BaseModel):
    """One router or baseline; a figure that means nothing for it is None."""

    cost_usd: float | None = Field(default=None, description="its one point (point baselines)")
    quality: float | None = None
    aiq: float | None = None
    cost_at_95pct_strongest: float | None = None
    quality_at_strongest_cost: float | None = None
    frontier: list[Pair] = Field(default_factory=list, description="(cost, quality) vertices")


class SingleModel(BaseModel):
    model: str
    cost_usd: float
    quality: float


class HullCheck(BaseModel):
    """Router frontier vs zero-router hull at a fraction of the strongest model's cost."""

    fraction: float
    cost_usd: float
    router: float | None
    zero_router: float | None
    margin: float | None


class RouterPoint(BaseModel):
    """One setting of the router: mean true cost and quality, share of the strongest."""

    setting: Literal["lambda", "target"]
    value: float
    cost_usd: float
    quality: float
    strongest_share: float


class Interval(BaseModel):
    """A bootstrap 95% interval (2.5th and 97.5th percentiles over resampled prompts)."""

    low: float
    high: float


class CalibratedResult(BaseModel):
    """What a setting chosen on train (a tier's calibrated point) did on the test prompts.

    Shares are of the mean quality and mean cost, on the same prompts, of the model
    the goals were set against: the strongest on train (``reference``).
    ``within_2_points`` is None for an absolute goal.
    """

    name: str = Field(description="tier, or the cascade's tier")
    reference: str = Field(default="", description="the model whose quality shares are of")
    goal: float
    absolute: bool
    setting: float = Field(description="lambda, or a cascade's escalation threshold")
    reached_on_train: bool
    train_quality_share: float
    train_cost_share: float
    cost_usd: float
    quality: float
    quality_share: float
    quality_share_ci: Interval
    cost_share: float
    cost_share_ci: Interval
    zero_router_quality: float | None = Field(description="zero-router hull at its cost")
    within_2_points: bool | None


class CascadeReport(BaseModel):
    """The cascade with learned checks on the test prompts: its frontier over a sweep of
    lambdas and each tier's calibrated point. Cost counts every model called."""

    frontier: list[Pair]
    aiq: float
    cost_at_95pct_ratio: float | None
    quality_at_strongest_cost: float | None
    hull_check: list[HullCheck]
    settings_20_80: int
    settings_below_zero_router_20_80: int
    calibrated: list[CalibratedResult]
    escalated_share: dict[str, float] = Field(description="tier -> share of prompts escalated")
    straight_share: dict[str, float] = Field(
        description="tier -> share sent to the strongest model straight away"
    )
    check_auc: dict[str, float | None] = Field(description="model -> its check's test AUC")


class EvalReport(BaseModel):
    n: int = Field(description="test prompts evaluated")
    dropped: int = Field(description="test prompts left out: some model had no outcome")
    models: list[str]
    unknown_models: list[str] = Field(description="in the data, unknown to the router: left out")
    strongest_model: str
    cheapest_model: str
    aiq: float
    random_aiq: float
    zero_router_aiq: float
    oracle_aiq: float
    cost_at_95pct_strongest: float | None
    cost_at_95pct_ratio: float | None = Field(description="cost_at_95pct_strongest / strongest")
    strongest_cost: float
    strongest_quality: float
    quality_at_strongest_cost: float
    oracle_quality: float
    oracle_cost: float
    cheapest_cost: float
    cheapest_quality: float
    hull_check: list[HullCheck]
    above_zero_router_20_80: bool
    cpt_50: float | None = Field(description="two models: strong share to recover 50% of gap")
    cpt_80: float | None
    random_cpt_50: float | None
    random_cpt_80: float | None
    calibrated: list[CalibratedResult] = Field(
        default_factory=list, description="each tier's point chosen on train, on test"
    )
    settings_20_80: int = Field(default=0, description="swept lambdas at 20-80% of its cost")
    settings_below_zero_router_20_80: int = Field(
        default=0, description="of those, below the zero-router hull at their cost"
    )
    cascade: CascadeReport | None = Field(
        default=None, description="the cascade with learned checks (routers trained on answers)"
    )
    single_models: list[SingleModel]
    router: Figures
    baselines: dict[str, Figures]
    points: list[RouterPoint] = Field(default_factory=list, exclude=True)


class CrossvalTier(BaseModel):
    """One tier's calibrated point over repeated random splits: per split, the test quality
    and cost shares of the setting calibrated on that split's train rows."""

    name: str = Field(description='tier, or "cascade " and the cascade\'s tier')
    goal: float
    absolute: bool
    quality_share: list[float] = Field(description="per split, in split order")
    cost_share: list[float]
    quality_share_mean: float
    quality_share_sd: float
    cost_share_mean: float
    cost_share_sd: float
    within_2_points: int = Field(description="splits landing within 2 points of the goal")
    reached_goal: int = Field(description="splits reaching the goal on test")


class CrossvalReport(BaseModel):
    """What ``switchyard router crossval`` reports: train, calibrate and evaluate on
    ``repeats`` random splits of every row (each row's own split ignored)."""

    repeats: int
    test_share: float
    seed: int
    rows: int
    test_rows: list[int] = Field(description="per split")
    tiers: list[CrossvalTier]
    cost_at_95pct_ratio: list[float | None] = Field(
        description="per split, the router's frontier swept on test: cost share at 95%"
    )
    cascade_cost_at_95pct_ratio: list[float | None] = Field(
        description="per split, the same for the cascade (None: no checks)"
    )
