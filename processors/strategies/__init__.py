"""Routing strategies behind one base class, and the registry config names refer to.

Config picks a strategy per tenant and task (``SwitchyardConfig.strategy_for``)
by a ``StrategyName``; ``STRATEGIES`` maps each name to its class, and
``strategy_named`` builds one from config and the routing context:

- ``cheapest-capable``: the cheapest eligible model whose configured quality for
  the task reaches the target.
- ``rules``: a task x tier table of models in preference order, from config.
- ``learned``: the same choice over qualities *predicted from the prompt* by a
  trained model.
- ``cascade``: cheap models first, escalating when an answer fails a check.

Adding a strategy: subclass ``Strategy`` in a module here (``choose``, and
``from_config`` if it has settings), add its name to ``StrategyName`` and its
class to ``STRATEGIES``.
"""

from processors.strategies.base import (
    Choice,
    Strategy,
    StrategyContext,
    StrategyInput,
    demote_unhealthy,
    shadow_model,
    uniform_share,
)
from processors.strategies.cascade import Cascade
from processors.strategies.cheapest_capable import CheapestCapable, cheapest_capable
from processors.strategies.learned import Learned, QualityPredictor
from processors.strategies.rules import Rules
from schemas.config import StrategyName, SwitchyardConfig
from schemas.errors import InternalError

STRATEGIES: dict[StrategyName, type[Strategy]] = {
    cls.name: cls for cls in (CheapestCapable, Rules, Learned, Cascade)
}


def strategy_named(
    name: StrategyName, config: SwitchyardConfig, context: StrategyContext
) -> Strategy:
    """The strategy config calls ``name``; an unregistered name is a bug (config
    validation admits only ``StrategyName``s), so it raises ``InternalError``."""
    found = STRATEGIES.get(name)
    if found is None:
        raise InternalError(f"no routing strategy is registered as {name!r}")
    return found.from_config(config, context)


__all__ = [
    "STRATEGIES",
    "Cascade",
    "CheapestCapable",
    "Choice",
    "Learned",
    "QualityPredictor",
    "Rules",
    "Strategy",
    "StrategyContext",
    "StrategyInput",
    "cheapest_capable",
    "demote_unhealthy",
    "shadow_model",
    "strategy_named",
    "uniform_share",
]
