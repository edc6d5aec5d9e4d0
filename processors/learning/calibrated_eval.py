"""How settings chosen on train do on test: shares with bootstrap intervals.

``router eval`` reports, beside the frontier swept on the test prompts, the
point each tier's *calibrated* setting reaches there: the figure a user gets,
who has to pick a setting before seeing the traffic. Shares are of the
strongest model's mean quality and cost on the same prompts; the 95% interval
is the 2.5th..97.5th percentile over ``RESAMPLES`` resamples of the prompts
(seeded, so a rerun prints the same interval).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.learning.featurize import FloatArray
from schemas.router_artifact import Calibration, TierPoint
from schemas.router_eval import CalibratedResult, Interval

RESAMPLES = 1000
_SEED = 20261130


@dataclass(frozen=True)
class Outcome:
    """Per test prompt: the score of the answer returned and the cost of every call."""

    score: FloatArray
    cost: FloatArray


@dataclass(frozen=True)
class Setting:
    """A setting chosen on train and what it did there, as shares of the strongest."""

    name: str
    reference: str
    goal: float
    absolute: bool
    value: float
    reached: bool
    train_quality_share: float
    train_cost_share: float


def setting_of(tier: str, point: TierPoint, calibration: Calibration) -> Setting:
    """A tier's calibrated point as a ``Setting``, its train figures as shares."""
    q, c = calibration.strongest_quality, calibration.strongest_cost_usd
    return Setting(
        name=tier,
        reference=calibration.strongest_model,
        goal=point.goal,
        absolute=point.absolute,
        value=point.lam,
        reached=point.reached,
        train_quality_share=point.quality / q if q else 0.0,
        train_cost_share=point.cost_usd / c if c else 0.0,
    )


def shares(
    setting: Setting,
    outcome: Outcome,
    strongest: Outcome,
    zero_router_at: Callable[[float], float | None],
) -> CalibratedResult:
    """``setting``'s test figures against always-strongest on the same prompts;
    ``zero_router_at`` is the zero-router hull's quality at a cost."""
    q_share = _ratio(outcome.score, strongest.score)
    c_share = _ratio(outcome.cost, strongest.cost)
    idx = _resamples(outcome.score.size)
    cost = float(outcome.cost.mean())
    return CalibratedResult(
        name=setting.name,
        reference=setting.reference,
        goal=setting.goal,
        absolute=setting.absolute,
        setting=setting.value,
        reached_on_train=setting.reached,
        train_quality_share=setting.train_quality_share,
        train_cost_share=setting.train_cost_share,
        cost_usd=cost,
        quality=float(outcome.score.mean()),
        quality_share=q_share,
        quality_share_ci=_interval(outcome.score, strongest.score, idx),
        cost_share=c_share,
        cost_share_ci=_interval(outcome.cost, strongest.cost, idx),
        zero_router_quality=zero_router_at(cost),
        within_2_points=None if setting.absolute else abs(q_share - setting.goal) <= 0.02,
    )


def _ratio(mine: FloatArray, theirs: FloatArray) -> float:
    total = float(theirs.sum())
    return float(mine.sum()) / total if total > 0 else 0.0


def _resamples(n: int) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(_SEED)
    found: npt.NDArray[np.int64] = rng.integers(0, n, size=(RESAMPLES, n))
    return found


def _interval(mine: FloatArray, theirs: FloatArray, idx: npt.NDArray[np.int64]) -> Interval:
    top = theirs[idx].sum(axis=1)
    ratios = np.divide(mine[idx].sum(axis=1), top, out=np.zeros(top.size), where=top > 0)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Interval(low=float(low), high=float(high))


def auc(predicted: FloatArray, scores: FloatArray) -> float | None:
    """P(a good answer is ranked above a bad one), ties half; None with one class."""
    good = scores >= 0.5
    n_good, n_bad = int(good.sum()), int((~good).sum())
    if n_good == 0 or n_bad == 0:
        return None
    _, inverse, counts = np.unique(predicted, return_inverse=True, return_counts=True)
    mean_rank = (np.cumsum(counts) - counts) + (counts + 1) / 2.0  # 1-based, ties averaged
    u = mean_rank[inverse][good].sum() - n_good * (n_good + 1) / 2.0
    return float(u / (n_good * n_bad))
