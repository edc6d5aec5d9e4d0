"""A router's learned answer checks at serving time: P(good | prompt, answer).

Training is ``processors/learning/verifier.py`` (it needs scikit-learn; this
module does not, so routers and provider workers start without it).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from processors.cascade import Judge
from processors.checks.answer_features import answer_features
from processors.learning.featurize import Featurizer, FloatArray
from schemas.router_artifact import AnswerChecks


def check_text(prompt: str, answer: str) -> str:
    """What the check's featurizer reads: the prompt, then the answer."""
    return f"{prompt}\n\n{answer}"


class AnswerVerifier:
    """A router's learned checks, ready to judge answers."""

    def __init__(
        self,
        checks: AnswerChecks,
        idf: npt.NDArray[np.floating[Any]],
        coef: npt.NDArray[np.floating[Any]],
        intercept: npt.NDArray[np.floating[Any]],
    ) -> None:
        self.checks = checks
        self.featurizer = Featurizer(checks.featurizer, idf.astype(np.float64))
        self._coef = np.asarray(coef, dtype=np.float64)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._mean = np.array(checks.answer_mean)
        self._std = np.array(checks.answer_std)
        self._rows = {v.model: v.weight_row for v in checks.verifiers}

    def knows(self, model: str) -> bool:
        return model in self._rows

    def probability(self, model: str, prompt: str, task: str, answer: str) -> float:
        """P(``model``'s ``answer`` to ``prompt`` is good); the model must be known."""
        return float(self.probability_batch(model, [prompt], [task], [answer])[0])

    def probability_batch(
        self, model: str, prompts: Sequence[str], tasks: Sequence[str], answers: Sequence[str]
    ) -> FloatArray:
        row = self._rows[model]
        texts = [check_text(p, a) for p, a in zip(prompts, answers, strict=True)]
        dense = np.array([answer_features(p, a) for p, a in zip(prompts, answers, strict=True)])
        x = sp.hstack(
            [
                self.featurizer.transform(texts, tasks),
                sp.csr_matrix((dense.reshape(len(texts), -1) - self._mean) / self._std),
            ],
            format="csr",
        )
        z = x @ self._coef[row] + self._intercept[row]
        out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z).ravel()))
        return out


def judge_for(verifier: AnswerVerifier, aliases: Mapping[str, str]) -> Judge:
    """The provider's learned check: catalogue models map to the router's names by
    ``routing.learned.aliases``; a model without a check gets None (accepted)."""

    def judge(model: str, prompt: str, task: str, answer: str) -> float | None:
        name = aliases.get(model, model)
        return verifier.probability(name, prompt, task, answer) if verifier.knows(name) else None

    return judge
