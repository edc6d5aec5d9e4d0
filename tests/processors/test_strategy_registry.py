"""The strategy registry: every configurable name has a class, built from config and context."""

from typing import Any, get_args

import pytest

from processors.router import RoutingContext
from processors.strategies import (
    STRATEGIES,
    Cascade,
    CheapestCapable,
    Learned,
    Rules,
    Strategy,
    strategy_named,
)
from schemas.config import StrategyName
from schemas.errors import InternalError
from tests.helpers import sample_config

CONFIG = sample_config()


def test_every_strategy_name_has_a_class_registered_under_its_own_name() -> None:
    assert set(STRATEGIES) == set(get_args(StrategyName))
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, Strategy)
        assert cls.name == name


@pytest.mark.parametrize("name", get_args(StrategyName))
def test_strategy_named_builds_the_registered_class(name: StrategyName) -> None:
    assert type(strategy_named(name, CONFIG, RoutingContext())) is STRATEGIES[name]


def test_rules_and_cascade_take_their_settings_from_config() -> None:
    routing = CONFIG.routing.model_copy(
        update={
            "rules": {"*": {"economy": ["sim-small"]}},
            "cascade": CONFIG.routing.cascade.model_copy(update={"max_rungs": 5}),
        }
    )
    config = CONFIG.model_copy(update={"routing": routing})
    rules = strategy_named("rules", config, RoutingContext())
    cascade = strategy_named("cascade", config, RoutingContext())
    assert isinstance(rules, Rules) and rules.table == {"*": {"economy": ["sim-small"]}}
    assert isinstance(cascade, Cascade) and cascade.max_rungs == 5
    assert isinstance(strategy_named("cheapest-capable", config, RoutingContext()), CheapestCapable)


def test_learned_is_the_one_the_routing_context_carries() -> None:
    loaded = Learned(None, {"a": "b"})
    assert strategy_named("learned", CONFIG, RoutingContext(learned=loaded)) is loaded


def test_an_unknown_name_is_refused() -> None:
    unknown: Any = "random"
    with pytest.raises(InternalError, match="random"):
        strategy_named(unknown, CONFIG, RoutingContext())
