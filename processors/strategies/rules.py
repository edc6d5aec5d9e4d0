"""The ``rules`` strategy: a task x tier table of models in preference order, from config."""

from collections.abc import Mapping

from processors.strategies.base import Choice, Strategy, StrategyContext, StrategyInput
from processors.strategies.cheapest_capable import cheapest_capable
from schemas.config import SwitchyardConfig
from schemas.messages import Quality


class Rules(Strategy):
    """First eligible model of the task's (or ``*``'s) list for the tier.

    With no rule for the task and tier, or no eligible model in it, the
    choice falls back to cheapest-capable and the reason says so.
    """

    name = "rules"

    def __init__(self, table: Mapping[str, Mapping[Quality, list[str]]]) -> None:
        self.table = table

    @classmethod
    def from_config(cls, config: SwitchyardConfig, context: StrategyContext) -> Strategy:
        return cls(config.routing.rules)

    def choose(self, inp: StrategyInput) -> Choice | None:
        rule = inp.task if inp.quality in self.table.get(inp.task, {}) else "*"
        # dict.fromkeys: a model listed twice must not become its own fallback
        listed = list(dict.fromkeys(self.table.get(rule, {}).get(inp.quality, [])))
        by_name = {v.model: v for v in inp.verdicts if v.eligible}
        ranked = [by_name[name] for name in listed if name in by_name]
        if not ranked:
            choice = cheapest_capable(inp.verdicts, inp.target, inp.max_fallbacks, inp.chains)
            if choice is None:
                return None
            why = "no rule" if not listed else "no eligible model in the rule"
            return Choice(choice.chosen, choice.fallbacks, f"{why} for {inp.task}/{inp.quality}; "
                          f"{choice.reason}")  # fmt: skip
        rest = [v for v in by_name.values() if v not in ranked]
        rest.sort(key=lambda v: (v.estimated_cost_usd, v.model))
        fallbacks = (ranked[1:] + rest)[: inp.max_fallbacks]
        return Choice(
            ranked[0], fallbacks, f"rule {rule}/{inp.quality}: first eligible of {listed}"
        )
