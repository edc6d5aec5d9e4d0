"""The cascade with learned checks on test prompts: frontier and calibrated points.

The same figures as the plain router's (``evaluation``), for
``cascade_route.cascade_batch``: each lambda's point is the mean true score of
the answer returned and the mean true cost of *every* model called, so a
cascade pays for the cheap answer it threw away. Each tier's lambda comes from
the cascade's calibration on train.
"""

import numpy as np

from processors.learning.calibrated_eval import Outcome, auc, setting_of, shares
from processors.learning.cascade_route import cascade_batch, cascade_lambdas
from processors.learning.evaluation import (
    EvalInput,
    area_quality,
    cost_to_reach,
    frontier_at,
    hull_check,
    reference_column,
    upper_envelope,
)
from processors.learning.featurize import FloatArray
from schemas.router_artifact import Calibration
from schemas.router_eval import CalibratedResult, CascadeReport, EvalReport, Pair

BELOW = 1e-12


def evaluate_cascade(inp: EvalInput, report: EvalReport) -> CascadeReport | None:
    """The cascade's figures, or None when the router has no checks or calibration."""
    checked, cal = inp.checked, inp.cascade
    if checked is None or cal is None:
        return None
    strongest = inp.models.index(report.strongest_model)
    c_max, q_max = report.strongest_cost, report.strongest_quality
    zero = report.baselines["zero_router"].frontier
    points: list[Pair] = []
    swept = below = 0
    for lam in cascade_lambdas(inp.quality, inp.predicted_cost, checked, inp.reference_cost):
        choices = cascade_batch(inp.quality, inp.predicted_cost, checked, lam, inp.reference_cost)
        score, cost = choices.outcomes(inp.score, inp.cost)
        point = (float(cost.mean()), float(score.mean()))
        points.append(point)
        if 0.2 <= point[0] / c_max <= 0.8:
            swept += 1
            below += point[1] < (frontier_at(zero, point[0]) or 0.0) - BELOW
    hull = upper_envelope([*points, (report.cheapest_cost, report.cheapest_quality)])
    reached = cost_to_reach(hull, 0.95 * q_max)
    calibrated, escalated, straight = _calibrated(inp, cal, checked, strongest, zero)
    return CascadeReport(
        frontier=hull,
        aiq=area_quality(hull, report.cheapest_cost, c_max),
        cost_at_95pct_ratio=reached / c_max if reached is not None and c_max > 0 else None,
        quality_at_strongest_cost=frontier_at(hull, c_max),
        hull_check=hull_check(hull, zero, c_max),
        settings_20_80=swept,
        settings_below_zero_router_20_80=below,
        calibrated=calibrated,
        escalated_share=escalated,
        straight_share=straight,
        check_auc=_check_auc(inp.models, checked, inp.score),
    )


def _calibrated(
    inp: EvalInput, cal: Calibration, checked: FloatArray, strongest: int, zero: list[Pair]
) -> tuple[list[CalibratedResult], dict[str, float], dict[str, float]]:
    """Each tier's calibrated point on test, and the shares escalated and sent straight."""
    column = reference_column(inp.models, cal.strongest_model, strongest)
    top = Outcome(inp.score[:, column], inp.cost[:, column])
    found, escalated, straight = [], {}, {}
    for tier, tp in cal.tiers.items():
        choices = cascade_batch(
            inp.quality, inp.predicted_cost, checked, tp.lam, inp.reference_cost
        )
        score, cost = choices.outcomes(inp.score, inp.cost)
        escalated[tier] = float(np.mean(choices.second >= 0))
        straight[tier] = float(np.mean(choices.first == column))
        setting = setting_of(tier, tp, cal)
        found.append(shares(setting, Outcome(score, cost), top, lambda c: frontier_at(zero, c)))
    return found, escalated, straight


def _check_auc(
    models: list[str], checked: FloatArray, score: FloatArray
) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for j, model in enumerate(models):
        column: FloatArray = checked[:, j]
        known = ~np.isnan(column)
        if known.any():
            found[model] = auc(column[known], score[known, j])
    return found
