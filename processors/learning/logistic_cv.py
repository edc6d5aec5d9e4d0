"""Logistic regression with its strength chosen by cross-validation: shared by the
prompt router (``training``) and the answer checks (``verifier``).

A score s in [0, 1] counts as good with weight s and as bad with weight 1 - s
(a 0/1 score is one row with weight 1). The inverse strength C is chosen by
cross-validated log-loss on a grid of powers of 4, walking from ``c_start``
towards lower loss until it rises; the held-out predictions at the chosen C are
kept, so calibration can measure settings on rows no fit has seen.
"""

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from processors.learning.featurize import FloatArray


class CvKnobs(Protocol):
    """The settings cross-validation reads (``training.TrainSettings`` has them)."""

    @property
    def folds(self) -> int: ...
    @property
    def c_grid(self) -> tuple[float, ...]: ...
    @property
    def c_start(self) -> float: ...
    @property
    def cv_tol(self) -> float: ...
    @property
    def tol(self) -> float: ...
    @property
    def max_iter(self) -> int: ...
    @property
    def threads(self) -> int: ...


@dataclass(frozen=True)
class Labels:
    """A model's rows as weighted binary labels (fractional scores appear twice)."""

    rows: npt.NDArray[np.int64]  # into the model's own rows
    y: FloatArray
    weight: FloatArray


def choose_c(
    x: sp.csr_matrix, scores: FloatArray, folds: npt.NDArray[np.int64], s: CvKnobs
) -> tuple[float, list[tuple[float, float]], FloatArray]:
    """Walk the C grid from ``c_start`` toward lower CV log-loss: the best C, every
    (C, loss) tried, and the out-of-fold predictions at the best C."""
    grid = sorted(s.c_grid)
    estimators = [logistic(grid[0], s.cv_tol, s.max_iter, warm=False) for _ in range(s.folds)]
    losses: dict[int, float] = {}
    oofs: dict[int, FloatArray] = {}

    def loss_at(j: int) -> float:
        if j not in losses:
            losses[j], oofs[j] = _cv_loss(x, scores, folds, estimators, grid[j], s.threads)
        return losses[j]

    best = min(range(len(grid)), key=lambda j: abs(math.log(grid[j] / s.c_start)))
    loss_at(best)
    for step in (1, -1):
        j, moved = best + step, False
        while 0 <= j < len(grid) and loss_at(j) < losses[best]:
            best, j, moved = j, j + step, True
        if moved:
            break
    return grid[best], [(grid[j], loss) for j, loss in losses.items()], oofs[best]


def _cv_loss(
    x: sp.csr_matrix,
    scores: FloatArray,
    folds: npt.NDArray[np.int64],
    estimators: list[LogisticRegression],
    c: float,
    threads: int,
) -> tuple[float, FloatArray]:
    """Mean held-out weighted log-loss over the folds whose training part has both
    classes, and every row's out-of-fold prediction (NaN in a fold not fit)."""
    oof = np.full(scores.size, np.nan)

    def one(k: int) -> float | None:
        train, held = weighted_labels(scores[folds != k]), weighted_labels(scores[folds == k])
        if held.rows.size == 0 or np.unique(train.y).size < 2:
            return None
        estimator = estimators[k]
        estimator.set_params(C=c)
        estimator.fit(x[folds != k][train.rows], train.y, sample_weight=train.weight)
        p = estimator.predict_proba(x[folds == k])[:, 1]
        oof[folds == k] = p
        return log_loss(p[held.rows], held.y, held.weight)

    with ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
        found = [loss for loss in pool.map(one, range(len(estimators))) if loss is not None]
    return (float(np.mean(found)) if found else math.inf), oof


def logistic(c: float, tol: float, max_iter: int, warm: bool) -> LogisticRegression:
    return LogisticRegression(C=c, solver="newton-cg", tol=tol, max_iter=max_iter, warm_start=warm)


def weighted_labels(scores: FloatArray) -> Labels:
    good, bad = np.flatnonzero(scores > 0), np.flatnonzero(scores < 1)
    return Labels(
        rows=np.concatenate([good, bad]),
        y=np.concatenate([np.ones(good.size), np.zeros(bad.size)]),
        weight=np.concatenate([scores[good], 1 - scores[bad]]),
    )


def log_loss(p: FloatArray, y: FloatArray, weight: FloatArray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(np.sum(weight * losses) / np.sum(weight))


def cross_validated_fit(
    x: sp.csr_matrix, scores: FloatArray, folds: npt.NDArray[np.int64], s: CvKnobs
) -> tuple[float, list[tuple[float, float]], FloatArray, LogisticRegression]:
    """``choose_c``, then the chosen C refit on every row: (C, every (C, loss) tried,
    out-of-fold predictions at C, the fitted regression)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        c, curve, held = choose_c(x, scores, folds, s)
        final = logistic(c, s.tol, s.max_iter, warm=False)
        labels = weighted_labels(scores)
        final.fit(x[labels.rows], labels.y, sample_weight=labels.weight)
    return c, curve, held, final
