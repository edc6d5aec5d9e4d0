"""Tiers and quality targets as lambdas, calibrated on train rows only.

Live routing and ``router predict`` choose with the lambda rule
(``quality_model.choose_for_lambda``): it is the rule whose frontier ``router
eval`` measures best. A tier's goal (a share of the strongest model's quality,
or a quality itself) and a request's ``quality_target`` are turned into a
lambda here, from a curve measured on *out-of-fold* predictions of the train
split: each train row is predicted by classifiers fit on the other folds, so
the curve says what a setting does on prompts the predictor has not seen, and
no test row is read.

The curve is made monotone before it is used (the least-squares non-increasing
fit of quality over the lambda sweep), so a target maps to the largest lambda
whose fitted quality still reaches it: the fit averages the noise of
neighbouring lambdas instead of following their dips.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from processors.learning.evaluation import lambda_grid
from processors.learning.featurize import FloatArray
from processors.learning.quality_model import choose_for_lambda_batch
from schemas.errors import UsageError
from schemas.outcomes import OutcomeRow
from schemas.router_artifact import (
    DEFAULT_TIER_GOALS,
    TIERS,
    Calibration,
    CostModel,
    CurvePoint,
    TierPoint,
)

CURVE_POINTS = 400


Sweep = Callable[[float], tuple[FloatArray, FloatArray]]
"""lambda -> per train row, the true score of the answer returned and the true cost paid."""


def calibrate(
    models: list[str],
    quality: FloatArray,
    predicted_cost: FloatArray,
    score: FloatArray,
    cost: FloatArray,
    reference_cost: float,
    goals: Mapping[str, tuple[float, bool]],
    folds: int,
) -> Calibration:
    """The calibration of ``goals`` (tier -> (goal, absolute)) for the lambda rule on
    out-of-fold predictions. Rows are train prompts where every model has an
    outcome, columns ``models``."""
    rows = np.arange(score.shape[0])

    def routed(lam: float) -> tuple[FloatArray, FloatArray]:
        chosen = choose_for_lambda_batch(quality, predicted_cost, lam, reference_cost)
        return score[rows, chosen], cost[rows, chosen]

    lams = lambda_grid(quality, predicted_cost, reference_cost)
    return calibrate_sweep(models, lams, routed, score, cost, goals, folds)


def calibrate_sweep(
    models: list[str],
    lams: Sequence[float],
    sweep: Sweep,
    score: FloatArray,
    cost: FloatArray,
    goals: Mapping[str, tuple[float, bool]],
    folds: int,
) -> Calibration:
    """Each goal's largest lambda whose (monotone-fitted) train quality reaches it.

    ``score`` and ``cost`` are every model's true figures on the rows, for the
    strongest model's quality and cost that shares are of.
    """
    if score.shape[0] == 0:
        raise UsageError("no train row has an outcome for every model: nothing to calibrate on")
    means = score.mean(axis=0)
    strongest = min(range(len(models)), key=lambda m: (-means[m], cost[:, m].mean(), models[m]))
    grid = np.array(sorted(lams))
    q = np.empty(grid.size)
    c = np.empty(grid.size)
    for i, lam in enumerate(grid):
        got, paid = sweep(float(lam))
        q[i], c[i] = got.mean(), paid.mean()
    monotone = _decreasing_fit(q)
    q_strong = float(means[strongest])
    tiers = {}
    keep = set(np.unique(np.linspace(0, grid.size - 1, CURVE_POINTS).round().astype(int)))
    for tier, (goal, absolute) in goals.items():
        target = goal if absolute else goal * q_strong
        index = _last_reaching(monotone, target)
        i = index if index is not None else 0
        keep.add(i)
        tiers[tier] = TierPoint(
            goal=goal,
            absolute=absolute,
            target=round(target, 6),
            lam=float(grid[i]),
            quality=float(q[i]),
            cost_usd=float(c[i]),
            reached=index is not None,
        )
    curve = [
        CurvePoint(lam=float(grid[i]), quality=float(monotone[i]), cost_usd=float(c[i]))
        for i in sorted(keep)
    ]
    return Calibration(
        folds=folds,
        rows=int(score.shape[0]),
        strongest_model=models[strongest],
        strongest_quality=q_strong,
        strongest_cost_usd=float(cost[:, strongest].mean()),
        curve=curve,
        tiers=tiers,
    )


@dataclass(frozen=True)
class TrainMatrices:
    """The train rows where every model has an outcome, as matrices (columns ``models``):
    which rows they are, the cost the router predicts, and the true score and cost."""

    complete: list[int]
    predicted_cost: FloatArray
    score: FloatArray
    cost: FloatArray


def train_matrices(
    rows: Sequence[OutcomeRow], models: list[str], cost_models: Mapping[str, CostModel]
) -> TrainMatrices:
    complete = [i for i, row in enumerate(rows) if all(m in row.outcomes for m in models)]
    kept = [rows[i] for i in complete]
    chars = np.array([len(row.prompt) for row in kept], dtype=np.float64)[:, None]
    lines = [cost_models[m] for m in models]
    predicted = np.array([c.intercept_usd for c in lines]) + chars * np.array(
        [c.per_char_usd for c in lines]
    )
    return TrainMatrices(
        complete,
        predicted.reshape(len(kept), len(models)),
        np.array([[row.outcomes[m].score for m in models] for row in kept]).reshape(
            -1, len(models)
        ),
        np.array([[row.outcomes[m].cost_usd for m in models] for row in kept]).reshape(
            -1, len(models)
        ),
    )


def calibrate_train(
    rows: Sequence[OutcomeRow],
    models: list[str],
    oof: FloatArray,
    cost_models: Mapping[str, CostModel],
    reference_cost: float,
    goals: Mapping[str, tuple[float, bool]],
    folds: int,
) -> Calibration | None:
    """``calibrate`` over the train rows where every model has an outcome (None if none).

    ``oof`` holds each row's out-of-fold prediction per model (columns ``models``);
    costs are predicted with the cost lines, as the router predicts them.
    """
    m = train_matrices(rows, models, cost_models)
    if not m.complete:
        return None
    return calibrate(
        models, oof[m.complete], m.predicted_cost, m.score, m.cost, reference_cost, goals, folds
    )


def lambda_for_target(calibration: Calibration, target: float) -> float:
    """The largest calibrated lambda whose train quality reaches ``target`` (0 if none)."""
    qualities = np.array([p.quality for p in calibration.curve])
    index = _last_reaching(qualities, target)
    return calibration.curve[index].lam if index is not None else 0.0


def _decreasing_fit(values: FloatArray) -> FloatArray:
    """The least-squares non-increasing fit of ``values`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [sum, count] of each pooled run
    for value in values.tolist():
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    return np.concatenate([np.full(int(n), total / n) for total, n in blocks])


def _last_reaching(monotone: FloatArray, target: float) -> int | None:
    """The last index of a non-increasing array still >= target (None if the first is not)."""
    reaching = np.flatnonzero(monotone >= target - 1e-12)
    return int(reaching[-1]) if reaching.size else None


def parse_tier_goals(text: str) -> dict[str, tuple[float, bool]]:
    """``economy=0.90,balanced=0.95,premium=quality:0.85`` -> tier -> (goal, absolute).

    A bare number is a share of the strongest model's quality, in (0, 1.5];
    ``quality:X`` is a quality itself, in [0, 1]. Raises UsageError.
    """
    goals = {tier: (share, False) for tier, share in DEFAULT_TIER_GOALS.items()}
    for part in filter(None, (p.strip() for p in text.split(","))):
        tier, sep, value = part.partition("=")
        tier = tier.strip()
        if not sep or tier not in TIERS:
            raise UsageError(f"'{part}': expected TIER=GOAL with TIER one of {', '.join(TIERS)}")
        absolute = value.strip().startswith("quality:")
        number = value.strip().removeprefix("quality:")
        try:
            goal = float(number)
        except ValueError:
            raise UsageError(f"'{part}': {number!r} is not a number") from None
        if not (0 <= goal <= 1 if absolute else 0 < goal <= 1.5):
            bounds = "[0, 1]" if absolute else "(0, 1.5]"
            raise UsageError(f"'{part}': the goal must be in {bounds}")
        goals[tier] = (goal, absolute)
    return goals


def setting_lambda(
    calibration: Calibration | None, tier: str | None, target: float | None, lam: float | None
) -> tuple[float, str]:
    """The lambda for one of a tier, a quality target or a lambda (balanced if none), and
    what it means. Raises UsageError for a tier or target a router cannot calibrate."""
    if lam is not None:
        return lam, "given"
    if calibration is None:
        raise UsageError(
            "this router was trained before tiers were calibrated: retrain it "
            "(switchyard router train) or give --lambda"
        )
    if target is not None:
        found = lambda_for_target(calibration, target)
        return found, f"largest lambda reaching mean quality {target:g} on train (out of fold)"
    point = calibration.tiers.get(tier or "balanced")
    if point is None:
        raise UsageError(f"no calibrated tier {tier!r}; it has {', '.join(calibration.tiers)}")
    goal = f"quality {point.goal:g}" if point.absolute else f"{point.goal:.0%} of the strongest"
    reached = "reached" if point.reached else "NOT reached (best predicted quality instead)"
    return point.lam, (
        f"tier {tier or 'balanced'}, goal {goal}: {reached} on train at "
        f"{point.quality / calibration.strongest_quality:.1%} of {calibration.strongest_model}'s "
        f"quality, {point.cost_usd / calibration.strongest_cost_usd:.1%} of its cost"
    )
