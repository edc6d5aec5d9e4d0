"""The ``cheapest-capable`` strategy: the cheapest eligible model that meets the quality target.

The other strategies reuse ``cheapest_capable`` over their own quality scores.
"""

from collections.abc import Mapping

from processors.strategies.base import Choice, Strategy, StrategyInput
from schemas.decision import CandidateVerdict


def cheapest_capable(
    verdicts: list[CandidateVerdict],
    quality_floor: float,
    max_fallbacks: int,
    chains: Mapping[str, list[str]] | None = None,
) -> Choice | None:
    """Cheapest eligible model at or above the floor; None if nothing is eligible.

    If no eligible model reaches the floor, the best-scoring one is chosen and
    the reason says so: a visible downgrade, never a silent one. Fallbacks are
    the chosen model's configured chain (``chains``) where those models are
    eligible too, then the other eligible models, capable ones first, by cost.
    """
    eligible = [v for v in verdicts if v.eligible]
    if not eligible:
        return None
    capable = sorted(
        (v for v in eligible if v.quality_score >= quality_floor),
        key=lambda v: (v.estimated_cost_usd, -v.quality_score, v.model),
    )
    if capable:
        chosen = capable[0]
        reason = f"cheapest of {len(capable)} eligible models with quality >= {quality_floor:.2f}"
    else:
        chosen = max(eligible, key=lambda v: (v.quality_score, -v.estimated_cost_usd))
        reason = (
            f"no eligible model reaches quality {quality_floor:.2f}; "
            f"best available scores {chosen.quality_score:.2f}"
        )
    rest = capable[1:] + sorted(
        (v for v in eligible if v not in capable and v is not chosen),
        key=lambda v: (-v.quality_score, v.estimated_cost_usd),
    )
    preferred = (chains or {}).get(chosen.model, [])
    rank = {name: i for i, name in enumerate(preferred)}
    rest.sort(key=lambda v: rank.get(v.model, len(rank)))  # stable: the rest keep their order
    return Choice(chosen=chosen, fallbacks=rest[:max_fallbacks], reason=reason)


class CheapestCapable(Strategy):
    """Cheapest-capable over each model's configured quality for the task."""

    name = "cheapest-capable"

    def choose(self, inp: StrategyInput) -> Choice | None:
        return cheapest_capable(inp.verdicts, inp.target, inp.max_fallbacks, inp.chains)
