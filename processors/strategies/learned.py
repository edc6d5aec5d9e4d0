"""The ``learned`` strategy: cheapest model whose *predicted* quality meets the target.

A quality model (trained by ``switchyard router train``, see
``processors.learning.training``) predicts from the prompt the probability that each
model it knows answers well enough. Catalogue models map to its model names
through ``routing.learned.aliases``; a model it has no data for keeps its
configured per-task quality, so any portfolio works. The choice itself is
cheapest-capable over those scores, with the same fallback rules.
"""

from collections.abc import Mapping
from typing import Protocol

from processors.strategies.base import Choice, Strategy, StrategyContext, StrategyInput
from processors.strategies.cheapest_capable import cheapest_capable
from schemas.config import SwitchyardConfig


class QualityPredictor(Protocol):
    """What the strategy needs of a trained model (``processors.learning.quality_model``)."""

    @property
    def version(self) -> str: ...

    def predict(self, text: str, task: str) -> dict[str, float]: ...


class Learned(Strategy):
    """Built with its model loaded; the routing context carries the one in use."""

    name = "learned"

    def __init__(self, model: QualityPredictor | None, aliases: Mapping[str, str]) -> None:
        self.model = model
        self.aliases = aliases

    @classmethod
    def from_config(cls, config: SwitchyardConfig, context: StrategyContext) -> Strategy:
        # Loading (and reloading) the model is I/O: the worker does it, and the
        # context hands in the strategy it built with config's aliases.
        return context.learned

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    def choose(self, inp: StrategyInput) -> Choice | None:
        predicted = self.model.predict(inp.text, inp.task) if self.model is not None else {}
        scores: dict[str, float] = {}
        rescored = []
        for verdict in inp.verdicts:
            if not verdict.eligible:
                rescored.append(verdict)
                continue
            known = predicted.get(self.aliases.get(verdict.model, verdict.model))
            if known is not None:
                scores[verdict.model] = round(known, 4)
                verdict = verdict.model_copy(update={"quality_score": known})
            rescored.append(verdict)
        choice = cheapest_capable(rescored, inp.target, inp.max_fallbacks, inp.chains)
        if choice is None:
            return None
        source = (
            f"predicted for {len(scores)} of {sum(v.eligible for v in inp.verdicts)} models"
            if scores
            else "no model predicted; configured qualities"
        )
        return Choice(choice.chosen, choice.fallbacks, f"{choice.reason} ({source})", scores)
