"""Cost-quality evaluation of a router on test prompts (RouterBench and RouteLLM figures).

Pure numpy over per-prompt matrices, one column per model in sorted-name order:
the true ``score`` and ``cost`` of each model on each prompt, and the router's
predicted quality and cost. Every figure is on the same prompts.

- Router points: the lambda choice over a log grid of lambdas (plus 0, plus
  every lambda at which some prompt's choice flips, thinned to 2,000) and the
  target choice over targets 0, 0.005, ..., 1; each gives (mean true cost, mean
  true score). The router frontier is the envelope of these and the
  always-cheapest point.
- Baselines: always-cheapest (lowest mean cost), always-strongest (highest mean
  score), random (the straight line between those two: mixing them at a given
  spend), zero-router (envelope of every single model's point) and oracle (per
  prompt the best score, cheapest among ties; its frontier is the envelope of
  the single models and the oracle point).
- AIQ: area under a frontier between the cheapest and the strongest model's
  cost, over that width; a frontier is 0 left of its first point.
- CPT(x) (two models only): the smallest share of prompts sent to the strong
  model, over the lambda sweep, at which the router recovers x of the quality
  gap between the cheap and the strong model.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from processors.learning.calibrated_eval import Outcome, setting_of, shares
from processors.learning.featurize import FloatArray
from processors.learning.quality_model import choose_for_lambda_batch
from schemas.errors import UsageError
from schemas.router_artifact import Calibration
from schemas.router_eval import (
    CalibratedResult,
    EvalReport,
    Figures,
    HullCheck,
    Pair,
    RouterPoint,
    SingleModel,
)

HULL_FRACTIONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
LOG_GRID_POINTS = 120
MAX_FLIP_LAMBDAS = 2000


@dataclass(frozen=True)
class EvalInput:
    """True and predicted outcomes: rows are prompts, columns ``models`` (sorted)."""

    models: list[str]
    score: FloatArray
    cost: FloatArray
    quality: FloatArray
    predicted_cost: FloatArray
    reference_cost: float
    dropped: int = 0
    unknown_models: tuple[str, ...] = ()
    calibration: Calibration | None = None
    checked: FloatArray | None = None  # each model's check of its own answer; NaN: none
    cascade: Calibration | None = None


# --- frontier geometry -------------------------------------------------------


def upper_envelope(points: Sequence[Pair]) -> list[Pair]:
    """The non-decreasing, concave upper envelope of (cost, quality) points, by cost."""
    hull: list[Pair] = []
    for p in sorted(set(points), key=lambda p: (p[0], -p[1])):
        if hull and p[1] <= hull[-1][1]:
            continue  # costs no less than the last vertex and is no better
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()  # the last vertex lies on or under the chord to p
        hull.append(p)
    return hull


def _cross(a: Pair, b: Pair, c: Pair) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def frontier_at(hull: Sequence[Pair], cost: float) -> float | None:
    """The frontier's quality at ``cost``: None left of its first point, flat right of its last."""
    if not hull or cost < hull[0][0]:
        return None
    xs, ys = zip(*hull, strict=True)
    return float(np.interp(cost, xs, ys))


def area_quality(hull: Sequence[Pair], low: float, high: float) -> float:
    """Mean height of the frontier over [low, high] (0 where it is not defined)."""
    if not hull:
        return 0.0
    if high <= low:
        return frontier_at(hull, low) or 0.0
    xs = sorted({low, high, *(x for x, _ in hull if low < x < high)})
    total = 0.0
    for a, b in itertools.pairwise(xs):
        fa, fb = frontier_at(hull, a), frontier_at(hull, b)
        if fa is not None and fb is not None:
            total += (fa + fb) / 2 * (b - a)
    return total / (high - low)


def cost_to_reach(hull: Sequence[Pair], quality: float) -> float | None:
    """The smallest cost at which the frontier reaches ``quality``, or None."""
    if not hull:
        return None
    if hull[0][1] >= quality:
        return hull[0][0]
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if y2 >= quality:
            return x1 + (quality - y1) * (x2 - x1) / (y2 - y1)
    return None


# --- the router's points -----------------------------------------------------


def lambda_grid(quality: FloatArray, cost: FloatArray, reference_cost: float) -> list[float]:
    """0, a log grid spanning every flip lambda, and the flip lambdas (thinned)."""
    flips = []
    for i in range(quality.shape[1]):
        for j in range(i + 1, quality.shape[1]):
            dq, dc = quality[:, i] - quality[:, j], cost[:, i] - cost[:, j]
            with np.errstate(divide="ignore", invalid="ignore"):
                lam = dq * reference_cost / dc
            flips.append(lam[np.isfinite(lam) & (lam > 0)])
    found = np.unique(np.concatenate(flips)) if flips else np.zeros(0)
    if found.size == 0:
        return [0.0]
    if found.size > MAX_FLIP_LAMBDAS:
        found = np.quantile(found, np.linspace(0, 1, MAX_FLIP_LAMBDAS))
    grid = np.geomspace(found[0] / 2, found[-1] * 2, LOG_GRID_POINTS)
    return [0.0, *sorted({*grid.tolist(), *found.tolist()})]


def router_points(inp: EvalInput, strongest: int) -> list[RouterPoint]:
    """Mean true cost and quality of the router at each lambda and each target."""
    rows = np.arange(inp.score.shape[0])
    points = []

    def point(
        setting: Literal["lambda", "target"], value: float, chosen: npt.NDArray[np.int64]
    ) -> RouterPoint:
        return RouterPoint(
            setting=setting,
            value=value,
            cost_usd=float(inp.cost[rows, chosen].mean()),
            quality=float(inp.score[rows, chosen].mean()),
            strongest_share=float(np.mean(chosen == strongest)),
        )

    for lam in lambda_grid(inp.quality, inp.predicted_cost, inp.reference_cost):
        chosen = choose_for_lambda_batch(inp.quality, inp.predicted_cost, lam, inp.reference_cost)
        points.append(point("lambda", lam, chosen))
    return points


# --- the report ----------------------------------------------------------------


def evaluate(inp: EvalInput) -> EvalReport:
    """Every figure of ``EvalReport`` for one router on one set of test prompts.

    Raises UsageError when there are no test prompts.
    """
    if inp.score.shape[0] == 0:
        raise UsageError("no test prompts to evaluate")
    ends = _Ends.of(inp)
    points = router_points(inp, ends.strongest)
    router = upper_envelope([(p.cost_usd, p.quality) for p in points] + [ends.cheap])
    zero = upper_envelope(ends.means)
    oracle_point = _oracle(inp.score, inp.cost)
    baselines = {
        "always_cheapest": ends.figures([ends.cheap], ends.cheap),
        "always_strongest": ends.figures([ends.strong], ends.strong, aiq=False),
        "random": ends.figures(upper_envelope([ends.cheap, ends.strong])),
        "zero_router": ends.figures(zero),
        "oracle": ends.figures(upper_envelope([*ends.means, oracle_point]), oracle_point),
    }
    checks = hull_check(router, zero, ends.strong[0])
    report = _report(inp, ends, points, ends.figures(router), baselines, checks, oracle_point)
    swept = [p for p in points if 0.2 <= p.cost_usd / ends.strong[0] <= 0.8]
    below = [p for p in swept if p.quality < (frontier_at(zero, p.cost_usd) or 0.0) - 1e-12]
    return report.model_copy(
        update={
            "calibrated": _calibrated(inp, ends, zero),
            "settings_20_80": len(swept),
            "settings_below_zero_router_20_80": len(below),
        }
    )


def _calibrated(inp: EvalInput, ends: "_Ends", zero: list[Pair]) -> list[CalibratedResult]:
    """Each tier's lambda, chosen on train, applied to the test prompts."""
    cal = inp.calibration
    if cal is None:
        return []
    rows = np.arange(inp.score.shape[0])
    top = reference_column(inp.models, cal.strongest_model, ends.strongest)
    strongest = Outcome(inp.score[:, top], inp.cost[:, top])
    found = []
    for tier, tp in cal.tiers.items():
        chosen = choose_for_lambda_batch(
            inp.quality, inp.predicted_cost, tp.lam, inp.reference_cost
        )
        setting = setting_of(tier, tp, cal)
        outcome = Outcome(inp.score[rows, chosen], inp.cost[rows, chosen])
        found.append(shares(setting, outcome, strongest, lambda c: frontier_at(zero, c)))
    return found


@dataclass(frozen=True)
class _Ends:
    """Every model's mean (cost, quality), and which are the cheapest and the strongest.

    Ties go to the other figure, then to the model name.
    """

    means: list[Pair]
    cheapest: int
    strongest: int

    @classmethod
    def of(cls, inp: EvalInput) -> "_Ends":
        means = [
            (float(c), float(q)) for c, q in zip(inp.cost.mean(0), inp.score.mean(0), strict=True)
        ]
        k = len(inp.models)
        strongest = min(range(k), key=lambda m: (-means[m][1], means[m][0], inp.models[m]))
        cheapest = min(range(k), key=lambda m: (means[m][0], -means[m][1], inp.models[m]))
        return cls(means, cheapest, strongest)

    @property
    def cheap(self) -> Pair:
        return self.means[self.cheapest]

    @property
    def strong(self) -> Pair:
        return self.means[self.strongest]

    def figures(self, hull: list[Pair], point: Pair | None = None, aiq: bool = True) -> Figures:
        """A frontier's figures, measured between the cheapest and the strongest model."""
        c_max, q_max = self.strong
        return Figures(
            cost_usd=point[0] if point else None,
            quality=point[1] if point else None,
            aiq=area_quality(hull, self.cheap[0], c_max) if aiq else None,
            cost_at_95pct_strongest=cost_to_reach(hull, 0.95 * q_max),
            quality_at_strongest_cost=frontier_at(hull, c_max),
            frontier=hull,
        )


def _report(
    inp: EvalInput,
    ends: _Ends,
    points: list[RouterPoint],
    mine: Figures,
    baselines: dict[str, Figures],
    checks: list[HullCheck],
    oracle_point: Pair,
) -> EvalReport:
    (c_min, q_min), (c_max, q_max) = ends.cheap, ends.strong
    two = len(inp.models) == 2
    cpt = _cpt(points, q_min, q_max) if two else {}
    return EvalReport(
        n=inp.score.shape[0],
        dropped=inp.dropped,
        models=inp.models,
        unknown_models=list(inp.unknown_models),
        strongest_model=inp.models[ends.strongest],
        cheapest_model=inp.models[ends.cheapest],
        aiq=mine.aiq or 0.0,
        random_aiq=baselines["random"].aiq or 0.0,
        zero_router_aiq=baselines["zero_router"].aiq or 0.0,
        oracle_aiq=baselines["oracle"].aiq or 0.0,
        cost_at_95pct_strongest=mine.cost_at_95pct_strongest,
        cost_at_95pct_ratio=(
            mine.cost_at_95pct_strongest / c_max
            if mine.cost_at_95pct_strongest is not None and c_max > 0
            else None
        ),
        strongest_cost=c_max,
        strongest_quality=q_max,
        quality_at_strongest_cost=mine.quality_at_strongest_cost or 0.0,
        oracle_quality=oracle_point[1],
        oracle_cost=oracle_point[0],
        cheapest_cost=c_min,
        cheapest_quality=q_min,
        hull_check=checks,
        above_zero_router_20_80=_above(checks),
        cpt_50=cpt.get(0.5),
        cpt_80=cpt.get(0.8),
        random_cpt_50=0.5 if two and q_max > q_min else None,
        random_cpt_80=0.8 if two and q_max > q_min else None,
        single_models=[
            SingleModel(model=m, cost_usd=c, quality=q)
            for m, (c, q) in zip(inp.models, ends.means, strict=True)
        ],
        router=mine,
        baselines=baselines,
        points=points,
    )


def reference_column(models: list[str], calibrated: str, fallback: int) -> int:
    """Whose quality and cost calibrated shares are of: the model that was strongest on
    train (its goals are shares of it), else the strongest on these prompts."""
    return models.index(calibrated) if calibrated in models else fallback


def _oracle(score: FloatArray, cost: FloatArray) -> Pair:
    """Per prompt the best score, the cheapest model among those that reach it."""
    best = score == score.max(axis=1, keepdims=True)
    chosen = np.argmin(np.where(best, cost, np.inf), axis=1)
    rows = np.arange(score.shape[0])
    return float(cost[rows, chosen].mean()), float(score[rows, chosen].mean())


def hull_check(router: list[Pair], zero: list[Pair], strongest_cost: float) -> list[HullCheck]:
    checks = []
    for fraction in HULL_FRACTIONS:
        cost = fraction * strongest_cost
        mine, theirs = frontier_at(router, cost), frontier_at(zero, cost)
        margin = mine - theirs if mine is not None and theirs is not None else None
        checks.append(
            HullCheck(
                fraction=fraction, cost_usd=cost, router=mine, zero_router=theirs, margin=margin
            )
        )
    return checks


def _above(checks: list[HullCheck]) -> bool:
    """Strictly above the zero-router wherever it is defined (and defined at all)."""
    judged = [c for c in checks if c.zero_router is not None]
    return bool(judged) and all(c.margin is not None and c.margin > 0 for c in judged)


def _cpt(points: list[RouterPoint], cheap: float, strong: float) -> dict[float, float]:
    """Smallest strong-model share on the lambda sweep recovering each share of the gap."""
    if strong <= cheap:
        return {}
    sweep = [p for p in points if p.setting == "lambda"]
    found = {}
    for share in (0.5, 0.8):
        reached = [
            p.strongest_share for p in sweep if p.quality >= cheap + share * (strong - cheap)
        ]
        if reached:
            found[share] = min(reached)
    return found
