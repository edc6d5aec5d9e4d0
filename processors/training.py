"""Training a quality model from outcome rows (pure: rows in, model out).

Per model with enough rows of both classes: logistic regression on
``score >= 0.5``... rather, on the score itself as a weight (a row with score
s counts s as good and 1 - s as not), with the inverse regularisation C
chosen by 3-fold cross-validated log-loss on the training rows only. Costs:
per model a least-squares line over prompt characters. Nothing here looks
at test rows.
"""

import hashlib
import warnings
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from processors.quality_model import QualityModel, counts, tfidf
from schemas.outcomes import OutcomeRow

C_GRID = (0.3, 1.0, 3.0)
FOLDS = 3
MIN_ROWS = 20
PRIOR_PSEUDO_ROWS = 5.0


def _fit(x: sp.csr_matrix, y: np.ndarray, c: float) -> LogisticRegression:
    # Fractional scores: each row twice, as good with weight s and bad with 1 - s.
    xx = sp.vstack([x, x]).tocsr()
    yy = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    ww = np.concatenate([y, 1.0 - y])
    keep = ww > 0
    model = LogisticRegression(C=c, max_iter=300, solver="liblinear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(xx[keep], yy[keep], sample_weight=ww[keep])
    return model


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _choose_c(x: sp.csr_matrix, y: np.ndarray, ids: Sequence[str]) -> float:
    fold = np.array([int(hashlib.md5(i.encode()).hexdigest(), 16) % FOLDS for i in ids])  # noqa: S324 - a split, not security
    best, best_loss = C_GRID[0], float("inf")
    for c in C_GRID:
        losses = []
        for k in range(FOLDS):
            train, held = fold != k, fold == k
            if train.sum() == 0 or held.sum() == 0:
                continue
            fitted = _fit(x[train], y[train], c)
            losses.append(_log_loss(fitted.predict_proba(x[held])[:, 1], y[held]))
        loss = float(np.mean(losses)) if losses else float("inf")
        if loss < best_loss:
            best, best_loss = c, loss
    return best


def train(rows: Sequence[OutcomeRow], now: datetime) -> tuple[QualityModel, dict[str, object]]:
    """A quality model from the train split of ``rows``, and a summary of what was fit."""
    train_rows = [r for r in rows if r.effective_split == "train"]
    if not train_rows:
        raise ValueError("no train rows: nothing to learn from")
    names = sorted({m for r in train_rows for m in r.outcomes})
    raw = counts([r.prompt for r in train_rows], [r.task for r in train_rows])
    document_freq = np.bincount(raw.indices, minlength=raw.shape[1]).astype(np.float64)
    n = len(train_rows)
    idf = np.log((1 + n) / (1 + document_freq)) + 1.0
    x = tfidf(raw, idf)
    learned: list[str] = []
    coefs: list[np.ndarray] = []
    intercepts: list[float] = []
    priors: dict[str, dict[str, float]] = {}
    costs: dict[str, tuple[float, float]] = {}
    summary: dict[str, object] = {"train_rows": n, "models": {}}
    for name in names:
        idx = [i for i, r in enumerate(train_rows) if name in r.outcomes]
        y = np.array([train_rows[i].outcomes[name].score for i in idx])
        spent = np.array([train_rows[i].outcomes[name].cost_usd for i in idx])
        chars = np.array([len(train_rows[i].prompt) for i in idx], dtype=np.float64)
        design = np.column_stack([np.ones_like(chars), chars])
        (a, b), *_ = np.linalg.lstsq(design, spent, rcond=None)
        costs[name] = (float(a), float(max(b, 0.0)))
        priors[name] = _priors([train_rows[i] for i in idx], name)
        entry: dict[str, object] = {"rows": len(idx), "mean_score": round(float(y.mean()), 4)}
        if len(idx) >= MIN_ROWS and 0 < y.mean() < 1:
            c = _choose_c(x[idx], y, [train_rows[i].id for i in idx])
            fitted = _fit(x[idx], y, c)
            learned.append(name)
            coefs.append(fitted.coef_[0])
            intercepts.append(float(fitted.intercept_[0]))
            entry.update(kind="learned", c=c)
        else:
            entry.update(kind="prior", reason="too few rows or one class only")
        summary["models"][name] = entry  # type: ignore[index]
    means = {m: float(np.mean([r.outcomes[m].score for r in train_rows if m in r.outcomes]))
             for m in names}  # fmt: skip
    strongest = max(names, key=lambda m: (means[m], m))
    reference = float(
        np.mean([r.outcomes[strongest].cost_usd for r in train_rows if strongest in r.outcomes])
    )
    width = x.shape[1]
    model = QualityModel(
        version=now.strftime("%Y%m%dT%H%M%SZ"),
        models=learned,
        idf=idf,
        coef=np.vstack(coefs) if coefs else np.zeros((0, width)),
        intercept=np.array(intercepts),
        cost_per_char=costs,
        reference_cost=reference if reference > 0 else 1.0,
        priors={m: p for m, p in priors.items() if m not in learned},
    )
    summary.update(strongest=strongest, reference_cost_usd=reference)
    return model, summary


def _priors(rows: Sequence[OutcomeRow], name: str) -> dict[str, float]:
    """Mean score per task, shrunk towards the model's overall mean."""
    overall = float(np.mean([r.outcomes[name].score for r in rows]))
    by_task: dict[str, list[float]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r.outcomes[name].score)
    k = PRIOR_PSEUDO_ROWS
    out = {t: (sum(s) + k * overall) / (len(s) + k) for t, s in by_task.items()}
    out["*"] = overall
    return out
