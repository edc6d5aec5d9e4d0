"""What every routing strategy shares: its input, its choice, its base class.

A strategy takes a request (already classified) and the verdict of policy on
every catalogue model, and returns a ``Choice``: the model, its fallbacks, a
reason, the quality it predicted per model and, for a cascade, the ladder.
Two adjustments apply to any strategy's choice, so they live here too:
``shadow_model`` (the runner-up sampled for comparison) and
``demote_unhealthy`` (a failing model goes behind a healthy fallback).
"""

import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from processors.latency import LatencyEstimate
from schemas.config import StrategyName, SwitchyardConfig
from schemas.decision import CandidateVerdict
from schemas.messages import InferenceRequest, Quality
from schemas.plan import AnswerCheck


@dataclass(frozen=True)
class Choice:
    chosen: CandidateVerdict
    fallbacks: list[CandidateVerdict]
    reason: str
    predicted: dict[str, float] = field(default_factory=dict)  # learned quality per model
    cascade: list[str] = field(default_factory=list)  # models tried cheapest first
    check: AnswerCheck | None = None  # the cascade's check for this request, else config's

    def cost_usd(self, verdicts: list[CandidateVerdict]) -> float:
        """What serving it may cost, the most any path through it can pay: a cascade may
        pay every rung; a chain pays one answer, from whichever model gives it, so the
        dearest of its models (failed calls are not charged)."""
        if self.cascade:
            return sum(v.estimated_cost_usd for v in verdicts if v.model in self.cascade)
        return max(v.estimated_cost_usd for v in [self.chosen, *self.fallbacks])


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


class StrategyContext(Protocol):
    """What a strategy may be built from besides config (``processors.router.RoutingContext``)."""

    @property
    def learned(self) -> "Strategy": ...


class Strategy(ABC):
    """One way of choosing a model; ``processors.strategies.STRATEGIES`` maps names to these."""

    name: ClassVar[StrategyName]

    @classmethod
    def from_config(cls, config: SwitchyardConfig, context: StrategyContext) -> "Strategy":
        """The strategy as ``config`` (and the routing context) set it up; the default
        takes no settings."""
        return cls()

    @abstractmethod
    def choose(self, inp: StrategyInput) -> Choice | None:
        """The model to call and its fallbacks; None when no model is eligible."""


def demote_unhealthy(
    choice: Choice,
    latency: Mapping[str, LatencyEstimate],
    max_error_rate: float,
    probe: bool = False,
) -> Choice:
    """A chosen model failing more than ``max_error_rate`` of recent calls goes behind
    its first healthy fallback: traffic moves before its circuit has to open.

    A ``probe`` job keeps the sick model first: without a trickle of jobs that
    reach it, its breaker never gets the call that would close it once it recovers
    (an open circuit costs such a job no call, only a skip to the fallback).
    """

    def sick(v: CandidateVerdict) -> bool:
        found = latency.get(v.model)
        return found is not None and found.observed and found.error_rate > max_error_rate

    if probe or not sick(choice.chosen):
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
