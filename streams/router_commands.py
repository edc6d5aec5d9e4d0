"""``switchyard router train | eval | predict``: learned routing on outcome files.

Files are JSON lines, plain or gzip (told apart by their first bytes), one
``schemas.outcomes.OutcomeRow`` per line. Training uses the ``train`` split,
eval and predict the ``test`` split. A model in the data that the router has
never seen is scored with its prior if the router has one, else 0.5 (and eval
says so); its cost comes from the data's own train rows when it has none.
"""

import gzip
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from processors.evaluation import Outcomes, report
from processors.quality_model import QualityModel, choose_for_lambda, choose_for_target
from processors.training import train
from schemas.outcomes import OutcomeRow
from sinks.router_artifact import load_router, save_router
from streams.progress import Progress, say

GZIP_MAGIC = b"\x1f\x8b"
UNKNOWN_QUALITY = 0.5


class OutcomeDataError(RuntimeError):
    """An outcome file that cannot be read, with file and line."""


def read_outcomes(paths: Sequence[Path]) -> list[OutcomeRow]:
    rows: list[OutcomeRow] = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise OutcomeDataError(f"{path}: {exc.strerror or exc}") from None
        if raw[:2] == GZIP_MAGIC:
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise OutcomeDataError(f"{path}: broken gzip: {exc}") from None
        progress = Progress(f"reading {path.name}", raw.count(b"\n") or 1)
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(OutcomeRow.model_validate_json(line))
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(p) for p in problem["loc"]) or "line"
                raise OutcomeDataError(f"{path}:{number}: {where}: {problem['msg']}") from None
            if number % 2000 == 0:
                progress.update(number)
        progress.update(progress.total)
    if not rows:
        raise OutcomeDataError("no outcome rows in " + ", ".join(map(str, paths)))
    return rows


def cmd_train(data: Sequence[Path], out: Path) -> int:
    rows = read_outcomes(data)
    say(
        f"training on {sum(r.effective_split == 'train' for r in rows)} train rows "
        f"(of {len(rows)}); choosing regularisation by 3-fold cross-validation"
    )
    model, summary = train(rows, datetime.now(UTC))
    summary["data"] = [str(p) for p in data]
    save_router(out, model, summary)
    say(
        f"router {model.version} written to {out}: learned {', '.join(model.models) or 'none'}"
        f"; priors only: {', '.join(model.priors) or 'none'}"
    )
    return 0


def test_outcomes(rows: Sequence[OutcomeRow]) -> Outcomes:
    test = [r for r in rows if r.effective_split == "test"]
    if not test:
        raise OutcomeDataError("no test rows: eval and predict use the test split")
    names = sorted({m for r in test for m in r.outcomes})
    full = [r for r in test if all(m in r.outcomes for m in names)]
    if not full:
        raise OutcomeDataError("no test row has an outcome for every model")
    return Outcomes(
        ids=[r.id for r in full],
        models=names,
        score=np.array([[r.outcomes[m].score for m in names] for r in full]),
        cost=np.array([[r.outcomes[m].cost_usd for m in names] for r in full]),
        dropped=len(test) - len(full),
    )


def predictions(
    model: QualityModel, rows: Sequence[OutcomeRow], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predicted quality and cost per (row, model); models the router cannot score."""
    quality = model.predict_batch([r.prompt for r in rows], [r.task for r in rows])
    unknown = [m for m in names if not model.knows(m)]
    fallback_cost = _train_costs(rows, names)
    q = np.array([[p.get(m, UNKNOWN_QUALITY) for m in names] for p in quality])
    c = np.array(
        [
            [model.predict_cost(len(r.prompt)).get(m, fallback_cost.get(m, 0.0)) for m in names]
            for r in rows
        ]
    )
    return q, c, unknown


def _train_costs(rows: Sequence[OutcomeRow], names: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in names:
        spent = [r.outcomes[m].cost_usd for r in rows if m in r.outcomes]
        out[m] = float(np.mean(spent)) if spent else 0.0
    return out


def cmd_eval(router: Path, data: Sequence[Path], as_json: bool, plot: Path | None) -> int:
    model = load_router(router)
    rows = read_outcomes(data)
    outcomes = test_outcomes(rows)
    by_id = {r.id: r for r in rows}
    test_rows = [by_id[i] for i in outcomes.ids]
    q, c, unknown = predictions(model, test_rows, outcomes.models)
    result = report(outcomes, q, c, model.reference_cost)
    result["router_version"] = model.version
    result["unknown_models"] = unknown
    if plot is not None:
        from sinks.plots import plot_frontier

        plot_frontier(result, plot, title=", ".join(p.name for p in data))
        say(f"plot written to {plot}")
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    else:
        sys.stdout.write(format_report(result))
    return 0


def cmd_predict(router: Path, data: Path, target: float | None, lam: float | None) -> int:
    model = load_router(router)
    rows = [r for r in read_outcomes([data]) if r.effective_split == "test"]
    if not rows:
        raise OutcomeDataError("no test rows: predict uses the test split")
    names = sorted({m for r in rows for m in r.outcomes})
    q, c, _ = predictions(model, rows, names)
    out = sys.stdout
    for row, quality, cost in zip(rows, q, c, strict=True):
        offered = {m: float(v) for m, v in zip(names, quality, strict=True) if m in row.outcomes}
        priced = {m: float(v) for m, v in zip(names, cost, strict=True)}
        chosen = (
            choose_for_target(offered, priced, target)
            if target is not None
            else choose_for_lambda(offered, priced, lam or 0.0, model.reference_cost)
        )
        out.write(orjson.dumps({"id": row.id, "model": chosen}).decode() + "\n")
    return 0


def format_report(r: dict[str, Any]) -> str:
    strong = r["strongest_cost"]
    lines = [
        f"test prompts: {r['n']} (dropped, incomplete: {r['dropped_incomplete']})",
        f"strongest: {r['strongest']}  quality {r['strongest_quality']:.4f}  cost {strong:.3g}",
        f"oracle quality {r['oracle_quality']:.4f}",
        "",
        f"{'':24}{'AIQ':>8}{'cost @95% strongest':>22}{'quality @strongest cost':>26}",
    ]
    frac = r["cost_fraction_at_95pct_strongest"]
    rows = [("learned router", r["aiq"], r["cost_at_95pct_strongest"],
             r["quality_at_strongest_cost"])]  # fmt: skip
    for name in ("random", "zero_router", "oracle"):
        b = r["baselines"][name]
        rows.append((name, b["aiq"], b["cost_at_95pct_strongest"], b["quality_at_strongest_cost"]))
    for name, aiq, c95, qs in rows:
        c95s = f"{c95:.3g} ({c95 / strong:.0%})" if c95 is not None else "never"
        qss = f"{qs:.4f}" if qs is not None else "-"
        lines.append(f"{name:24}{aiq:8.4f}{c95s:>22}{qss:>26}")
    lines.append("")
    lines.append("vs zero-router hull at a share of the strongest's cost:")
    for check in r["hull_check"]:
        m = check["margin"]
        lines.append(
            f"  {check['cost_fraction']:.0%}: router {check['router']:.4f}  "
            f"hull {check['zero_router']:.4f}  margin {m:+.4f}"
        )
    lines.append(f"above the zero-router hull at 20-80%: {r['above_zero_router_20_80']}")
    if frac is not None:
        lines.append(f"95% of the strongest's quality at {frac:.0%} of its cost")
    if "cpt_50" in r:
        lines.append(f"CPT(50%) {r['cpt_50']}  CPT(80%) {r['cpt_80']}  (random: 0.5, 0.8)")
    return "\n".join(lines) + "\n"
