"""Answer checks that learn: P(a model's answer is good | prompt, answer).

Trained by ``router train`` when outcome rows carry responses, for every model
but the strongest (a cascade never checks its last rung) that has at least
``MIN_ROWS`` train rows with a response and both good and bad answers. The
features: one hashed TF-IDF over prompt and answer together (the prompt
router's featurizer, its own IDF) plus the generic answer features of
``processors.checks.answer_features`` (arithmetic steps that do not compute,
the final number, length...), standardised. A logistic regression per model,
its strength chosen by cross-validated log-loss (``logistic_cv``); its
out-of-fold predictions are kept for calibrating the cascade.

A check reads the prompt and *its own model's* answer only: the answer of a
model already called, never one a cascade has not paid for.
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from processors.checks.answer_features import ANSWER_FEATURES, answer_features
from processors.learning.answer_verifier import check_text
from processors.learning.calibrated_eval import auc
from processors.learning.featurize import Featurizer, FloatArray, fit_featurizer
from processors.learning.logistic_cv import CvKnobs, cross_validated_fit, log_loss, weighted_labels
from schemas.outcomes import OutcomeRow
from schemas.router_artifact import AnswerChecks, FeaturizerParams, VerifierFit

MIN_ROWS = 50
_FOLD_SEED = zlib.crc32(b"fold")


@dataclass(frozen=True)
class TrainedChecks:
    """The checks' manifest part, arrays, and per model the out-of-fold predictions
    over every train row (NaN where that model has no response)."""

    checks: AnswerChecks
    idf: FloatArray
    coef: FloatArray
    intercept: FloatArray
    oof: dict[str, FloatArray]


def train_checks(
    rows: Sequence[OutcomeRow], models: Sequence[str], strongest: str, knobs: CvKnobs
) -> tuple[TrainedChecks | None, str]:
    """Checks for ``models`` but ``strongest`` over ``rows`` (train); (None, why) if none."""
    answered = {
        m: [i for i, r in enumerate(rows) if m in r.outcomes and r.outcomes[m].response]
        for m in models
        if m != strongest
    }
    if not any(answered.values()):
        return None, "no responses in the data: no learned answer checks"
    skipped = {m: f"{len(ix)} train rows with a response (< {MIN_ROWS})"
               for m, ix in answered.items() if len(ix) < MIN_ROWS}  # fmt: skip
    pairs = [(m, i) for m, ix in answered.items() if m not in skipped for i in ix]
    if not pairs:
        return None, "; ".join(f"{m}: {why}" for m, why in skipped.items())
    texts = [check_text(rows[i].prompt, _answer(rows[i], m)) for m, i in pairs]
    params, idf = fit_featurizer(FeaturizerParams(), texts)
    dense = np.array([answer_features(rows[i].prompt, _answer(rows[i], m)) for m, i in pairs])
    mean, std = dense.mean(axis=0), dense.std(axis=0)
    std[std == 0] = 1.0
    featurizer = Featurizer(params, idf)
    columns = _Columns(featurizer, texts, dense, mean, std, pairs)
    verifiers, coefs, intercepts, oof = _fit_all(rows, answered, skipped, columns, knobs)
    if not verifiers:
        return None, "; ".join(f"{m}: {why}" for m, why in skipped.items())
    checks = AnswerChecks(
        featurizer=params,
        answer_features=ANSWER_FEATURES,
        answer_mean=tuple(mean.tolist()),
        answer_std=tuple(std.tolist()),
        verifiers=verifiers,
        skipped=skipped,
    )
    width = params.width + len(ANSWER_FEATURES)
    coef = np.array(coefs).reshape(len(coefs), width)
    note = "; ".join(f"{m}: {why}" for m, why in skipped.items())
    return TrainedChecks(checks, idf, coef, np.array(intercepts), oof), note


@dataclass(frozen=True)
class _Columns:
    """Every (model, row) answer's features: hashed text and standardised answer features."""

    featurizer: Featurizer
    texts: list[str]
    dense: FloatArray
    mean: FloatArray
    std: FloatArray
    pairs: list[tuple[str, int]]

    def of(self, model: str, rows: Sequence[OutcomeRow], index: list[int]) -> sp.csr_matrix:
        at = [k for k, (m, _) in enumerate(self.pairs) if m == model]
        return sp.hstack(
            [
                self.featurizer.transform(
                    [self.texts[k] for k in at], [rows[i].task for i in index]
                ),
                sp.csr_matrix((self.dense[at] - self.mean) / self.std),
            ],
            format="csr",
        )


def _fit_all(
    rows: Sequence[OutcomeRow],
    answered: dict[str, list[int]],
    skipped: dict[str, str],
    columns: _Columns,
    knobs: CvKnobs,
) -> tuple[list[VerifierFit], list[FloatArray], list[float], dict[str, FloatArray]]:
    """Each answered model's check (``skipped`` gains why a model got none)."""
    verifiers: list[VerifierFit] = []
    coefs: list[FloatArray] = []
    intercepts: list[float] = []
    oof: dict[str, FloatArray] = {}
    for model, index in answered.items():
        if model in skipped:
            continue
        scores = np.array([rows[i].outcomes[model].score for i in index])
        x = columns.of(model, rows, index)
        fitted = _fit(model, rows, index, x, scores, len(coefs), knobs)
        if isinstance(fitted, str):
            skipped[model] = fitted
            continue
        fit, coef, intercept, held = fitted
        verifiers.append(fit)
        coefs.append(coef)
        intercepts.append(intercept)
        oof[model] = np.full(len(rows), np.nan)
        oof[model][index] = held
    return verifiers, coefs, intercepts, oof


def _answer(row: OutcomeRow, model: str) -> str:
    return row.outcomes[model].response or ""


def _fit(
    model: str,
    rows: Sequence[OutcomeRow],
    index: list[int],
    x: sp.csr_matrix,
    scores: FloatArray,
    weight_row: int,
    knobs: CvKnobs,
) -> tuple[VerifierFit, FloatArray, float, FloatArray] | str:
    """One model's check, or why it has none."""
    if scores.sum() == 0 or (1 - scores).sum() == 0:
        return "only good or only bad answers"
    folds = np.array([zlib.crc32(rows[i].id.encode(), _FOLD_SEED) % knobs.folds for i in index])
    c, curve, held, final = cross_validated_fit(x, scores, folds, knobs)
    labels = weighted_labels(scores)
    held = np.where(np.isnan(held), scores.mean(), held)
    fit = VerifierFit(
        model=model,
        weight_row=weight_row,
        train_rows=len(index),
        mean_score=float(scores.mean()),
        c=c,
        cv_log_loss=dict(curve)[c],
        cv_mean_log_loss=log_loss(
            np.full(labels.rows.size, scores.mean()), labels.y, labels.weight
        ),
        oof_auc=auc(held, scores),
    )
    return fit, final.coef_[0].astype(np.float64), float(final.intercept_[0]), held
