"""Tiers and quality targets calibrated on train: held-out rows land on the goal,
and live routing makes the choice ``router predict`` prints."""

from datetime import UTC, datetime

import numpy as np
import pytest

from processors.learning.calibration import (
    calibrate,
    lambda_for_target,
    parse_tier_goals,
    setting_lambda,
)
from processors.learning.evaluation import evaluate
from processors.learning.quality_model import QualityModel, choose_for_lambda_batch
from processors.learning.training import train_router
from processors.strategies import Learned, StrategyInput
from schemas.errors import UsageError
from schemas.outcomes import OutcomeRow
from tests.helpers import make_request, verdict
from tests.synthetic_outcomes import synthetic_rows

NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def router() -> QualityModel:
    rows = [OutcomeRow.model_validate({**r, "split": "train"}) for r in synthetic_rows(900)]
    manifest, arrays = train_router({"train": rows}, NOW)
    return QualityModel(manifest, arrays)


def held_out(n: int = 3000) -> list[OutcomeRow]:
    """Rows the router never saw: the same generator, another seed."""
    return [OutcomeRow.model_validate({**r, "split": "test"}) for r in synthetic_rows(n, seed=99)]


def test_each_tier_meets_its_goal_on_held_out_rows(router: QualityModel) -> None:
    from commands.router_inputs import eval_input

    calibration = router.calibration
    assert calibration is not None and calibration.strongest_model == "gamma-large"
    assert set(calibration.tiers) == {"economy", "balanced", "premium"}
    lams = [calibration.tiers[t].lam for t in ("premium", "balanced", "economy")]
    assert lams == sorted(lams) and lams[0] < lams[-1]  # a lower goal spends less
    report = evaluate(eval_input(router, held_out()))
    found = {c.name: c for c in report.calibrated}
    for tier, goal in (("economy", 0.90), ("balanced", 0.95), ("premium", 0.99)):
        result = found[tier]
        assert result.reached_on_train and result.goal == goal
        assert abs(result.quality_share - goal) <= 0.02, (tier, result.quality_share)
        assert result.within_2_points
        assert result.quality_share_ci.low <= result.quality_share <= result.quality_share_ci.high
        assert result.cost_share < 1.0
        assert result.zero_router_quality is not None
        assert result.quality > result.zero_router_quality
    assert report.settings_20_80 > 0 and report.settings_below_zero_router_20_80 == 0


def test_the_largest_lambda_still_reaching_the_target_is_chosen() -> None:
    # Two models; the strong one is right on rows 0-5, the cheap one on rows 0-2.
    # Predictions rank rows 3-5 as the ones where the strong model helps most.
    score = np.array([[1, 1]] * 3 + [[0, 1]] * 3 + [[0, 0]] * 4, dtype=float)
    cost = np.tile([1.0, 10.0], (10, 1))
    quality = np.array([[0.9, 0.95]] * 3 + [[0.2, 0.9]] * 3 + [[0.5, 0.6]] * 4)
    goals = {"economy": (0.5, False), "balanced": (1.0, False), "premium": (0.8, True)}
    cal = calibrate(["cheap", "strong"], quality, cost, score, cost, 10.0, goals, folds=5)
    assert cal.strongest_model == "strong" and cal.strongest_quality == pytest.approx(0.6)
    for tier, reach in (("economy", 0.3), ("balanced", 0.6)):
        point = cal.tiers[tier]
        assert point.reached and point.quality >= reach
        chosen = choose_for_lambda_batch(quality, cost, point.lam, 10.0)
        assert score[np.arange(10), chosen].mean() >= reach
        # Any larger lambda on the curve falls short: the cheapest setting that reaches it.
        for p in cal.curve:
            if p.lam > point.lam:
                assert p.quality < point.target
    assert not cal.tiers["premium"].reached and cal.tiers["premium"].lam == 0.0
    assert lambda_for_target(cal, 0.3) == cal.tiers["economy"].lam
    assert lambda_for_target(cal, 0.99) == 0.0


def test_tier_goals_parse_and_refuse_nonsense() -> None:
    assert parse_tier_goals("") == {
        "economy": (0.90, False),
        "balanced": (0.95, False),
        "premium": (0.99, False),
    }
    assert parse_tier_goals("economy=0.8, premium=quality:0.85")["premium"] == (0.85, True)
    assert parse_tier_goals("economy=0.8")["economy"] == (0.8, False)
    for bad in ("gold=0.9", "economy", "economy=x", "economy=0", "premium=quality:1.5"):
        with pytest.raises(UsageError):
            parse_tier_goals(bad)


def test_setting_lambda_needs_a_calibration(router: QualityModel) -> None:
    assert setting_lambda(None, None, None, 0.3) == (0.3, "given")
    with pytest.raises(UsageError, match="retrain"):
        setting_lambda(None, "economy", None, None)
    cal = router.calibration
    assert cal is not None
    assert setting_lambda(cal, None, None, None)[0] == cal.tiers["balanced"].lam
    assert setting_lambda(cal, "premium", None, None)[0] == cal.tiers["premium"].lam


def test_live_routing_makes_the_offline_choice(router: QualityModel) -> None:
    """A catalogue priced like the data: the live strategy picks what predict prints."""
    cal = router.calibration
    assert cal is not None
    rows = held_out(150)
    quality = router.predict_batch([r.prompt for r in rows], [r.task for r in rows])
    cost = router.predict_cost_batch([len(r.prompt) for r in rows])
    strategy = Learned(router, {})
    for tier in ("economy", "balanced", "premium"):
        chosen = choose_for_lambda_batch(quality, cost, cal.tiers[tier].lam, router.reference_cost)
        for i, row in enumerate(rows):
            verdicts = [verdict(m, float(cost[i, j]), 0.5) for j, m in enumerate(router.models)]
            inp = StrategyInput(
                request=make_request(row.prompt),
                text=row.prompt,
                task=row.task,
                quality=tier,  # type: ignore[arg-type]
                target=0.0,
                verdicts=verdicts,
                max_fallbacks=2,
            )
            choice = strategy.choose(inp)
            assert choice is not None
            assert choice.chosen.model == router.models[chosen[i]], (tier, i)
            assert "calibrated for tier " + tier in choice.reason
    # A request's quality_target maps through the same curve.
    row = rows[0]
    target = cal.tiers["balanced"].target
    inp = StrategyInput(
        request=make_request(row.prompt, quality_target=target),
        text=row.prompt,
        task=row.task,
        quality="economy",
        target=target,
        verdicts=[verdict(m, float(cost[0, j]), 0.5) for j, m in enumerate(router.models)],
        max_fallbacks=2,
    )
    choice = strategy.choose(inp)
    assert choice is not None and f"quality_target {target:g}" in choice.reason
    lam = lambda_for_target(cal, target)
    expected = choose_for_lambda_batch(quality[:1], cost[:1], lam, router.reference_cost)
    assert choice.chosen.model == router.models[expected[0]]
