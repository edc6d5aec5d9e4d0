"""``switchyard router train --from-telemetry``: refit a router from production feedback.

Reads the ``decision_feedback`` view (feedback joined to the routing decision
it judges), turns each judged request into a ``processors.learning.recalibration.Judgement``
and writes the refitted router as a new version (``sinks/router_artifact.py``).
What a refit can and cannot learn is in ``processors/learning/recalibration.py``.

Rows used: answered requests (``status = 'ok'``, not cache hits: a cached
answer's cost is not the model's) that finished within ``--since``; one
judgement per request, the mean of its feedback values (of ``--kind`` only,
if given). Catalogue model names map to the router's through
``routing.learned.aliases``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import get_args

from commands.console import Column, print_table
from commands.telemetry_reader import query_telemetry, since_sql, telemetry_table
from processors.learning.recalibration import (
    Judgement,
    ModelRefit,
    Refit,
    RefitSettings,
    refit_from_feedback,
)
from schemas.errors import NothingSelected, UsageError
from schemas.feedback import FeedbackKind
from sinks.router_artifact import load_router, save_router
from streams.local.environment import Environment


@dataclass(frozen=True)
class LoggedJudgement:
    """One judged request as telemetry has it (catalogue model name)."""

    model: str
    task: str
    value: float
    predicted_quality: float  # -1: not predicted
    router_version: str
    cost_usd: float


def read_judgements(
    env: Environment, since: datetime, kinds: Sequence[str] = ()
) -> list[LoggedJudgement]:
    """Judged, answered, uncached requests finished at or after ``since``."""
    unknown = [k for k in kinds if k not in get_args(FeedbackKind)]
    if unknown:
        raise UsageError(f"unknown feedback kind {', '.join(unknown)}")
    # Kinds are checked against the closed set above, so quoting them is safe.
    kind_filter = f" AND kind IN ({', '.join(repr(k) for k in kinds)})" if kinds else ""
    sql = (
        "SELECT model, task, avg(value), any(predicted_quality), any(router_version), "  # noqa: S608
        f"any(cost_usd) FROM {telemetry_table(env, 'decision_feedback')} "
        f"WHERE status = 'ok' AND cache != 'hit' AND model != '' "
        f"AND finished_at >= {since_sql(since)}{kind_filter} "
        "GROUP BY tenant, request_id, model, task ORDER BY tenant, request_id"
    )
    _, rows = query_telemetry(env, sql)
    return [
        LoggedJudgement(str(m), str(t), float(v), float(p), str(rv), float(c))
        for m, t, v, p, rv, c in rows
    ]


def judgements_for(
    logged: Sequence[LoggedJudgement], base_version: str, aliases: Mapping[str, str]
) -> list[Judgement]:
    """Telemetry rows in the router's terms: its model names, its own predictions only."""
    return [
        Judgement(
            model=aliases.get(row.model, row.model),
            task=row.task,
            value=row.value,
            predicted=(
                row.predicted_quality
                if row.router_version == base_version and 0 <= row.predicted_quality <= 1
                else None
            ),
            cost_usd=row.cost_usd,
        )
        for row in logged
    ]


def cmd_refit(
    env: Environment,
    aliases: Mapping[str, str],
    base: Path,
    out: Path | None,
    window: timedelta,
    now: datetime,
    kinds: Sequence[str],
    min_rows: int,
) -> int:
    model = load_router(base)
    manifest = model.manifest
    since = now - window
    logged = read_judgements(env, since, kinds)
    if not logged:
        raise NothingSelected(
            f"no judged requests in telemetry since {since:%Y-%m-%d %H:%M} UTC: "
            "send feedback (`switchyard feedback`, or the feedback topic) first"
        )
    refit = refit_from_feedback(
        manifest,
        model.arrays,
        judgements_for(logged, manifest.version, aliases),
        now,
        since,
        RefitSettings(min_rows=min_rows),
    )
    target = out if out is not None else base
    version = save_router(target, refit.manifest, refit.arrays)
    print(f"router {version.name} written to {target} (refit of {manifest.version})")
    print_refit(refit)
    return 0


REFIT_COLUMNS = (
    Column("model", 30),
    Column("judged", 6, right=True),
    Column("mean", 5, right=True),
    Column("predicted", right=True),
    Column("shift", 6, right=True),
    Column("before", 6, right=True),
    Column("after", 6, right=True),
    Column("action"),
)


def print_refit(refit: Refit) -> None:
    """One row per model: its judgements, the shift applied, what the refit did."""
    print_table(REFIT_COLUMNS, [_refit_row(m) for m in refit.models])


def _refit_row(m: ModelRefit) -> tuple[str, ...]:
    before = "-" if m.mean_predicted_before is None else f"{m.mean_predicted_before:.3f}"
    after = "-" if m.mean_predicted_after is None else f"{m.mean_predicted_after:.3f}"
    return (
        m.model,
        str(m.judgements),
        f"{m.mean_value:.3f}",
        str(m.calibrated_rows),
        f"{m.shift:+.3f}",
        before,
        after,
        m.action,
    )
