"""Refitting a trained router from production feedback (``router train --from-telemetry``).

Telemetry holds no prompt text (by design), so feedback cannot retrain a
router's text features. What it can correct is where production disagrees
with the router on average, per model and task:

- **Learned models: an intercept shift.** The router logged the quality it
  predicted for the model that answered; with ``b`` added to every logit,
  ``P' = sigmoid(logit(P) + b)``. ``b`` minimises the log-loss of those logged
  predictions against the feedback, under a normal prior ``N(0, prior_sd^2)``
  so that a few judgements move it little. Only judgements of requests routed
  by the base version itself count: a prediction of another version says
  nothing about this one's bias.
- **Per-task priors** (what a model without a classifier predicts): each is
  updated as if the judgements were more training rows:
  ``(prior * pseudo_rows + sum of values) / (pseudo_rows + n)``.
- **Models the router has never seen** (a model added to the catalogue after
  training) become prior-only models once they have ``min_rows`` judgements:
  their mean feedback per task, shrunk toward their overall mean; their cost
  line is flat at their mean observed cost.

Feedback is about the model that answered, which the router chose, so these
are estimates on the traffic it routed there (selection bias included); shadow
calls are the way to see the other models on the same traffic.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from processors.learning.quality_model import RouterArrays
from schemas.errors import UsageError
from schemas.router_artifact import CostModel, FeedbackRefit, ModelFit, RouterManifest

_EPS = 1e-4


@dataclass(frozen=True)
class Judgement:
    """One request's feedback with the decision it judges (artifact model names).

    ``value`` in [0, 1] is the mean of the request's feedback values.
    ``predicted`` is the quality the router predicted for ``model``, or None
    if it predicted none or another router version did.
    """

    model: str
    task: str
    value: float
    predicted: float | None
    cost_usd: float


@dataclass(frozen=True)
class RefitSettings:
    min_rows: int = 30  # judgements before a shift or a new model is fitted
    prior_sd: float = 1.0  # of the intercept shift, in logits
    max_iter: int = 50


@dataclass(frozen=True)
class ModelRefit:
    """What the feedback did to one model: for the command's report."""

    model: str
    judgements: int
    mean_value: float
    calibrated_rows: int = 0
    shift: float = 0.0
    mean_predicted_before: float | None = None
    mean_predicted_after: float | None = None
    action: str = ""


@dataclass(frozen=True)
class Refit:
    manifest: RouterManifest
    arrays: RouterArrays
    models: list[ModelRefit] = field(default_factory=list)


def intercept_shift(
    predicted: Sequence[float], values: Sequence[float], prior_sd: float, max_iter: int = 50
) -> float:
    """The MAP shift ``b`` of ``sigmoid(logit(p) + b)`` against soft labels ``values``."""
    if len(predicted) != len(values):
        raise UsageError("predicted and values differ in length")
    if not predicted:
        return 0.0
    p = np.clip(np.asarray(predicted, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(values, dtype=np.float64)
    z = np.log(p / (1 - p))
    precision = 1.0 / (prior_sd * prior_sd)
    b = 0.0
    for _ in range(max_iter):
        q = 1.0 / (1.0 + np.exp(-(z + b)))
        gradient = float((q - y).sum()) + precision * b
        hessian = float((q * (1 - q)).sum()) + precision
        step = gradient / hessian
        b -= step
        if abs(step) < 1e-10:
            break
    return b


def refit_from_feedback(
    manifest: RouterManifest,
    arrays: RouterArrays,
    judgements: Iterable[Judgement],
    now: datetime,
    since: datetime,
    settings: RefitSettings = RefitSettings(),
) -> Refit:
    """A new router: ``manifest``/``arrays`` corrected by ``judgements``.

    Raises UsageError if there are no judgements or one's value is outside [0, 1].
    """
    by_model = _by_model(judgements)
    draft = _Draft.of(manifest, arrays)
    report = [
        _refit_model(draft, manifest, model, by_model[model], settings)
        for model in sorted(by_model)
    ]
    refit = FeedbackRefit(
        base_version=manifest.version,
        since=since,
        judgements=sum(len(rows) for rows in by_model.values()),
        intercept_shifts=draft.shifts,
        prior_sd=settings.prior_sd,
        min_rows=settings.min_rows,
    )
    new_manifest = manifest.model_copy(
        update={
            "created_at": now,
            "models": draft.fits,
            "priors": draft.priors,
            "cost_models": draft.cost_models,
            "feedback": [*manifest.feedback, refit],
            "version": "",
            "weights_sha256": "",
        }
    )
    new_arrays = replace(arrays, intercept=draft.intercept)
    return Refit(new_manifest, new_arrays, report)


@dataclass
class _Draft:
    """The refitted router while it is being built: copies of the base's parts."""

    intercept: npt.NDArray[np.float64]
    fits: list[ModelFit]
    priors: dict[str, dict[str, float]]
    cost_models: dict[str, CostModel]
    shifts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: RouterManifest, arrays: RouterArrays) -> "_Draft":
        return cls(
            intercept=arrays.intercept.astype(np.float64).copy(),
            fits=list(manifest.models),
            priors={model: dict(tasks) for model, tasks in manifest.priors.items()},
            cost_models=dict(manifest.cost_models),
        )


def _by_model(judgements: Iterable[Judgement]) -> dict[str, list[Judgement]]:
    by_model: dict[str, list[Judgement]] = defaultdict(list)
    for judgement in judgements:
        if not 0 <= judgement.value <= 1:
            raise UsageError(f"feedback value {judgement.value} is outside [0, 1]")
        by_model[judgement.model].append(judgement)
    if not by_model:
        raise UsageError("no feedback to refit from")
    return by_model


def _refit_model(
    draft: _Draft,
    manifest: RouterManifest,
    model: str,
    mine: list[Judgement],
    settings: RefitSettings,
) -> ModelRefit:
    """Apply one model's judgements to ``draft``; say what they did."""
    seen = ModelRefit(model, len(mine), sum(j.value for j in mine) / len(mine))
    pseudo = manifest.prior_pseudo_rows
    fit = manifest.fit_for(model)
    if fit is None:
        return _add_model(draft, seen, mine, settings, pseudo)
    draft.priors[model] = _updated_priors(draft.priors.get(model, {}), fit.mean_score, mine, pseudo)
    calibrated = [(j.predicted, j.value) for j in mine if j.predicted is not None]
    seen = replace(seen, calibrated_rows=len(calibrated), action="priors updated")
    if fit.kind != "learned" or fit.weight_row is None:
        return seen
    if len(calibrated) < settings.min_rows:
        return replace(seen, action="priors updated; too few predicted rows to shift")
    return _shift_intercept(draft, seen, fit.weight_row, calibrated, settings)


def _add_model(
    draft: _Draft,
    seen: ModelRefit,
    mine: list[Judgement],
    settings: RefitSettings,
    pseudo: float,
) -> ModelRefit:
    """A model the router has never seen, as a prior-only model (with enough rows)."""
    if len(mine) < settings.min_rows:
        return replace(seen, action="unknown model, too few rows")
    draft.fits.append(
        ModelFit(
            name=seen.model,
            kind="prior",
            reason="added from feedback",
            train_rows=0,
            mean_score=seen.mean_value,
        )
    )
    draft.priors[seen.model] = _updated_priors({}, seen.mean_value, mine, pseudo)
    mean_cost = sum(j.cost_usd for j in mine) / len(mine)
    draft.cost_models[seen.model] = CostModel(
        intercept_usd=mean_cost, per_char_usd=0.0, train_rows=0, mean_usd=mean_cost
    )
    return replace(seen, action="added (prior only)")


def _shift_intercept(
    draft: _Draft,
    seen: ModelRefit,
    weight_row: int,
    calibrated: list[tuple[float, float]],
    settings: RefitSettings,
) -> ModelRefit:
    """Shift a learned model's intercept so its logged predictions match the feedback."""
    predicted = [p for p, _ in calibrated]
    shift = intercept_shift(
        predicted, [v for _, v in calibrated], settings.prior_sd, settings.max_iter
    )
    draft.intercept[weight_row] += shift
    draft.shifts[seen.model] = shift
    return replace(
        seen,
        shift=shift,
        mean_predicted_before=sum(predicted) / len(predicted),
        mean_predicted_after=sum(_shifted(p, shift) for p in predicted) / len(predicted),
        action="intercept shifted, priors updated",
    )


def _updated_priors(
    priors: Mapping[str, float], overall: float, rows: Sequence[Judgement], pseudo: float
) -> dict[str, float]:
    """Each task's prior (``overall`` if it has none) with that task's judgements added as rows."""
    updated = dict(priors)
    for task, values in _values_by_task(rows).items():
        before = priors.get(task, overall)
        updated[task] = (before * pseudo + sum(values)) / (pseudo + len(values))
    return updated


def _values_by_task(rows: Sequence[Judgement]) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        grouped[row.task].append(row.value)
    return grouped


def _shifted(p: float, shift: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + shift)))
