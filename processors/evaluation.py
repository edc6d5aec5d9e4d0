"""Cost-quality evaluation of a router on outcome data (RouterBench / RouteLLM figures).

Pure numpy over per-prompt matrices: ``score[i, m]`` and ``cost[i, m]`` are
prompt i's true outcome with model m; a router's setting is a choice of one
model per prompt. Every figure is on the same prompts.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Point = tuple[float, float]  # (mean cost, mean quality)


def upper_hull(points: Sequence[Point]) -> list[Point]:
    """The non-decreasing upper concave envelope of (cost, quality) points."""
    pts = sorted(set(points))
    hull: list[Point] = []
    for p in pts:
        if hull and p[1] <= hull[-1][1]:
            continue  # costs more, not better: never on a non-decreasing frontier
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()  # hull[-1] lies on or under the chord: not on the envelope
            else:
                break
        hull.append(p)
    return hull


def quality_at(hull: Sequence[Point], cost: float) -> float | None:
    """The frontier's quality at ``cost`` (flat beyond its dearest point); None below it."""
    if not hull or cost < hull[0][0] - 1e-15:
        return None
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if x1 <= cost <= x2:
            return y1 if x2 == x1 else y1 + (y2 - y1) * (cost - x1) / (x2 - x1)
    return hull[-1][1]


def cost_to_reach(hull: Sequence[Point], quality: float) -> float | None:
    """The least cost at which the frontier reaches ``quality``; None if it never does."""
    if not hull:
        return None
    if hull[0][1] >= quality:
        return hull[0][0]
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if y1 < quality <= y2:
            return x1 + (x2 - x1) * (quality - y1) / (y2 - y1)
    return None


def area(hull: Sequence[Point], c_min: float, c_max: float, steps: int = 2000) -> float:
    """RouterBench's AIQ: mean frontier quality over [c_min, c_max] (0 where undefined)."""
    if c_max <= c_min:
        return quality_at(hull, c_max) or 0.0
    xs = np.linspace(c_min, c_max, steps)
    return float(np.mean([quality_at(hull, float(x)) or 0.0 for x in xs]))


@dataclass(frozen=True)
class Curve:
    points: list[Point]
    strong_shares: list[float]  # per point: share of prompts sent to the strongest model


def choice_points(
    score: Matrix, cost: Matrix, choices: Sequence[npt.NDArray[np.intp]], strongest: int
) -> Curve:
    rows = np.arange(score.shape[0])
    points = [(float(cost[rows, c].mean()), float(score[rows, c].mean())) for c in choices]
    shares = [float(np.mean(c == strongest)) for c in choices]
    return Curve(points, shares)


@dataclass(frozen=True)
class Outcomes:
    """Test prompts where every model has an outcome, as matrices (prompt x model)."""

    ids: list[str]
    models: list[str]
    score: Matrix
    cost: Matrix
    dropped: int


def report(
    data: Outcomes,
    predicted_quality: Matrix,
    predicted_cost: Matrix,
    reference_cost: float,
    targets: Sequence[float] = tuple(np.linspace(0, 1, 101)),
) -> dict[str, object]:
    """Every figure ``switchyard router eval`` prints, as one JSON-ready dict."""
    score, cost = data.score, data.cost
    n, k = score.shape
    rows = np.arange(n)
    means_q = score.mean(axis=0)
    means_c = cost.mean(axis=0)
    strongest = int(np.argmax(means_q))
    cheapest = int(np.argmin(means_c))
    strong_q, strong_c = float(means_q[strongest]), float(means_c[strongest])
    choices: list[npt.NDArray[np.intp]] = []
    unit = reference_cost if reference_cost > 0 else 1.0
    for lam in np.concatenate([[0.0], np.logspace(-4, 3, 160)]):
        choices.append(np.argmax(predicted_quality - lam * predicted_cost / unit, axis=1))
    for target in targets:
        able = predicted_quality >= target
        cheapest_able = np.argmin(np.where(able, predicted_cost, np.inf), axis=1)
        choices.append(
            np.where(able.any(axis=1), cheapest_able, np.argmax(predicted_quality, axis=1))
        )
    choices.append(np.full(n, cheapest, dtype=np.intp))
    curve = choice_points(score, cost, choices, strongest)
    router = upper_hull(curve.points)
    singles = [(float(means_c[m]), float(means_q[m])) for m in range(k)]
    zero = upper_hull(singles)
    random_line = upper_hull([singles[cheapest], singles[strongest]])
    best = score.max(axis=1)
    oracle_pick = np.argmin(np.where(score == best[:, None], cost, np.inf), axis=1)
    oracle_pt = (float(cost[rows, oracle_pick].mean()), float(best.mean()))
    oracle = upper_hull([singles[cheapest], oracle_pt])
    c_min, c_max = float(means_c[cheapest]), strong_c

    def figures(hull: list[Point]) -> dict[str, object]:
        return {
            "aiq": round(area(hull, c_min, c_max), 5),
            "cost_at_95pct_strongest": _r(cost_to_reach(hull, 0.95 * strong_q)),
            "quality_at_strongest_cost": _r(quality_at(hull, strong_c)),
        }

    checks = []
    for frac in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        c = frac * strong_c
        rq, zq = quality_at(router, c), quality_at(zero, c)
        checks.append(
            {
                "cost_fraction": frac,
                "router": _r(rq),
                "zero_router": _r(zq),
                "margin": _r(None if rq is None or zq is None else rq - zq),
            }
        )
    out: dict[str, object] = {
        "n": n,
        "dropped_incomplete": data.dropped,
        "models": {
            m: {"quality": round(float(means_q[i]), 5), "cost": float(means_c[i])}
            for i, m in enumerate(data.models)
        },
        "strongest": data.models[strongest],
        "cheapest": data.models[cheapest],
        "strongest_quality": round(strong_q, 5),
        "strongest_cost": strong_c,
        "oracle_quality": round(oracle_pt[1], 5),
        "oracle_cost": oracle_pt[0],
        **figures(router),
        "random_aiq": round(area(random_line, c_min, c_max), 5),
        "zero_router_aiq": round(area(zero, c_min, c_max), 5),
        "oracle_aiq": round(area(oracle, c_min, c_max), 5),
        "cost_fraction_at_95pct_strongest": _r(
            None if (c95 := cost_to_reach(router, 0.95 * strong_q)) is None else c95 / strong_c
        ),
        "hull_check": checks,
        "above_zero_router_20_80": all((x["margin"] or 0) > 0 for x in checks),
        "baselines": {
            "always_cheapest": _point(singles[cheapest], strong_c),
            "always_strongest": _point(singles[strongest], strong_c),
            "random": figures(random_line),
            "zero_router": figures(zero),
            "oracle": figures(oracle),
        },
        "frontier": [[x, round(y, 5)] for x, y in router],
    }
    if k == 2:
        weak_q = float(means_q[cheapest])
        gap = strong_q - weak_q
        for pct in (50, 80):
            goal = weak_q + gap * pct / 100
            shares = [
                s for (c, q), s in zip(curve.points, curve.strong_shares, strict=True) if q >= goal
            ]
            out[f"cpt_{pct}"] = _r(min(shares) if shares else None)
            out["baselines"][f"random_cpt_{pct}"] = pct / 100  # type: ignore[index]
    return out


def _point(p: Point, strong_c: float) -> dict[str, object]:
    return {"cost": p[0], "quality": round(p[1], 5), "cost_fraction": round(p[0] / strong_c, 4)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
