"""The cascade with learned checks: route by the prompt, look again after the answer.

One rule, one lambda per tier, in two steps:

1. Before any call, the lambda rule over the prompt router's predictions picks
   the first model, counting for a model with a check the value of trying it
   first (``first_rungs``). When that is the strongest model the request goes
   there straight away (predicted hard); otherwise it is the first rung.
2. Once the first rung has answered, and if that model has a learned check,
   its predicted quality is replaced by the check's P(good | prompt, answer)
   and its cost by 0 (already paid); the lambda rule runs again. If it now
   prefers another model, that model answers and its answer is returned; else
   the first rung's answer is.

So a cascade escalates exactly when some other model's predicted quality minus
lambda times its cost beats what the check says of the answer in hand. A check
reads only the first rung's answer: a model already called. Rungs without a
learned check are never escalated from by this rule (the live cascade may
still apply its configured check kind). The lambda of each tier is calibrated
on train exactly like the plain router's (``calibration.calibrate_sweep``), on
out-of-fold predictions of both the prompt router and the checks.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.learning.calibration import calibrate_sweep, train_matrices
from processors.learning.evaluation import lambda_grid
from processors.learning.featurize import FloatArray
from processors.learning.quality_model import choose_for_lambda_batch
from schemas.outcomes import OutcomeRow
from schemas.router_artifact import Calibration, CostModel

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CascadeChoices:
    """Per prompt: the first model called and the second (-1 when none)."""

    first: IntArray
    second: IntArray

    @property
    def returned(self) -> IntArray:
        """The model whose answer is returned: the second if there was one."""
        out: IntArray = np.where(self.second >= 0, self.second, self.first)
        return out

    def called(self, row: int) -> list[int]:
        return [int(self.first[row])] + ([int(self.second[row])] if self.second[row] >= 0 else [])

    def outcomes(self, score: FloatArray, cost: FloatArray) -> tuple[FloatArray, FloatArray]:
        """True score of the returned answer and true cost of every call, per prompt."""
        rows = np.arange(score.shape[0])
        paid = cost[rows, self.first] + np.where(
            self.second >= 0, cost[rows, np.maximum(self.second, 0)], 0.0
        )
        return score[rows, self.returned], paid


def cascade_batch(
    quality: FloatArray,
    predicted_cost: FloatArray,
    checked: FloatArray,
    lam: float,
    reference_cost: float,
) -> CascadeChoices:
    """The cascade's calls at ``lam``; ``checked`` holds each model's check of its own
    answer (NaN where it has none). Of each row, only the first model's column is read."""
    rows = np.arange(quality.shape[0])
    has_check = ~np.all(np.isnan(checked), axis=0)
    first = first_rungs(quality, predicted_cost, has_check, lam, reference_cost)
    second = second_rungs(quality, predicted_cost, first, checked[rows, first], lam, reference_cost)
    return CascadeChoices(first, second)


def second_rungs(
    quality: FloatArray,
    predicted_cost: FloatArray,
    first: IntArray,
    seen: FloatArray,
    lam: float,
    reference_cost: float,
) -> IntArray:
    """Per row, the model to escalate to after the first answered (-1: keep its answer).

    ``seen`` is the first model's check of its own answer (NaN: no check, keep it).
    Escalate when another model's quality minus lambda times its cost beats ``seen``.
    """
    rows = np.arange(quality.shape[0])
    utility = quality - lam * predicted_cost / reference_cost
    utility[rows, first] = -np.inf  # the others, against the answer in hand
    best = np.argmax(utility, axis=1).astype(np.int64)
    has_check = ~np.isnan(seen)
    escalate = has_check & (utility[rows, best] > np.where(has_check, seen, np.inf))
    second: IntArray = np.where(escalate, best, -1).astype(np.int64)
    return second


def first_rungs(
    quality: FloatArray,
    predicted_cost: FloatArray,
    has_check: npt.NDArray[np.bool_],
    lam: float,
    reference_cost: float,
) -> IntArray:
    """The first model to call: the lambda rule, where a model with a check is worth
    what calling it first is worth if its check were right: its cost, then its
    answer when good (P = its predicted quality), else the best other model when
    that beats answering badly. A model without a check is worth its plain utility."""
    utility = quality - lam * predicted_cost / reference_cost
    if not has_check.any():
        return choose_for_lambda_batch(quality, predicted_cost, lam, reference_cost)
    value = utility.copy()
    for j in np.flatnonzero(has_check):
        others = np.delete(utility, j, axis=1)
        fallback = np.maximum(others.max(axis=1), 0.0) if others.size else 0.0
        value[:, j] = (
            quality[:, j] - lam * predicted_cost[:, j] / reference_cost
            + (1 - quality[:, j]) * fallback
        )  # fmt: skip
    best = value.max(axis=1, keepdims=True)
    masked = np.where(value == best, predicted_cost, np.inf)
    first: IntArray = np.argmin(masked, axis=1).astype(np.int64)
    return first


def cascade_lambdas(
    quality: FloatArray, predicted_cost: FloatArray, checked: FloatArray, reference_cost: float
) -> list[float]:
    """The lambdas to sweep: the plain router's, plus where each check flips a choice."""
    known = np.where(np.isnan(checked), quality, checked)
    return sorted(
        {
            *lambda_grid(quality, predicted_cost, reference_cost),
            *lambda_grid(known, predicted_cost, reference_cost),
        }
    )


def calibrate_cascade(
    rows: Sequence[OutcomeRow],
    models: list[str],
    oof: FloatArray,
    check_oof: Mapping[str, FloatArray],
    cost_models: Mapping[str, CostModel],
    reference_cost: float,
    goals: Mapping[str, tuple[float, bool]],
    folds: int,
) -> Calibration | None:
    """Each tier's cascade lambda on train, from out-of-fold predictions of the prompt
    router (``oof``, columns ``models``) and of each check (per model, over all rows)."""
    m = train_matrices(rows, models, cost_models)
    if not m.complete:
        return None
    quality = oof[m.complete]
    checked = np.full(quality.shape, np.nan)
    for j, model in enumerate(models):
        if model in check_oof:
            checked[:, j] = check_oof[model][m.complete]

    def sweep(lam: float) -> tuple[FloatArray, FloatArray]:
        choices = cascade_batch(quality, m.predicted_cost, checked, lam, reference_cost)
        return choices.outcomes(m.score, m.cost)

    lams = cascade_lambdas(quality, m.predicted_cost, checked, reference_cost)
    return calibrate_sweep(models, lams, sweep, m.score, m.cost, goals, folds)
