"""A trained router's predictions, and the two choice rules built on them.

``QualityModel`` is pure: built from a manifest and arrays (``sinks/router_artifact.py``
loads them), it predicts P(good answer) per model for a prompt and the cost of a
call from the prompt's length. Models that had too little training data get
their prior: the mean train score of that model on that task (smoothed), or on
all tasks for a task it never saw.

The choice rules are shared with the live router, which passes configured
quality for models the artifact does not know (``knows``):

- ``choose_for_target``: the cheapest model predicted to reach a quality target;
- ``choose_for_lambda``: the best quality minus ``lam`` times cost in units of
  the reference (strongest) model's mean cost, so ``lam`` is what one
  strongest-model call's worth of money is worth in quality; 0 = best quality.

Ties go to the cheaper model, then the smaller name. The ``*_batch`` forms do
the same on matrices (columns in ``sorted(names)`` order) for evaluation.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from processors.learning.answer_verifier import AnswerVerifier
from processors.learning.featurize import Featurizer, FloatArray
from schemas.errors import UsageError
from schemas.router_artifact import Calibration, RouterManifest


@dataclass(frozen=True)
class RouterArrays:
    """The arrays of a router: IDF (dim), weights (learned models x width), intercepts;
    the same for its learned answer checks (empty without them)."""

    idf: npt.NDArray[np.float32]
    coef: npt.NDArray[np.float32]
    intercept: npt.NDArray[np.float64]
    check_idf: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    check_coef: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), np.float32)
    )
    check_intercept: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


class QualityModel:
    """Predicted quality and cost per model for one prompt or many.

    Raises ValueError at construction when the arrays do not fit the manifest.
    """

    def __init__(self, manifest: RouterManifest, arrays: RouterArrays) -> None:
        params = manifest.featurizer
        learned = [fit for fit in manifest.models if fit.kind == "learned"]
        rows = [fit.weight_row if fit.weight_row is not None else -1 for fit in learned]
        if arrays.coef.shape != (len(learned), params.width):
            raise UsageError(
                f"weights have shape {arrays.coef.shape}, the manifest needs "
                f"({len(learned)}, {params.width})"
            )
        if arrays.intercept.shape != (len(learned),) or sorted(rows) != list(range(len(learned))):
            raise UsageError("intercepts or weight rows do not match the manifest's models")
        missing = [f.name for f in manifest.models if f.name not in manifest.cost_models]
        if missing:
            raise UsageError(f"no cost model for {', '.join(missing)}")
        self.manifest = manifest
        self.arrays = arrays
        self.models: list[str] = [fit.name for fit in manifest.models]
        self.featurizer = Featurizer(params, arrays.idf.astype(np.float64))
        self._learned = [fit.name for fit in learned]
        order = np.array(rows, dtype=np.int64)
        # Transposed so one prompt's columns are contiguous rows: one gather, one dot.
        self._coef_t = np.ascontiguousarray(arrays.coef[order].T) if learned else arrays.coef.T
        self._intercept = arrays.intercept[order] if learned else arrays.intercept
        self._priors = {fit.name: fit.mean_score for fit in manifest.models}
        self._primed: dict[str, FloatArray] = {}
        cost = [manifest.cost_models[name] for name in self.models]
        self._cost_a = np.array([c.intercept_usd for c in cost])
        self._cost_b = np.array([c.per_char_usd for c in cost])
        checks = manifest.checks
        self._verifier = (
            AnswerVerifier(checks, arrays.check_idf, arrays.check_coef, arrays.check_intercept)
            if checks is not None
            else None
        )

    @property
    def version(self) -> str:
        """The artifact's version (creation time and weights digest), for telemetry."""
        return self.manifest.version

    @property
    def reference_cost(self) -> float:
        return self.manifest.reference_cost_usd

    @property
    def reference_model(self) -> str:
        return self.manifest.reference_model

    @property
    def calibration(self) -> Calibration | None:
        """Tiers and targets as lambdas (``processors.learning.calibration``); None in
        routers trained before calibration existed."""
        return self.manifest.calibration

    @property
    def verifier(self) -> AnswerVerifier | None:
        """The learned answer checks; None when the router was trained without responses."""
        return self._verifier

    @property
    def cascade_calibration(self) -> Calibration | None:
        """Tiers to lambdas for the cascade with learned checks (None without checks)."""
        return self.manifest.cascade

    def relative_size(self, prompt_chars: int) -> float:
        """The reference model's predicted cost for a prompt this long, in units of its
        mean cost: how much dearer than usual the strongest model's call would be."""
        line = self.manifest.cost_models[self.manifest.reference_model]
        return (line.intercept_usd + line.per_char_usd * prompt_chars) / self.reference_cost

    def knows(self, model: str) -> bool:
        """True if the artifact has a prediction (learned or prior) for ``model``."""
        return model in self._priors

    def prior(self, model: str, task: str) -> float:
        """The model's smoothed mean train score on ``task`` (all tasks if unseen)."""
        return self.manifest.priors.get(model, {}).get(task, self._priors[model])

    def prime(self, texts: Sequence[str]) -> None:
        """Featurise a batch of prompts at once for the ``predict`` calls that follow
        (a router primes each batch it routes). Only this batch is kept: the memo is
        a speed-up, never a different answer (``Featurizer.transform_texts``)."""
        if not self._learned or not texts:
            self._primed = {}
            return
        distinct = list(dict.fromkeys(texts))
        logits = np.asarray(self.featurizer.transform_texts(distinct) @ self._coef_t)
        self._primed = dict(zip(distinct, logits, strict=True))

    def predict(self, text: str, task: str) -> dict[str, float]:
        """P(good answer) per known model for one prompt."""
        primed = self._primed.get(text)
        if primed is not None:
            column = self.featurizer.task_column(task)
            logits = primed + self._coef_t[column] + self._intercept
        else:
            indices, values = self.featurizer.transform_one(text, task)
            logits = values @ self._coef_t[indices] + self._intercept
        learned = dict(zip(self._learned, _sigmoid(logits).tolist(), strict=True))
        return {m: learned[m] if m in learned else self.prior(m, task) for m in self.models}

    def predict_batch(self, texts: Sequence[str], tasks: Sequence[str]) -> FloatArray:
        """P(good answer) for many prompts: one row per prompt, columns in ``models`` order."""
        out = np.empty((len(texts), len(self.models)))
        if self._learned:
            matrix = self.featurizer.transform(texts, tasks)
            learned = _sigmoid(matrix @ self._coef_t + self._intercept)
        for column, model in enumerate(self.models):
            if model in self._learned:
                out[:, column] = learned[:, self._learned.index(model)]
            else:
                out[:, column] = [self.prior(model, task) for task in tasks]
        return out

    def predict_cost_batch(self, prompt_chars: Sequence[int]) -> FloatArray:
        """Predicted USD of one call: a row per prompt length, columns in ``models`` order."""
        chars = np.asarray(prompt_chars, dtype=np.float64)[:, None]
        return self._cost_a + self._cost_b * chars


def choose_for_target(
    quality: Mapping[str, float], cost: Mapping[str, float], target: float
) -> str:
    """The cheapest model with quality >= ``target``; if none, the best quality."""
    _check(quality, cost)
    passing = [m for m in quality if quality[m] >= target]
    if passing:
        return min(passing, key=lambda m: (cost[m], m))
    return min(quality, key=lambda m: (-quality[m], cost[m], m))


def choose_for_lambda(
    quality: Mapping[str, float], cost: Mapping[str, float], lam: float, reference_cost: float
) -> str:
    """argmax quality - lam * cost / reference_cost (lam >= 0, reference_cost > 0)."""
    _check(quality, cost)
    if lam < 0 or reference_cost <= 0:
        raise UsageError("lam must be >= 0 and reference_cost > 0")
    return min(quality, key=lambda m: (-(quality[m] - lam * cost[m] / reference_cost), cost[m], m))


def choose_for_target_batch(
    quality: FloatArray, cost: FloatArray, target: float
) -> npt.NDArray[np.int64]:
    """``choose_for_target`` per row; columns must be in sorted-name order."""
    passing = quality >= target
    best = quality.max(axis=1, keepdims=True)
    candidates = np.where(passing.any(axis=1, keepdims=True), passing, quality == best)
    return _cheapest_then_first(candidates, cost)


def choose_for_lambda_batch(
    quality: FloatArray, cost: FloatArray, lam: float, reference_cost: float
) -> npt.NDArray[np.int64]:
    """``choose_for_lambda`` per row; columns must be in sorted-name order."""
    utility = quality - lam * cost / reference_cost
    return _cheapest_then_first(utility == utility.max(axis=1, keepdims=True), cost)


def _cheapest_then_first(
    candidates: npt.NDArray[np.bool_], cost: FloatArray
) -> npt.NDArray[np.int64]:
    masked = np.where(candidates, cost, np.inf)
    cheapest = candidates & (masked == masked.min(axis=1, keepdims=True))
    chosen: npt.NDArray[np.int64] = np.argmax(cheapest, axis=1).astype(np.int64)
    return chosen


def _check(quality: Mapping[str, float], cost: Mapping[str, float]) -> None:
    if not quality:
        raise UsageError("no models to choose from")
    missing = [m for m in quality if m not in cost]
    if missing:
        raise UsageError(f"no cost for {', '.join(sorted(missing))}")


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out
