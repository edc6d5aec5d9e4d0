"""``switchyard router crossval``: train, calibrate and evaluate on repeated random splits.

One split's figures depend on which prompts it put in test; on a few hundred test
prompts that moves a tier's quality share by several points. Crossval ignores the
rows' own splits, re-splits all of them ``--repeats`` times
(``processors/learning/crossval.py``), trains and calibrates on each train part
exactly as ``router train`` does, evaluates on its test part as ``router eval``
does, and prints each tier's test quality and cost shares over the splits.
Nothing is written: the routers live in memory for one split each.
"""

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from commands.console import Column, print_json, print_table, say
from commands.progress import Progress
from commands.router_inputs import (
    eval_input,
    evaluate_with_cascade,
    read_files,
    rows_in_test_split,
)
from processors.learning.calibration import parse_tier_goals
from processors.learning.crossval import resplit, summarise
from processors.learning.quality_model import QualityModel
from schemas.errors import OutcomeFileError, TrainingError
from schemas.outcomes import OutcomeRow
from schemas.router_eval import CrossvalReport, EvalReport

if TYPE_CHECKING:
    from processors.learning.training import TrainSettings


def cmd_crossval(
    data: Sequence[Path],
    repeats: int,
    test_share: float,
    seed: int,
    tier_goals: str,
    as_json: bool,
) -> int:
    files = read_files(data)
    rows = sum(len(found) for found in files.values())
    # Here, not at the top: scikit-learn takes a second to import (see cmd_train).
    from processors.learning.training import TrainSettings

    settings = TrainSettings(tier_goals=parse_tier_goals(tier_goals))
    say(f"{repeats} random splits, {test_share:.0%} of {rows} rows in test each (seed {seed})")
    started = time.monotonic()
    bar = Progress("splits", repeats)
    reports: list[EvalReport] = []
    for repeat in range(repeats):
        report = _one_split(resplit(files, repeat, seed, test_share), settings)
        reports.append(report)
        bar.update(repeat + 1, _balanced(report))
    bar.close()
    summary = summarise(reports, test_share, seed, rows)
    say(f"done in {time.monotonic() - started:.0f}s")
    if as_json:
        print_json(summary)
    else:
        print_crossval(summary)
    return 0


def _one_split(files: dict[str, list[OutcomeRow]], settings: "TrainSettings") -> EvalReport:
    """``router train`` then ``router eval`` on one split, the router kept in memory."""
    from processors.learning.training import train_router

    try:
        manifest, arrays = train_router(files, datetime.now(UTC), settings)
    except TrainingError as exc:
        raise OutcomeFileError(str(exc)) from exc
    return evaluate_with_cascade(
        eval_input(QualityModel(manifest, arrays), rows_in_test_split(files))
    )


def _balanced(report: EvalReport) -> str:
    """The progress bar's note: this split's balanced point, plain and cascade."""
    found = [f"{c.quality_share:.1%}/{c.cost_share:.1%}" for c in report.calibrated
             if c.name == "balanced"]  # fmt: skip
    if report.cascade is not None:
        found += [f"cascade {c.quality_share:.1%}/{c.cost_share:.1%}"
                  for c in report.cascade.calibrated if c.name == "balanced"]  # fmt: skip
    return "balanced " + ", ".join(found) if found else ""


CROSSVAL_COLUMNS = (
    Column("tier", 18),
    Column("goal", 14),
    Column("quality share (sd)", 19, right=True),
    Column("range", 13, right=True),
    Column("cost share (sd)", 16, right=True),
    Column("within 2 pts", 12, right=True),
    Column("reached goal", 12, right=True),
)


def print_crossval(summary: CrossvalReport) -> None:
    """Each tier's test shares over the splits, then the frontiers' cost at 95%."""
    n = summary.repeats
    tests = summary.test_rows
    print(
        f"{n} random splits of {summary.rows} rows, {min(tests)}-{max(tests)} test prompts "
        f"each; settings chosen on each split's train part, shares of the strongest on train"
    )
    table = []
    for t in summary.tiers:
        goal = f"quality {t.goal:.3f}" if t.absolute else f"{t.goal:.0%} strongest"
        table.append(
            (
                t.name,
                goal,
                f"{t.quality_share_mean:.1%} ({t.quality_share_sd:.1%})",
                f"{min(t.quality_share):.1%}-{max(t.quality_share):.1%}",
                f"{t.cost_share_mean:.1%} ({t.cost_share_sd:.1%})",
                "-" if t.absolute else f"{t.within_2_points}/{len(t.quality_share)}",
                f"{t.reached_goal}/{len(t.quality_share)}",
            )
        )
    print_table(CROSSVAL_COLUMNS, table)
    for label, ratios in (
        ("router", summary.cost_at_95pct_ratio),
        ("cascade", summary.cascade_cost_at_95pct_ratio),
    ):
        found = [r for r in ratios if r is not None]
        if found:
            print(
                f"{label} frontier swept on each test part: 95% of the strongest's quality at "
                f"{sum(found) / len(found):.1%} of its cost on average "
                f"({min(found):.1%}-{max(found):.1%}, {len(found)} of {n} splits reach it)"
            )
