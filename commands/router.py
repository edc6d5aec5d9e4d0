"""``switchyard router train | eval | predict``: learned routing on outcome files.

Files are JSON lines, plain or gzip, one ``schemas.outcomes.OutcomeRow`` each
(``commands/outcome_files.py``). ``train`` reads the train split and writes a
router directory (``sinks/router_artifact.py``); ``eval`` and ``predict`` read
the test split. Prices are not in these files, so the router chooses with the
cost it predicts from prompt length (the artifact's cost lines); eval then
charges each choice its true cost from the data.

Models the router does not know: ``eval`` and ``predict`` route among the
models that are both in the data and in the artifact (a model the artifact
knows only by its prior counts as known). A data model the artifact has never
seen cannot be scored, so it is left out of the portfolio, of the baselines
and of the oracle, and a line on stderr (and ``unknown_models`` in ``--json``)
says so. If the artifact knows none of the data's models the command fails.
"""

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from commands.outcome_files import read_outcome_files
from commands.progress import Progress, say
from processors.learning.evaluation import EvalInput, evaluate
from processors.learning.quality_model import (
    QualityModel,
    choose_for_lambda_batch,
    choose_for_target_batch,
)
from processors.learning.training import train_router
from schemas.errors import OutcomeFileError, TrainingError
from schemas.outcomes import OutcomeRow
from schemas.router_eval import EvalReport
from sinks.router_artifact import load_router, save_router


def cmd_train(data: Sequence[Path], out: Path) -> int:
    started = time.monotonic()
    files = _read(data)
    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int, note: str) -> None:
        bars.setdefault(stage, Progress(stage, total)).update(done, note)

    say("featurising and fitting (3-fold CV of C per model)")
    try:
        manifest, arrays = train_router(files, datetime.now(UTC), progress=progress)
    except TrainingError as exc:
        raise OutcomeFileError(str(exc)) from exc
    version = save_router(out, manifest, arrays)
    print(f"router {version.name} written to {out} in {time.monotonic() - started:.1f}s")
    for name, counts in manifest.row_counts.items():
        print(f"  {name}: {counts['train']} train rows, {counts['test']} test rows")
    for fit in manifest.models:
        if fit.kind == "learned":
            print(
                f"  {fit.name}: learned on {fit.train_rows} rows, C={fit.c:g}, CV log-loss "
                f"{fit.cv_log_loss:.4f} (prior alone {fit.cv_prior_log_loss:.4f})"
            )
        else:
            print(f"  {fit.name}: prior only ({fit.reason})")
    print(
        f"  reference (strongest): {manifest.reference_model}, ${manifest.reference_cost_usd:.6g}"
    )
    return 0


def cmd_eval(router: Path, data: Sequence[Path], as_json: bool, plot: Path | None) -> int:
    model = load_router(router)
    rows = _test_rows(_read(data))
    report = evaluate(eval_input(model, rows))
    if report.unknown_models:
        say(f"unknown to the router, left out: {', '.join(report.unknown_models)}")
    if plot is not None:
        from sinks.router_plot import write_plot

        write_plot(report, plot, ", ".join(p.name for p in data))
        say(f"plot written to {plot}")
    if as_json:
        sys.stdout.write(orjson.dumps(report.model_dump(mode="json")).decode() + "\n")
    else:
        print(format_report(report))
    return 0


def cmd_predict(
    router: Path, data: Path | Sequence[Path], target: float | None, lam: float | None
) -> int:
    model = load_router(router)
    rows = _test_rows(_read([data] if isinstance(data, Path) else data))
    names, unknown = _portfolio(model, rows)
    if unknown:
        say(f"unknown to the router, never chosen: {', '.join(unknown)}")
    quality, cost = _predictions(model, rows, names)
    if target is not None:
        chosen = choose_for_target_batch(quality, cost, target)
    else:
        chosen = choose_for_lambda_batch(quality, cost, lam or 0.0, model.reference_cost)
    out = sys.stdout
    for row, index in zip(rows, chosen.tolist(), strict=True):
        out.write(orjson.dumps({"id": row.id, "model": names[index]}).decode() + "\n")
    return 0


def eval_input(model: QualityModel, rows: Sequence[OutcomeRow]) -> EvalInput:
    """True and predicted matrices over the test rows where every known model has an outcome."""
    names, unknown = _portfolio(model, rows)
    kept = [row for row in rows if all(name in row.outcomes for name in names)]
    if not kept:
        raise OutcomeFileError(f"no test row has an outcome for every model ({', '.join(names)})")
    quality, cost = _predictions(model, kept, names)
    return EvalInput(
        models=names,
        score=np.array([[row.outcomes[m].score for m in names] for row in kept]),
        cost=np.array([[row.outcomes[m].cost_usd for m in names] for row in kept]),
        quality=quality,
        predicted_cost=cost,
        reference_cost=model.reference_cost,
        dropped=len(rows) - len(kept),
        unknown_models=tuple(unknown),
    )


def _portfolio(model: QualityModel, rows: Sequence[OutcomeRow]) -> tuple[list[str], list[str]]:
    """(known models to route among, sorted; data models the router does not know)."""
    in_data = {name for row in rows for name in row.outcomes}
    known = (
        sorted(name for name in in_data if model.knows(name)) if in_data else sorted(model.models)
    )
    if not known:
        raise OutcomeFileError(
            f"the router knows none of the data's models ({', '.join(sorted(in_data))}); "
            f"it knows {', '.join(model.models)}"
        )
    return known, sorted(in_data - set(known))


def _predictions(
    model: QualityModel, rows: Sequence[OutcomeRow], names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    columns = [model.models.index(name) for name in names]
    quality = model.predict_batch([r.prompt for r in rows], [r.task for r in rows])
    cost = model.predict_cost_batch([len(r.prompt) for r in rows])
    return quality[:, columns], cost[:, columns]


def _read(paths: Sequence[Path]) -> dict[str, list[OutcomeRow]]:
    started = time.monotonic()
    files = read_outcome_files(paths)
    total = sum(len(rows) for rows in files.values())
    say(f"read {total} rows from {len(files)} file(s) in {time.monotonic() - started:.1f}s")
    return files


def _test_rows(files: dict[str, list[OutcomeRow]]) -> list[OutcomeRow]:
    rows = [row for rows in files.values() for row in rows if row.effective_split == "test"]
    if not rows:
        raise OutcomeFileError(f"no test rows in {', '.join(files)}")
    return rows


def format_report(report: EvalReport) -> str:
    """The readable table ``switchyard router eval`` prints."""
    lines = [
        f"{report.n} test prompts ({report.dropped} dropped: a model had no outcome); "
        f"strongest {report.strongest_model}, cheapest {report.cheapest_model}",
        "",
        f"{'':<18}{'cost/prompt':>13}{'quality':>9}{'AIQ':>8}{'cost@95%':>12}{'q@strong$':>11}",
    ]
    rows = {"router": report.router, **report.baselines}
    for name, fig in rows.items():
        lines.append(
            f"{name:<18}{_usd(fig.cost_usd):>13}{_num(fig.quality):>9}{_num(fig.aiq):>8}"
            f"{_usd(fig.cost_at_95pct_strongest):>12}{_num(fig.quality_at_strongest_cost):>11}"
        )
    lines += ["", "single models:"]
    lines += [
        f"  {s.model:<30}{_usd(s.cost_usd):>13}{s.quality:>9.4f}" for s in report.single_models
    ]
    ratio = report.cost_at_95pct_ratio
    lines += [
        "",
        f"95% of the strongest's quality ({0.95 * report.strongest_quality:.4f}) at "
        + (f"{ratio:.1%} of its cost" if ratio is not None else "no cost on the frontier"),
        "router - zero-router at a share of the strongest's cost: "
        + "  ".join(
            f"{c.fraction:.0%} {c.margin:+.4f}" if c.margin is not None else f"{c.fraction:.0%} n/a"
            for c in report.hull_check
        ),
        "above the zero-router from 20% to 80%: "
        + ("yes" if report.above_zero_router_20_80 else "no"),
    ]
    if report.random_cpt_50 is not None:
        lines.append(
            f"CPT(50%) {_pct(report.cpt_50)} (random 50%), "
            f"CPT(80%) {_pct(report.cpt_80)} (random 80%)"
        )
    return "\n".join(lines)


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.3g}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
