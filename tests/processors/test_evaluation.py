"""Evaluation math on examples small enough to compute by hand."""

import numpy as np
import pytest

from processors.learning.evaluation import (
    EvalInput,
    area_quality,
    cost_to_reach,
    evaluate,
    frontier_at,
    lambda_grid,
    upper_envelope,
)


def test_envelope_drops_points_under_a_chord_and_dominated_points() -> None:
    points = [(0.0, 0.5), (1.0, 0.6), (2.0, 0.9), (3.0, 0.85), (1.5, 0.5), (2.0, 0.7)]
    assert upper_envelope(points) == [(0.0, 0.5), (2.0, 0.9)]


def test_envelope_keeps_concave_vertices_and_drops_collinear_ones() -> None:
    points = [(0.0, 0.0), (1.0, 0.5), (2.0, 0.75), (3.0, 1.0), (4.0, 1.0)]
    # (2, 0.75) is on the chord from (1, 0.5) to (3, 1.0); (4, 1.0) costs more for nothing.
    assert upper_envelope(points) == [(0.0, 0.0), (1.0, 0.5), (3.0, 1.0)]


def test_frontier_is_interpolated_undefined_left_and_flat_right() -> None:
    hull = [(0.0, 0.5), (2.0, 0.9)]
    assert frontier_at(hull, 1.0) == pytest.approx(0.7)
    assert frontier_at(hull, 5.0) == pytest.approx(0.9)
    assert frontier_at(hull, -0.1) is None
    assert frontier_at([], 1.0) is None


def test_area_extends_flat_to_the_right_and_is_zero_left_of_the_frontier() -> None:
    hull = [(0.0, 0.5), (2.0, 0.9)]
    # (0.5 + 0.9) / 2 * 2 = 1.4 on [0, 2], then 0.9 * 2 = 1.8 on [2, 4]: 3.2 / 4.
    assert area_quality(hull, 0.0, 4.0) == pytest.approx(0.8)
    # Starting at 1 on [0, 2]: nothing on [0, 1], then (0.7 + 0.9) / 2 on [1, 2].
    assert area_quality([(1.0, 0.7), (2.0, 0.9)], 0.0, 2.0) == pytest.approx(0.4)
    assert area_quality(hull, 1.0, 1.0) == pytest.approx(0.7)


def test_cost_to_reach_interpolates_and_says_none_when_never() -> None:
    hull = [(0.0, 0.5), (2.0, 0.9)]
    assert cost_to_reach(hull, 0.8) == pytest.approx(1.5)
    assert cost_to_reach(hull, 0.4) == 0.0
    assert cost_to_reach(hull, 0.95) is None


def _four_prompts(quality_b: list[float]) -> EvalInput:
    """Cheap model a (cost 1) and strong b (cost 9) on four prompts.

    a is right on prompt 0 only (0.25), b on prompts 0-2 (0.75). The oracle
    takes a on prompts 0 and 3 (both tie there) and b on 1 and 2: cost 5, 0.75.
    """
    return EvalInput(
        models=["a", "b"],
        score=np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]]),
        cost=np.array([[1.0, 9.0]] * 4),
        quality=np.column_stack([np.full(4, 0.5), quality_b]),
        predicted_cost=np.array([[1.0, 9.0]] * 4),
        reference_cost=9.0,
    )


def test_perfect_ranking_by_hand() -> None:
    # Predicted gains of b over a are 0.1, 0.4, 0.3, 0.2: raising lambda's price sends
    # prompts 1, 2, 3, 0 to a in reverse, so the sweep passes through (cost, quality)
    # (1, .25), (3, .5), (5, .75), (7, .75), (9, .75). The frontier is (1, .25)-(5, .75).
    report = evaluate(_four_prompts([0.6, 0.9, 0.8, 0.7]))
    assert (report.strongest_model, report.cheapest_model) == ("b", "a")
    assert (report.strongest_cost, report.strongest_quality) == (9.0, 0.75)
    assert (report.cheapest_cost, report.cheapest_quality) == (1.0, 0.25)
    assert (report.oracle_cost, report.oracle_quality) == (5.0, 0.75)
    assert report.router.frontier == [(1.0, 0.25), (5.0, 0.75)]
    # AIQ on [1, 9]: (0.25 + 0.75) / 2 * 4 + 0.75 * 4 = 5, over 8.
    assert report.aiq == pytest.approx(0.625)
    assert report.random_aiq == pytest.approx(0.5)
    assert report.zero_router_aiq == pytest.approx(0.5)
    assert report.oracle_aiq == pytest.approx(0.625)
    # 95% of 0.75 = 0.7125: router 1 + 0.4625 / 0.125 = 4.7; random 1 + 0.4625 / 0.0625 = 8.4.
    assert report.cost_at_95pct_strongest == pytest.approx(4.7)
    assert report.cost_at_95pct_ratio == pytest.approx(4.7 / 9)
    assert report.baselines["random"].cost_at_95pct_strongest == pytest.approx(8.4)
    assert report.baselines["always_strongest"].cost_at_95pct_strongest == 9.0
    assert report.baselines["always_cheapest"].cost_at_95pct_strongest is None
    assert report.quality_at_strongest_cost == pytest.approx(0.75)
    # Half the gap (0.5) with one prompt of four on b; 80% (0.65) needs two.
    assert (report.cpt_50, report.cpt_80) == (0.25, 0.5)
    assert (report.random_cpt_50, report.random_cpt_80) == (0.5, 0.8)
    first, last = report.hull_check[0], report.hull_check[-1]
    assert (first.fraction, first.cost_usd) == (0.2, pytest.approx(1.8))
    assert first.router == pytest.approx(0.35)
    assert first.zero_router == pytest.approx(0.3)
    assert last.margin == pytest.approx(0.75 - (0.25 + 6.2 / 16))
    assert report.above_zero_router_20_80


def test_reversed_ranking_is_not_above_the_zero_router() -> None:
    # Now b looks best exactly where it does not help: every mix is under the straight
    # line, so the frontier is that line (its ends are all-a and all-b), never above.
    report = evaluate(_four_prompts([0.9, 0.6, 0.6, 0.9]))
    assert report.router.frontier == [(1.0, 0.25), (9.0, 0.75)]
    assert report.aiq == pytest.approx(report.zero_router_aiq)
    assert all(check.margin == pytest.approx(0) for check in report.hull_check)
    assert not report.above_zero_router_20_80
    assert report.cpt_50 == 1.0  # prompts 0 and 3 go to b first, for nothing


def test_lambda_grid_spans_all_cheapest_to_all_best() -> None:
    inp = _four_prompts([0.6, 0.9, 0.8, 0.7])
    grid = lambda_grid(inp.quality, inp.predicted_cost, inp.reference_cost)
    assert grid[0] == 0.0
    flips = [gain * 9 / 8 for gain in (0.1, 0.2, 0.3, 0.4)]
    for flip in flips:
        assert any(lam == pytest.approx(flip) for lam in grid)
    assert max(grid) > max(flips) and min(g for g in grid if g > 0) < min(flips)


def test_single_model_has_zero_width_and_no_cpt() -> None:
    report = evaluate(
        EvalInput(
            models=["only"],
            score=np.array([[1.0], [0.0]]),
            cost=np.array([[2.0], [2.0]]),
            quality=np.array([[0.7], [0.7]]),
            predicted_cost=np.array([[2.0], [2.0]]),
            reference_cost=2.0,
        )
    )
    assert report.aiq == pytest.approx(0.5)
    assert report.cpt_50 is None and report.random_cpt_50 is None
    assert report.cost_at_95pct_strongest == 2.0


def test_no_prompts_is_an_error() -> None:
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match="no test prompts"):
        evaluate(EvalInput(["a", "b"], empty, empty, empty, empty, 1.0))
