"""Evaluation math on hand-computable cases, and training on planted signal."""

from datetime import UTC, datetime

import numpy as np
import pytest

from processors.evaluation import Outcomes, area, cost_to_reach, quality_at, report, upper_hull
from processors.quality_model import choose_for_lambda, choose_for_target
from processors.training import train
from schemas.outcomes import OutcomeRow
from tests.routing_data import MODELS, synthetic_rows


def test_upper_hull_drops_dominated_and_concave_points() -> None:
    points = [(0.0, 0.5), (1.0, 0.6), (2.0, 0.9), (3.0, 0.85), (4.0, 1.0)]
    # (1, 0.6) lies under the chord from (0, .5) to (2, .9); (3, .85) is dominated.
    assert upper_hull(points) == [(0.0, 0.5), (2.0, 0.9), (4.0, 1.0)]


def test_quality_at_interpolates_and_is_flat_beyond_the_dearest_point() -> None:
    hull = [(0.0, 0.5), (2.0, 0.9)]
    assert quality_at(hull, 1.0) == pytest.approx(0.7)
    assert quality_at(hull, 5.0) == pytest.approx(0.9)
    assert quality_at([(1.0, 0.5)], 0.5) is None


def test_cost_to_reach_is_the_least_cost_on_the_frontier() -> None:
    hull = [(0.0, 0.5), (2.0, 0.9)]
    assert cost_to_reach(hull, 0.8) == pytest.approx(1.5)
    assert cost_to_reach(hull, 0.4) == 0.0
    assert cost_to_reach(hull, 0.95) is None


def test_area_is_the_mean_quality_over_the_cost_range() -> None:
    line = [(0.0, 0.5), (1.0, 1.0)]
    assert area(line, 0.0, 1.0) == pytest.approx(0.75, abs=1e-3)


def two_model_outcomes() -> Outcomes:
    # Prompt 0: only strong right; 1: both right; 2: only strong right; 3: both wrong.
    score = np.array([[0, 1], [1, 1], [0, 1], [0, 0]], dtype=float)
    cost = np.array([[1, 10], [1, 10], [1, 10], [1, 10]], dtype=float)
    return Outcomes(["a", "b", "c", "d"], ["cheap", "strong"], score, cost, dropped=0)


def test_a_perfect_router_reaches_the_strongest_quality_at_half_its_cost() -> None:
    data = two_model_outcomes()
    perfect = data.score.copy()  # knows exactly who answers
    predicted_cost = data.cost.copy()
    figures = report(data, perfect, predicted_cost, reference_cost=10.0)
    assert figures["strongest"] == "strong" and figures["cheapest"] == "cheap"
    assert figures["strongest_quality"] == pytest.approx(0.75)
    assert figures["oracle_quality"] == pytest.approx(0.75)
    # Strong on prompts 0 and 2 only: cost (1 + 10 + 1 + 10 + ... ) / 4 = 5.5, quality 0.75.
    assert figures["cost_at_95pct_strongest"] <= 5.5 + 1e-9
    # Prompts 0 and 2 look alike to it, so they go strong together: half the calls
    # recover the whole gap (random routing needs 50% and 80% of calls).
    assert figures["cpt_50"] == pytest.approx(0.5)
    assert figures["cpt_80"] == pytest.approx(0.5)
    assert figures["aiq"] > figures["random_aiq"]
    assert figures["above_zero_router_20_80"] is True


def test_a_router_predicting_nothing_does_not_beat_the_zero_router() -> None:
    data = two_model_outcomes()
    flat = np.full_like(data.score, 0.5)
    figures = report(data, flat, data.cost.copy(), reference_cost=10.0)
    assert figures["above_zero_router_20_80"] is False
    assert figures["aiq"] <= figures["zero_router_aiq"] + 1e-9


def test_choices_by_target_and_by_lambda() -> None:
    quality = {"s": 0.6, "m": 0.8, "l": 0.95}
    cost = {"s": 1.0, "m": 3.0, "l": 10.0}
    assert choose_for_target(quality, cost, 0.7) == "m"
    assert choose_for_target(quality, cost, 0.99) == "l"  # none reaches it: the best
    assert choose_for_target(quality, cost, 0.0) == "s"
    assert choose_for_lambda(quality, cost, 0.0, reference_cost=10.0) == "l"
    assert choose_for_lambda(quality, cost, 1.0, reference_cost=10.0) == "s"


def test_training_on_planted_signal_beats_the_zero_router() -> None:
    rows = [OutcomeRow.model_validate(r) for r in synthetic_rows()]
    model, summary = train(rows, datetime(2026, 11, 23, tzinfo=UTC))
    assert sorted(model.models) == sorted(MODELS)
    test = [r for r in rows if r.effective_split == "test"]
    easy = model.predict("easy arithmetic sum the of item", "synthetic")
    hard = model.predict("hard proof lemma the of item", "synthetic")
    assert easy["alpha-small"] > 0.7 > hard["alpha-small"]
    names = list(MODELS)
    data = Outcomes(
        [r.id for r in test],
        names,
        np.array([[r.outcomes[m].score for m in names] for r in test]),
        np.array([[r.outcomes[m].cost_usd for m in names] for r in test]),
        dropped=0,
    )
    predicted = model.predict_batch([r.prompt for r in test], [r.task for r in test])
    q = np.array([[p[m] for m in names] for p in predicted])
    c = np.array([[model.predict_cost(len(r.prompt))[m] for m in names] for r in test])
    figures = report(data, q, c, model.reference_cost)
    assert figures["above_zero_router_20_80"] is True
    assert figures["aiq"] > figures["zero_router_aiq"]
    assert summary["strongest"] == "gamma-large"
