"""Routing strategies behind one interface.

A strategy takes a request (already classified) and the verdict of policy on
every catalogue model, and returns a choice: the model, its fallbacks, a
reason, the quality it predicted per model and, for a cascade, the ladder.
Config picks a strategy per tenant and task (``SwitchyardConfig.strategy_for``):

- ``cheapest-capable``: the cheapest eligible model whose configured quality for
  the task reaches the target (``processors.route``).
- ``rules``: a task x tier table of models in preference order, from config.
- ``learned``: the same choice over qualities *predicted from the prompt* by a
  trained model (``processors.learned``).
- ``cascade``: cheap models first, escalating when an answer fails a check
  (``processors.cascade``).
"""

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from processors.latency import LatencyEstimate
from processors.route import Choice, cheapest_capable
from schemas.config import StrategyName
from schemas.decision import CandidateVerdict
from schemas.messages import InferenceRequest, Quality


@dataclass(frozen=True)
class StrategyInput:
    request: InferenceRequest
    text: str  # the prompt text the learned model reads
    task: str
    quality: Quality
    target: float  # quality to reach, in [0, 1]
    verdicts: list[CandidateVerdict]
    max_fallbacks: int
    chains: Mapping[str, list[str]] = field(default_factory=dict)
    latency: Mapping[str, LatencyEstimate] = field(default_factory=dict)


class Strategy(Protocol):
    name: StrategyName

    def choose(self, inp: StrategyInput) -> Choice | None: ...


class CheapestCapable:
    name: StrategyName = "cheapest-capable"

    def choose(self, inp: StrategyInput) -> Choice | None:
        return cheapest_capable(inp.verdicts, inp.target, inp.max_fallbacks, inp.chains)


class Rules:
    """First eligible model of the task's (or ``*``'s) list for the tier.

    With no rule for the task and tier, or no eligible model in it, the
    choice falls back to cheapest-capable and the reason says so.
    """

    name: StrategyName = "rules"

    def __init__(self, table: Mapping[str, Mapping[Quality, list[str]]]) -> None:
        self.table = table

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


def demote_unhealthy(
    choice: Choice, latency: Mapping[str, LatencyEstimate], max_error_rate: float
) -> Choice:
    """A chosen model failing more than ``max_error_rate`` of recent calls goes behind
    its first healthy fallback: traffic moves before its circuit has to open."""

    def sick(v: CandidateVerdict) -> bool:
        found = latency.get(v.model)
        return found is not None and found.observed and found.error_rate > max_error_rate

    if not sick(choice.chosen):
        return choice
    healthy = next((f for f in choice.fallbacks if not sick(f)), None)
    if healthy is None:
        return choice
    rest = [f for f in choice.fallbacks if f is not healthy]
    rate = latency[choice.chosen.model].error_rate
    return Choice(
        healthy,
        [choice.chosen, *rest],
        f"{choice.chosen.model} failing {rate:.0%} of recent calls; {healthy.model} first "
        f"(was: {choice.reason})",
        predicted=choice.predicted,
        cascade=[],
    )


def uniform_share(request_id: str) -> float:
    """A stable number in [0, 1) per request_id, for sampling without a random source."""
    return zlib.crc32(request_id.encode()) / 2**32


def shadow_model(
    choice: Choice,
    request_id: str,
    share: float,
    target: float = 0.0,
    unsure_margin: float | None = None,
) -> str | None:
    """The runner-up, for ``share`` of requests: where the router would have gone next.

    With ``unsure_margin``, only requests the router is unsure of are sampled:
    those whose chosen model's *predicted* quality lies within the margin of
    the target, where a wrong prediction changes the choice. Requests without
    a prediction (other strategies, models the router does not know) count as
    unsure: nothing says otherwise.
    """
    if share <= 0 or not choice.fallbacks:
        return None
    predicted = choice.predicted.get(choice.chosen.model)
    if unsure_margin is not None and predicted is not None:
        if abs(predicted - target) > unsure_margin:
            return None
    if uniform_share(request_id) >= share:
        return None
    return choice.fallbacks[0].model
