"""Training a router from outcome rows: pure, rows in, (manifest, arrays) out.

Only ``train``-split rows are read. For each model named in them:

- a logistic regression (sklearn, L2, newton-cg) of P(good answer) on the
  featurizer's vectors. A score s in [0, 1] counts as good with weight s and as
  bad with weight 1 - s (a 0/1 score is one row with weight 1). The inverse
  strength C is chosen by 3-fold cross-validated log-loss (folds by a hash of
  the id) on a grid of powers of 4, walking from C = 1 towards lower loss until
  it rises; the chosen C is refit on all the model's train rows;
- a model with fewer than 20 train rows, or only good or only bad ones, keeps
  only its prior: its mean score per task, shrunk toward its mean over all
  tasks by 10 pseudo-rows (every model gets this prior table);
- a cost line, USD = a + b * prompt characters, fit by non-negative least squares.

The reference model (lambda's unit of cost) is the one with the highest mean
train score; its mean train cost is the reference cost. Nothing here depends on
test rows, and no setting was picked by looking at test figures.
"""

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import nnls

from processors.learning.calibration import calibrate_train
from processors.learning.cascade_route import calibrate_cascade
from processors.learning.featurize import Featurizer, FloatArray, fit_featurizer
from processors.learning.logistic_cv import cross_validated_fit, log_loss, weighted_labels
from processors.learning.quality_model import RouterArrays
from processors.learning.verifier import TrainedChecks, train_checks
from schemas.errors import TrainingError
from schemas.outcomes import SPLITS, OutcomeRow, Split
from schemas.router_artifact import (
    DEFAULT_TIER_GOALS,
    Calibration,
    CostModel,
    FeaturizerParams,
    ModelFit,
    RouterManifest,
)

Progress = Callable[[str, int, int, str], None]
"""Called as (stage, done, total, note) while training runs."""

_FOLD_SEED = zlib.crc32(b"fold")
_CHUNK = 1000


@dataclass(frozen=True)
class TrainSettings:
    featurizer: FeaturizerParams = field(default_factory=FeaturizerParams)
    min_rows: int = 20
    folds: int = 5
    c_grid: tuple[float, ...] = tuple(4.0**k for k in range(-6, 7))
    c_start: float = 1.0
    prior_pseudo_rows: float = 10.0
    cv_tol: float = 1e-3
    tol: float = 1e-4
    max_iter: int = 100
    threads: int = 3
    tier_goals: Mapping[str, tuple[float, bool]] = field(
        default_factory=lambda: {t: (g, False) for t, g in DEFAULT_TIER_GOALS.items()}
    )


def train_router(
    files: Mapping[str, Sequence[OutcomeRow]],
    created_at: datetime,
    settings: TrainSettings | None = None,
    progress: Progress | None = None,
) -> tuple[RouterManifest, RouterArrays]:
    """Train on the train split of ``files`` (name -> rows). Raises TrainingError."""
    settings = settings or TrainSettings()
    report = progress or (lambda stage, done, total, note: None)
    train = [row for rows in files.values() for row in rows if row.effective_split == "train"]
    if not train:
        raise TrainingError("no train rows: every row is in the test split")
    models = sorted({model for row in train for model in row.outcomes})
    params, idf = fit_featurizer(settings.featurizer, [row.prompt for row in train])
    x = _featurize(Featurizer(params, idf), train, report)
    trained = _train_models(models, train, x, settings, report)
    fits = [t.fit for t in trained]
    coefs = [t.coef for t in trained if t.coef is not None]
    intercepts = [t.intercept for t in trained if t.coef is not None]
    oof = np.column_stack([t.oof for t in trained])
    reference = max(fits, key=lambda fit: (fit.mean_score, fit.name))
    cost_models = {model: _cost_model(train, model) for model in models}
    reference_cost = _reference_cost(cost_models, reference.name)
    report("calibrating", 0, 1, "")
    calibration = calibrate_train(
        train, models, oof, cost_models, reference_cost, settings.tier_goals, settings.folds
    )
    report("calibrating", 1, 1, "")
    checks, note, cascade = _checks_and_cascade(
        train, models, oof, cost_models, (reference.name, reference_cost), settings, report
    )
    manifest = RouterManifest(
        created_at=created_at,
        featurizer=params,
        models=fits,
        c_grid=list(settings.c_grid),
        cv_folds=settings.folds,
        cost_models=cost_models,
        reference_model=reference.name,
        reference_cost_usd=reference_cost,
        calibration=calibration,
        checks=checks.checks if checks else None,
        checks_note=note,
        cascade=cascade,
        row_counts=_row_counts(files),
        priors={m: _task_priors(train, m, settings.prior_pseudo_rows) for m in models},
        prior_pseudo_rows=settings.prior_pseudo_rows,
        priors_from=(
            f"train split of {', '.join(files)}: mean score per (model, task), shrunk toward "
            f"the model's mean over all tasks by {settings.prior_pseudo_rows:g} pseudo-rows"
        ),
    )
    return manifest, _arrays(idf, coefs, intercepts, params.width, checks)


def _arrays(
    idf: FloatArray,
    coefs: list[FloatArray],
    intercepts: list[float],
    width: int,
    checks: TrainedChecks | None,
) -> RouterArrays:
    arrays = RouterArrays(
        idf=idf.astype(np.float32),
        coef=np.array(coefs, dtype=np.float32).reshape(len(coefs), width),
        intercept=np.array(intercepts, dtype=np.float64),
    )
    if checks is None:
        return arrays
    return replace(
        arrays,
        check_idf=checks.idf.astype(np.float32),
        check_coef=checks.coef.astype(np.float32),
        check_intercept=checks.intercept.astype(np.float64),
    )


def _checks_and_cascade(
    train: Sequence[OutcomeRow],
    models: list[str],
    oof: FloatArray,
    cost_models: Mapping[str, CostModel],
    reference: tuple[str, float],
    settings: TrainSettings,
    report: Progress,
) -> tuple[TrainedChecks | None, str, Calibration | None]:
    """The learned answer checks (when rows carry responses), why some model has none,
    and the cascade's calibration on their out-of-fold predictions."""
    name, cost = reference
    checks, note = train_checks(train, models, name, settings)
    if checks is None:
        return None, note, None
    report("calibrating the cascade", 0, 1, "")
    cascade = calibrate_cascade(
        train, models, oof, checks.oof, cost_models, cost, settings.tier_goals, settings.folds
    )
    report("calibrating the cascade", 1, 1, "")
    return checks, note, cascade


def _train_models(
    models: list[str],
    train: Sequence[OutcomeRow],
    x: sp.csr_matrix,
    settings: TrainSettings,
    report: Progress,
) -> list["_Trained"]:
    """Every model's fit, in ``models`` order; learned ones numbered by weight row."""
    found: list[_Trained] = []
    report("fitting", 0, len(models), "")
    for done, model in enumerate(models):
        weight_row = sum(t.coef is not None for t in found)
        trained = _train_model(model, train, x, weight_row, settings)
        found.append(trained)
        fit = trained.fit
        note = f"{model}: C={fit.c:g}" if fit.kind == "learned" else f"{model}: prior only"
        report("fitting", done + 1, len(models), note)
    return found


def _featurize(
    featurizer: Featurizer, rows: Sequence[OutcomeRow], report: Progress
) -> sp.csr_matrix:
    parts = []
    report("featurising", 0, len(rows), "")
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        parts.append(featurizer.transform([r.prompt for r in chunk], [r.task for r in chunk]))
        report("featurising", start + len(chunk), len(rows), "")
    return sp.vstack(parts, format="csr")


@dataclass(frozen=True)
class _Trained:
    """One model's fit, its weights (None for a prior) and out-of-fold predictions.

    ``oof`` has one entry per train row: NaN where the model has no outcome.
    """

    fit: ModelFit
    coef: FloatArray | None
    intercept: float
    oof: FloatArray


def _train_model(
    model: str, rows: Sequence[OutcomeRow], x: sp.csr_matrix, weight_row: int, s: TrainSettings
) -> _Trained:
    """One model's fit: learned (with its weights and intercept) or prior only."""
    index = np.array([i for i, row in enumerate(rows) if model in row.outcomes], dtype=np.int64)
    mine = [rows[i] for i in index]
    scores = np.array([row.outcomes[model].score for row in mine])
    folds = np.array([zlib.crc32(row.id.encode(), _FOLD_SEED) % s.folds for row in mine])
    prior_loss, prior_oof = _prior_log_loss(mine, model, scores, folds, s)
    oof = np.full(len(rows), np.nan)
    oof[index] = prior_oof
    prior = ModelFit(
        name=model, kind="prior", train_rows=len(mine), mean_score=float(scores.mean())
    )
    if len(mine) < s.min_rows:
        reason = f"{len(mine)} train rows (< {s.min_rows})"
        return _Trained(prior.model_copy(update={"reason": reason}), None, 0.0, oof)
    if scores.sum() == 0 or (1 - scores).sum() == 0:
        return _Trained(prior.model_copy(update={"reason": "one class only"}), None, 0.0, oof)
    # Only columns some row has: the others' weights stay exactly 0 under L2, so fitting
    # without them gives the same model, much faster on small data.
    xm = x[index]
    active = np.unique(xm.indices)
    xm = xm[:, active]
    c, curve, learned_oof, final = cross_validated_fit(xm, scores, folds, s)
    # A fold that could not be fit (one class in the rest) keeps the prior's prediction.
    oof[index] = np.where(np.isnan(learned_oof), prior_oof, learned_oof)
    fit = prior.model_copy(
        update={
            "kind": "learned",
            "weight_row": weight_row,
            "c": c,
            "cv_log_loss": dict(curve)[c],
            "cv_prior_log_loss": prior_loss,
            "cv_curve": sorted(curve),
            "converged": int(final.n_iter_[0]) < s.max_iter,
        }
    )
    coef = np.zeros(x.shape[1])
    coef[active] = final.coef_[0]
    return _Trained(fit, coef, float(final.intercept_[0]), oof)


def _prior_log_loss(
    rows: Sequence[OutcomeRow],
    model: str,
    scores: FloatArray,
    folds: npt.NDArray[np.int64],
    s: TrainSettings,
) -> tuple[float | None, FloatArray]:
    """The same CV log-loss for the per-task prior alone (what the classifier must
    beat), and each row's prior from the other folds (its mean over all rows in a
    fold that has no other)."""
    found = []
    oof = np.full(len(rows), float(scores.mean()) if scores.size else 0.5)
    for k in range(s.folds):
        train = [row for row, f in zip(rows, folds, strict=True) if f != k]
        held = np.flatnonzero(folds == k)
        if not train or held.size == 0:
            continue
        priors = _task_priors(train, model, s.prior_pseudo_rows)
        overall = float(np.mean([row.outcomes[model].score for row in train]))
        p = np.array([priors.get(rows[int(i)].task, overall) for i in held])
        oof[held] = p
        labels = weighted_labels(scores[held])
        found.append(log_loss(p[labels.rows], labels.y, labels.weight))
    return (float(np.mean(found)) if found else None), oof


def _task_priors(rows: Sequence[OutcomeRow], model: str, pseudo: float) -> dict[str, float]:
    by_task: dict[str, list[float]] = {}
    for row in rows:
        if model in row.outcomes:
            by_task.setdefault(row.task, []).append(row.outcomes[model].score)
    every = [score for scores in by_task.values() for score in scores]
    overall = float(np.mean(every)) if every else 0.5
    return {
        task: (sum(scores) + pseudo * overall) / (len(scores) + pseudo)
        for task, scores in sorted(by_task.items())
    }


def _cost_model(rows: Sequence[OutcomeRow], model: str) -> CostModel:
    chars = np.array([len(r.prompt) for r in rows if model in r.outcomes], dtype=np.float64)
    usd = np.array([r.outcomes[model].cost_usd for r in rows if model in r.outcomes])
    mean = float(usd.mean())
    if chars.size < 2 or np.ptp(chars) == 0:
        return CostModel(intercept_usd=mean, per_char_usd=0.0, train_rows=usd.size, mean_usd=mean)
    # Characters in thousands keeps the two columns on similar scales for the solver.
    design = np.column_stack([np.ones_like(chars), chars / 1000])
    (a, b), _ = nnls(design, usd)
    return CostModel(
        intercept_usd=float(a), per_char_usd=float(b) / 1000, train_rows=usd.size, mean_usd=mean
    )


def _reference_cost(cost_models: Mapping[str, CostModel], reference: str) -> float:
    """The reference model's mean cost; the priciest model's if it was free; else 1."""
    for usd in (cost_models[reference].mean_usd, max(c.mean_usd for c in cost_models.values())):
        if usd > 0:
            return usd
    return 1.0


def _row_counts(files: Mapping[str, Sequence[OutcomeRow]]) -> dict[str, dict[Split, int]]:
    counts: dict[str, dict[Split, int]] = {}
    for name, rows in files.items():
        counts[name] = {split: 0 for split in SPLITS}
        for row in rows:
            counts[name][row.effective_split] += 1
    return counts
