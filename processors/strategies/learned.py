"""The ``learned`` strategy: the lambda rule over qualities *predicted* from the prompt.

A quality model (trained by ``switchyard router train``, see
``processors.learning.training``) predicts from the prompt the probability that each
model it knows answers well enough. Catalogue models map to its model names
through ``routing.learned.aliases``; a model it has no data for keeps its
configured per-task quality, so any portfolio works.

The choice is the one ``router eval`` measures and ``router predict`` prints:
the eligible model with the best predicted quality minus lambda times its
cost, lambda being the request's tier's calibrated point, or the point
calibrated for its ``quality_target`` (``processors.learning.calibration``).
Costs are the catalogue's estimates for this request, in units of an
average-sized call of the router's reference (strongest) model: the
catalogue's price for the reference alias scaled by how long this prompt is,
so a catalogue priced like the training data gets exactly the offline
choice. A router trained before calibration falls back to cheapest-capable
over its predictions.
"""

from collections.abc import Mapping
from typing import Protocol

from processors.learning.calibration import lambda_for_target
from processors.strategies.base import Choice, Strategy, StrategyContext, StrategyInput
from processors.strategies.cheapest_capable import cheapest_capable
from schemas.config import SwitchyardConfig
from schemas.decision import CandidateVerdict
from schemas.router_artifact import Calibration


class QualityPredictor(Protocol):
    """What the strategy needs of a trained model (``processors.learning.quality_model``)."""

    @property
    def version(self) -> str: ...

    @property
    def calibration(self) -> Calibration | None: ...

    @property
    def reference_model(self) -> str: ...

    def relative_size(self, prompt_chars: int) -> float: ...

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
        source = (
            f"predicted for {len(scores)} of {sum(v.eligible for v in inp.verdicts)} models"
            if scores
            else "no model predicted; configured qualities"
        )
        calibration = self.model.calibration if self.model is not None else None
        if self.model is not None and calibration is not None:
            choice = self._by_lambda(rescored, inp, calibration, self.model)
        else:
            choice = cheapest_capable(rescored, inp.target, inp.max_fallbacks, inp.chains)
        if choice is None:
            return None
        return Choice(choice.chosen, choice.fallbacks, f"{choice.reason} ({source})", scores)

    def _by_lambda(
        self,
        verdicts: list[CandidateVerdict],
        inp: StrategyInput,
        calibration: Calibration,
        model: QualityPredictor,
    ) -> Choice | None:
        eligible = [v for v in verdicts if v.eligible]
        if not eligible:
            return None
        if inp.request.quality_target is not None:
            lam = lambda_for_target(calibration, inp.request.quality_target)
            why = f"quality_target {inp.request.quality_target:g}"
        else:
            tier = calibration.tiers.get(inp.quality)
            lam = tier.lam if tier is not None else 0.0
            why = f"tier {inp.quality}" if tier is not None else f"uncalibrated tier {inp.quality}"
        unit = self._cost_unit(verdicts, model, len(inp.text))

        def utility(v: CandidateVerdict) -> tuple[float, float, str]:
            return (
                -(v.quality_score - lam * v.estimated_cost_usd / unit),
                v.estimated_cost_usd,
                v.model,
            )

        ranked = sorted(eligible, key=utility)
        chosen, rest = ranked[0], ranked[1:]
        preferred = (inp.chains or {}).get(chosen.model, [])
        rank = {name: i for i, name in enumerate(preferred)}
        rest.sort(key=lambda v: rank.get(v.model, len(rank)))  # stable: utility order stays
        reason = (
            f"best predicted quality - {lam:.4g} x cost of {len(eligible)} eligible models "
            f"(lambda calibrated for {why})"
        )
        return Choice(chosen, rest[: inp.max_fallbacks], reason)

    def _cost_unit(
        self, verdicts: list[CandidateVerdict], model: QualityPredictor, prompt_chars: int
    ) -> float:
        """USD of an average-sized call of the reference model, at catalogue prices."""
        reference = next(
            (v for v in verdicts if self.aliases.get(v.model, v.model) == model.reference_model),
            None,
        )
        priced = reference or max(verdicts, key=lambda v: v.estimated_cost_usd)
        size = model.relative_size(prompt_chars)
        unit = priced.estimated_cost_usd / size if size > 0 else priced.estimated_cost_usd
        return unit if unit > 0 else 1.0
