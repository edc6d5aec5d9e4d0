"""Repeated random splits: how well a tier's calibrated point transfers, split after split.

One train/test split decides a small set's figures by which prompts land in test
(GSM8K's 369 test prompts put a calibrated point's quality share within about
+-5 points). ``router crossval`` re-splits every row ``repeats`` times, trains
and calibrates on each train part and evaluates on its test part; this module
makes the splits and sums the per-split reports up.
"""

import statistics
import zlib
from collections.abc import Mapping, Sequence

from schemas.outcomes import OutcomeRow
from schemas.router_eval import CalibratedResult, CrossvalReport, CrossvalTier, EvalReport

_BUCKETS = 10_000


def resplit(
    files: Mapping[str, Sequence[OutcomeRow]], repeat: int, seed: int, test_share: float
) -> dict[str, list[OutcomeRow]]:
    """Every row of ``files`` put in train or test by a hash of (seed, repeat, id): about
    ``test_share`` of them in test, the same rows for the same arguments."""
    cut = round(test_share * _BUCKETS)

    def split_of(row: OutcomeRow) -> str:
        bucket = zlib.crc32(f"{seed}:{repeat}:{row.id}".encode()) % _BUCKETS
        return "test" if bucket < cut else "train"

    return {
        name: [row.model_copy(update={"split": split_of(row)}) for row in rows]
        for name, rows in files.items()
    }


def summarise(
    reports: Sequence[EvalReport], test_share: float, seed: int, rows: int
) -> CrossvalReport:
    """The per-split reports of one crossval run, tier by tier (router tiers, then the
    cascade's). A tier missing from some split (no checks there) counts only where found."""
    by_tier: dict[str, list[CalibratedResult]] = {}
    for report in reports:
        for result in report.calibrated:
            by_tier.setdefault(result.name, []).append(result)
        for result in report.cascade.calibrated if report.cascade else []:
            by_tier.setdefault(f"cascade {result.name}", []).append(result)
    return CrossvalReport(
        repeats=len(reports),
        test_share=test_share,
        seed=seed,
        rows=rows,
        test_rows=[report.n for report in reports],
        tiers=[_tier(name, results) for name, results in by_tier.items()],
        cost_at_95pct_ratio=[report.cost_at_95pct_ratio for report in reports],
        cascade_cost_at_95pct_ratio=[
            report.cascade.cost_at_95pct_ratio if report.cascade else None for report in reports
        ],
    )


def _tier(name: str, results: Sequence[CalibratedResult]) -> CrossvalTier:
    first = results[0]
    quality = [r.quality_share for r in results]
    cost = [r.cost_share for r in results]
    return CrossvalTier(
        name=name,
        goal=first.goal,
        absolute=first.absolute,
        quality_share=quality,
        cost_share=cost,
        quality_share_mean=statistics.fmean(quality),
        quality_share_sd=_sd(quality),
        cost_share_mean=statistics.fmean(cost),
        cost_share_sd=_sd(cost),
        within_2_points=sum(1 for r in results if r.within_2_points),
        reached_goal=sum(1 for r in results if _reached(r)),
    )


def _reached(result: CalibratedResult) -> bool:
    return (result.quality if result.absolute else result.quality_share) >= result.goal - 1e-12


def _sd(values: Sequence[float]) -> float:
    """Sample standard deviation; 0 for one value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0
