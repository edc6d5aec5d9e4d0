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

from collections.abc import Mapping, Sequence
from typing import Protocol

from processors.learning.calibration import lambda_for_target
from processors.strategies.base import Choice, Strategy, StrategyContext, StrategyInput
from processors.strategies.cheapest_capable import cheapest_capable
from schemas.config import SwitchyardConfig
from schemas.decision import CandidateVerdict
from schemas.plan import AnswerCheck
from schemas.router_artifact import Calibration


class CheckedModels(Protocol):
    """Which models have a learned answer check (``answer_verifier.AnswerVerifier``)."""

    def knows(self, model: str) -> bool: ...


class QualityPredictor(Protocol):
    """What the strategy needs of a trained model (``processors.learning.quality_model``)."""

    @property
    def version(self) -> str: ...

    @property
    def calibration(self) -> Calibration | None: ...

    @property
    def reference_model(self) -> str: ...

    @property
    def cascade_calibration(self) -> Calibration | None: ...

    @property
    def verifier(self) -> CheckedModels | None: ...

    def relative_size(self, prompt_chars: int) -> float: ...

    def predict(self, text: str, task: str) -> dict[str, float]: ...

    def prime(self, texts: Sequence[str]) -> None: ...


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

    def prime(self, texts: Sequence[str]) -> None:
        """Featurise a batch's prompts at once before routing it (a speed-up only)."""
        if self.model is not None:
            self.model.prime(texts)

    def _predicted(self, inp: StrategyInput) -> dict[str, float]:
        """Predicted quality per eligible catalogue model the router knows."""
        if self.model is None:
            return {}
        predicted = self.model.predict(inp.text, inp.task)
        found = {}
        for verdict in inp.verdicts:
            if verdict.eligible:
                known = predicted.get(self.aliases.get(verdict.model, verdict.model))
                if known is not None:
                    found[verdict.model] = known
        return found

    @staticmethod
    def _rescored(inp: StrategyInput, predicted: Mapping[str, float]) -> list[CandidateVerdict]:
        """The verdicts with each known model's predicted quality."""
        return [
            v.model_copy(update={"quality_score": predicted[v.model]})
            if v.model in predicted
            else v
            for v in inp.verdicts
        ]

    def choose(self, inp: StrategyInput) -> Choice | None:
        predicted = self._predicted(inp)
        calibration = self.model.calibration if self.model is not None else None
        if self.model is not None and calibration is not None:
            choice = self._by_lambda(inp, predicted, calibration, self.model)
        else:
            rescored = self._rescored(inp, predicted)
            choice = cheapest_capable(rescored, inp.target, inp.max_fallbacks, inp.chains)
        if choice is None:
            return None
        eligible = sum(v.eligible for v in inp.verdicts)
        source = (
            f"predicted for {len(predicted)} of {eligible} models"
            if predicted
            else "no model predicted; configured qualities"
        )
        scores = {m: round(q, 4) for m, q in predicted.items()}
        return Choice(choice.chosen, choice.fallbacks, f"{choice.reason} ({source})", scores)

    def _by_lambda(
        self,
        inp: StrategyInput,
        predicted: Mapping[str, float],
        calibration: Calibration,
        model: QualityPredictor,
    ) -> Choice | None:
        """argmax predicted quality - lambda x cost; only the verdicts kept are copied."""
        eligible = [v for v in inp.verdicts if v.eligible]
        if not eligible:
            return None
        lam, why = _lambda(calibration, inp)
        scale = lam / self._cost_unit(inp.verdicts, model, len(inp.text))
        ranked = sorted(
            eligible,
            key=lambda v: (
                scale * v.estimated_cost_usd - predicted.get(v.model, v.quality_score),
                v.estimated_cost_usd,
                v.model,
            ),
        )
        chosen, rest = ranked[0], ranked[1:]
        preferred = (inp.chains or {}).get(chosen.model, [])
        if preferred:
            rank = {name: i for i, name in enumerate(preferred)}
            rest.sort(key=lambda v: rank.get(v.model, len(rank)))  # stable: utility order stays
        kept = [
            v.model_copy(update={"quality_score": predicted[v.model]})
            if v.model in predicted
            else v
            for v in [chosen, *rest[: inp.max_fallbacks]]
        ]
        reason = (
            f"best predicted quality - {lam:.4g} x cost of {len(eligible)} eligible models "
            f"(lambda calibrated for {why})"
        )
        return Choice(kept[0], kept[1:], reason)

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

    def cascade_choice(self, inp: StrategyInput) -> Choice | None:
        """The cascade with learned checks (``processors.learning.cascade_route``), live:
        the first rung by the value of trying it first, then the next rung and the
        threshold under which its check's P(good) escalates. None without checks."""
        model = self.model
        calibration = model.cascade_calibration if model is not None else None
        verifier = model.verifier if model is not None else None
        if model is None or calibration is None or verifier is None:
            return None
        predicted = self._predicted(inp)
        rescored = self._rescored(inp, predicted)
        scores = {m: round(q, 4) for m, q in predicted.items()}
        eligible = [v for v in rescored if v.eligible]
        if not eligible:
            return None
        lam, why = _lambda(calibration, inp)
        unit = self._cost_unit(rescored, model, len(inp.text))
        utility = {v.model: v.quality_score - lam * v.estimated_cost_usd / unit for v in eligible}

        def checked(v: CandidateVerdict) -> bool:
            return verifier.knows(self.aliases.get(v.model, v.model))

        def value(v: CandidateVerdict) -> float:
            others = [u for m, u in utility.items() if m != v.model]
            if not checked(v) or not others:
                return utility[v.model]
            return utility[v.model] + (1 - v.quality_score) * max(0.0, max(others))

        ranked = sorted(eligible, key=lambda v: (-value(v), v.estimated_cost_usd, v.model))
        first, rest = (
            ranked[0],
            sorted(ranked[1:], key=lambda v: (-utility[v.model], v.estimated_cost_usd, v.model)),
        )
        if not checked(first) or not rest:
            reason = f"{first.model} straight away (lambda {lam:.4g} for {why}; no check)"
            return Choice(first, rest[: inp.max_fallbacks], reason, scores)
        top = rest[0]
        threshold = round(utility[top.model], 6)
        reason = (
            f"cascade {first.model} -> {top.model}: escalate when the learned check of "
            f"{first.model}'s answer is under {threshold:.3f} (lambda {lam:.4g} for {why})"
        )
        return Choice(
            first,
            rest[: 1 + inp.max_fallbacks],
            reason,
            scores,
            cascade=[first.model, top.model],
            check=AnswerCheck(kind="learned", threshold=threshold),
        )


def _lambda(calibration: Calibration, inp: StrategyInput) -> tuple[float, str]:
    """The request's lambda: its quality_target's calibrated point, else its tier's."""
    if inp.request.quality_target is not None:
        return (
            lambda_for_target(calibration, inp.request.quality_target),
            f"quality_target {inp.request.quality_target:g}",
        )
    tier = calibration.tiers.get(inp.quality)
    if tier is None:
        return 0.0, f"uncalibrated tier {inp.quality}"
    return tier.lam, f"tier {inp.quality}"


def uses_learned(config: SwitchyardConfig) -> bool:
    """Whether any route may ask the learned router: worth priming its batches."""
    routing = config.routing
    names: set[str | None] = {routing.strategy, *routing.strategy_by_task.values()}
    for spec in config.tenants.values():
        names |= {spec.strategy, *spec.strategy_by_task.values()}
    return "learned" in names or ("cascade" in names and routing.cascade.check.kind == "learned")
