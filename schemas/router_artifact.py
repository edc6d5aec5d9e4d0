"""The manifest of a trained router: everything but the weight arrays.

A router artifact is ``manifest.json`` (this model) plus ``weights.npz`` (the
IDF vector, one weight row and intercept per learned model), written and read
by ``sinks/router_artifact.py``. ``format_version`` changes whenever a reader
of the old format would misread the new one; readers refuse other versions.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.outcomes import Split

FORMAT_VERSION = 1

DENSE_FEATURES = ("log_chars", "log_words", "log_numbers", "log_lines")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FeaturizerParams(_Frozen):
    """How prompt text becomes a feature vector (see ``processors/learning/featurize.py``).

    ``dense_mean`` and ``dense_std`` standardise the ``DENSE_FEATURES`` and are
    learned at train time, as is the IDF vector stored with the weights.
    """

    dim: int = Field(default=2**18, ge=2**8, le=2**24, description="hashed columns, power of 2")
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    max_chars: int = Field(
        default=8000, gt=0, description="longer prompts are cut: head and tail halves"
    )
    dense_features: tuple[str, ...] = DENSE_FEATURES
    dense_mean: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    dense_std: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    idf_documents: int = Field(default=0, ge=0, description="train prompts the IDF was fit on")

    @field_validator("dim")
    @classmethod
    def _power_of_two(cls, dim: int) -> int:
        if dim & (dim - 1):
            raise ValueError("dim must be a power of 2")
        return dim

    @property
    def width(self) -> int:
        """Columns of a feature vector: the hashed ones, then the dense ones."""
        return self.dim + len(self.dense_features)


class CostModel(_Frozen):
    """Predicted cost of one call: ``intercept_usd + per_char_usd * prompt characters``."""

    intercept_usd: float = Field(ge=0)
    per_char_usd: float = Field(ge=0)
    train_rows: int = Field(ge=0)
    mean_usd: float = Field(ge=0)


class ModelFit(_Frozen):
    """What training made of one model: a learned classifier, or only its prior.

    ``weight_row`` is this model's row in the weight arrays (None for a prior).
    ``c`` is the inverse L2 strength chosen by cross-validated log-loss, with
    that log-loss and the one of the prior alone on the same folds.
    """

    name: str
    kind: Literal["learned", "prior"]
    reason: str = ""
    weight_row: int | None = None
    train_rows: int = Field(ge=0)
    mean_score: float = Field(ge=0, le=1)
    c: float | None = None
    cv_log_loss: float | None = None
    cv_prior_log_loss: float | None = None
    cv_curve: list[tuple[float, float]] = Field(
        default_factory=list, description="(C, mean held-out log-loss) for each C tried"
    )
    converged: bool = True


class FeedbackRefit(_Frozen):
    """One ``router train --from-telemetry`` applied to ``base_version``.

    ``intercept_shifts`` (logits, per learned model) were added to the base's
    intercepts; priors were updated in place (``processors/learning/recalibration.py``).
    """

    base_version: str
    since: datetime = Field(description="judgements of requests finished since then")
    judgements: int = Field(ge=0)
    intercept_shifts: dict[str, float]
    prior_sd: float = Field(gt=0)
    min_rows: int = Field(ge=1)


TIERS: tuple[str, ...] = ("economy", "balanced", "premium")
DEFAULT_TIER_GOALS: dict[str, float] = {"economy": 0.90, "balanced": 0.95, "premium": 0.99}


class CurvePoint(_Frozen):
    """One lambda of the calibration sweep: mean true quality and cost on train rows."""

    lam: float = Field(ge=0)
    quality: float
    cost_usd: float = Field(ge=0)


class TierPoint(_Frozen):
    """A tier's calibrated operating point: the lambda that reached its goal on train.

    ``goal`` is a share of the strongest model's mean train quality (or, with
    ``absolute``, a quality itself); ``target`` is that goal as a quality.
    ``reached`` is False when no lambda got there: lambda 0 (best predicted
    quality) is used and the figures say how far it fell short.
    """

    goal: float = Field(gt=0)
    absolute: bool = False
    target: float
    lam: float = Field(ge=0)
    quality: float
    cost_usd: float = Field(ge=0)
    reached: bool


class Calibration(_Frozen):
    """How tiers and quality targets map to the lambda rule, measured on train only.

    The curve holds, for a sweep of lambdas, the mean true score and cost of the
    lambda choice made with *out-of-fold* predictions (each train row predicted
    by models fit on the other folds), so it says what a setting does on
    prompts the predictor has not seen. It is made monotone (quality never rises
    as lambda grows), so a target maps to the largest lambda still reaching it.
    """

    folds: int = Field(ge=2)
    rows: int = Field(ge=1, description="train rows where every model has an outcome")
    strongest_model: str
    strongest_quality: float
    strongest_cost_usd: float = Field(ge=0)
    curve: list[CurvePoint] = Field(min_length=1, description="by lambda, ascending")
    tiers: dict[str, TierPoint]


class VerifierFit(_Frozen):
    """A learned answer check for one model: P(its answer is good | prompt, answer).

    ``cv_log_loss`` is the held-out log-loss at the chosen ``c``; ``cv_mean_log_loss``
    the one of predicting the model's mean score alone, what the check must beat.
    """

    model: str
    weight_row: int = Field(ge=0)
    train_rows: int = Field(ge=1)
    mean_score: float = Field(ge=0, le=1)
    c: float = Field(gt=0)
    cv_log_loss: float
    cv_mean_log_loss: float
    oof_auc: float | None = Field(description="out-of-fold AUC on train (None: one class)")


class AnswerChecks(_Frozen):
    """The learned answer checks of a router (``processors/learning/verifier.py``).

    One featurizer reads prompt and answer together; the answer features
    (``processors/checks/answer_features.py``) are standardised with the train
    means and standard deviations and appended as the last columns.
    """

    featurizer: FeaturizerParams
    answer_features: tuple[str, ...]
    answer_mean: tuple[float, ...]
    answer_std: tuple[float, ...]
    verifiers: list[VerifierFit]
    skipped: dict[str, str] = Field(
        default_factory=dict, description="model -> why it has no learned check"
    )

    def fit_for(self, model: str) -> VerifierFit | None:
        return next((v for v in self.verifiers if v.model == model), None)


class RouterManifest(_Frozen):
    """A trained router: featurizer, per-model fits, cost models and priors."""

    format_version: int = FORMAT_VERSION
    created_at: datetime
    featurizer: FeaturizerParams
    models: list[ModelFit]
    c_grid: list[float] = Field(description="regularisation values cross-validation may try")
    cv_folds: int
    cost_models: dict[str, CostModel]
    reference_model: str = Field(description="strongest model: highest mean train score")
    reference_cost_usd: float = Field(gt=0, description="its mean train cost: lambda's unit")
    row_counts: dict[str, dict[Split, int]] = Field(description="file -> split -> rows")
    priors: dict[str, dict[str, float]] = Field(description="model -> task -> prior quality")
    prior_pseudo_rows: float = Field(ge=0)
    priors_from: str
    calibration: Calibration | None = Field(
        default=None, description="tiers and targets to lambdas; None in routers before it"
    )
    checks: AnswerChecks | None = Field(
        default=None, description="learned answer checks; None when the data had no responses"
    )
    checks_note: str = Field(default="", description="why there are no (or few) learned checks")
    cascade: Calibration | None = Field(
        default=None, description="tiers to lambdas for the cascade with learned checks"
    )
    feedback: list[FeedbackRefit] = Field(
        default_factory=list, description="refits from production feedback, oldest first"
    )
    version: str = Field(default="", description="set on save: creation time + weights digest")
    weights_sha256: str = Field(default="", description="set on save: sha256 of weights.npz")

    def fit_for(self, model: str) -> ModelFit | None:
        return next((fit for fit in self.models if fit.name == model), None)
