"""A trained quality model: P(answer good enough | prompt, model), and the choices over it.

Features are hashed word 1-2-grams and character 2-4-grams of the prompt plus
a task token, TF-IDF weighted and L2-normalised (``featurize``), so any text
and any task name map into the same fixed-width space. Each model with
training data has a logistic-regression row; a model without keeps a prior
(its mean training score per task). Pure: built from arrays, no file I/O
(``sinks/router_artifact.py`` stores and loads it).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

FEATURE_BITS = 18


def _vectorizers() -> tuple[HashingVectorizer, HashingVectorizer]:
    words = HashingVectorizer(
        n_features=2**FEATURE_BITS, ngram_range=(1, 2), alternate_sign=False, norm=None
    )
    chars = HashingVectorizer(
        n_features=2**FEATURE_BITS,
        analyzer="char_wb",
        ngram_range=(2, 4),
        alternate_sign=False,
        norm=None,
    )
    return words, chars


_WORDS, _CHARS = _vectorizers()


def counts(texts: Sequence[str], tasks: Sequence[str]) -> sp.csr_matrix:
    """Raw hashed counts: words, characters, and the task as one more word."""
    tagged = [f"{t} __task_{k}__" for t, k in zip(texts, tasks, strict=True)]
    matrix = _WORDS.transform(tagged) + _CHARS.transform(texts)
    return sp.csr_matrix(matrix)


def tfidf(raw: sp.csr_matrix, idf: npt.NDArray[np.float64]) -> sp.csr_matrix:
    out = raw.copy().astype(np.float64)
    out.data = np.log1p(out.data)  # sublinear tf
    out = sp.csr_matrix(out.multiply(idf[np.newaxis, :]))
    norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ out)


@dataclass(frozen=True)
class QualityModel:
    version: str
    models: list[str]  # models with a learned row, in row order
    idf: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]  # (len(models), features)
    intercept: npt.NDArray[np.float64]
    cost_per_char: Mapping[str, tuple[float, float]]  # model -> (intercept, slope) in USD
    reference_cost: float  # the strongest model's mean train cost: lambda's unit
    priors: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # model -> task -> q

    def knows(self, model: str) -> bool:
        return model in self.models or model in self.priors

    def predict(self, text: str, task: str) -> dict[str, float]:
        return self.predict_batch([text], [task])[0]

    def predict_batch(self, texts: Sequence[str], tasks: Sequence[str]) -> list[dict[str, float]]:
        features = tfidf(counts(texts, tasks), self.idf)
        logits = np.asarray(features @ self.coef.T) + self.intercept
        probs = 1.0 / (1.0 + np.exp(-logits))
        out: list[dict[str, float]] = []
        for row, task in zip(probs, tasks, strict=True):
            found = {m: float(p) for m, p in zip(self.models, row, strict=True)}
            for model, by_task in self.priors.items():
                if model not in found:
                    found[model] = by_task.get(task, by_task.get("*", 0.5))
            out.append(found)
        return out

    def predict_cost(self, prompt_chars: int) -> dict[str, float]:
        return {m: max(a + b * prompt_chars, 0.0) for m, (a, b) in self.cost_per_char.items()}


def choose_for_target(
    quality: Mapping[str, float], cost: Mapping[str, float], target: float
) -> str:
    """Cheapest model predicted to reach ``target``; else the best predicted."""
    able = [m for m in quality if quality[m] >= target]
    if able:
        return min(able, key=lambda m: (cost.get(m, math.inf), m))
    return max(quality, key=lambda m: (quality[m], -cost.get(m, math.inf), m))


def choose_for_lambda(
    quality: Mapping[str, float], cost: Mapping[str, float], lam: float, reference_cost: float
) -> str:
    """Maximise quality - lam * cost / reference_cost (lam = 0: the best predicted)."""
    unit = reference_cost if reference_cost > 0 else 1.0
    return max(
        quality,
        key=lambda m: (quality[m] - lam * cost.get(m, math.inf) / unit, -cost.get(m, 0.0), m),
    )
