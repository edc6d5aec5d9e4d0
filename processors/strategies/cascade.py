"""The ``cascade`` strategy: cheap models first, escalating when an answer fails a check.

With ``routing.cascade.check: {kind: learned}`` and a router trained with
answer checks, the ladder and the check's threshold come from the learned
router instead (``Learned.cascade_choice``, the rule ``router eval`` measures);
otherwise:

A cascade answers with the cheapest eligible model first and accepts the
answer only if it passes a check (``processors.cascade.check_answer``, run by
the provider worker); otherwise the next rung (dearer, better) answers. The
last rung is the model cheapest-capable would have chosen, so a cascade never
ends below the quality a plain route would give, and its answer is not checked.
"""

from processors.strategies.base import Choice, Strategy, StrategyContext, StrategyInput
from processors.strategies.cheapest_capable import cheapest_capable
from processors.strategies.learned import Learned
from schemas.config import SwitchyardConfig


class Cascade(Strategy):
    name = "cascade"

    def __init__(self, max_rungs: int, learned: Learned | None = None) -> None:
        self.max_rungs = max_rungs
        self.learned = learned

    @classmethod
    def from_config(cls, config: SwitchyardConfig, context: StrategyContext) -> Strategy:
        learned = context.learned if config.routing.cascade.check.kind == "learned" else None
        return cls(
            config.routing.cascade.max_rungs, learned if isinstance(learned, Learned) else None
        )

    def choose(self, inp: StrategyInput) -> Choice | None:
        if self.learned is not None:
            found = self.learned.cascade_choice(inp)
            if found is not None:
                return found
        top = cheapest_capable(inp.verdicts, inp.target, inp.max_fallbacks, inp.chains)
        if top is None:
            return None
        cheaper = sorted(
            (
                v
                for v in inp.verdicts
                if v.eligible and v.estimated_cost_usd < top.chosen.estimated_cost_usd
            ),
            key=lambda v: (v.estimated_cost_usd, -v.quality_score, v.model),
        )[: self.max_rungs - 1]
        if not cheaper:
            return Choice(top.chosen, top.fallbacks, f"{top.reason}; nothing cheaper to try first")
        ladder = [*cheaper, top.chosen]
        rest = [f for f in top.fallbacks if f not in ladder]
        return Choice(
            ladder[0],
            [*ladder[1:], *rest][: len(ladder) - 1 + inp.max_fallbacks],
            f"cascade {' -> '.join(v.model for v in ladder)}; top rung: {top.reason}",
            cascade=[v.model for v in ladder],
        )
