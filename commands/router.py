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
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from commands.app import JsonFlag, ManyValuesCommand, at_least, exclusive, new_app
from commands.console import print_json, say
from commands.progress import Progress
from commands.router_inputs import (
    cascade_calls,
    eval_input,
    evaluate_with_cascade,
    portfolio,
    predictions,
    read_files,
    rows_in_test_split,
)
from commands.router_report import print_calibration, print_checks, print_report
from processors.learning.calibration import parse_tier_goals, setting_lambda
from processors.learning.quality_model import choose_for_lambda_batch
from schemas.errors import InvalidOption, OutcomeFileError, TrainingError, UsageError
from schemas.router_artifact import TIERS
from sinks.router_artifact import load_router, save_router


def cmd_train(data: Sequence[Path], out: Path, tier_goals: str = "") -> int:
    started = time.monotonic()
    files = read_files(data)
    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int, note: str) -> None:
        if stage not in bars:
            bars[stage] = Progress(stage, total)
        bars[stage].update(done, note)

    # Here, not at the top: scikit-learn takes a second to import, and every worker
    # process starts through this command line.
    from processors.learning.training import TrainSettings, train_router

    settings = TrainSettings(tier_goals=parse_tier_goals(tier_goals))
    say("featurising and fitting (3-fold CV of C per model), calibrating tiers")
    try:
        manifest, arrays = train_router(files, datetime.now(UTC), settings, progress=progress)
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
    print_calibration(manifest.calibration)
    print_checks(manifest)
    return 0


def cmd_eval(router: Path, data: Sequence[Path], as_json: bool, plot: Path | None) -> int:
    model = load_router(router)
    rows = rows_in_test_split(read_files(data))
    inp = eval_input(model, rows)
    report = evaluate_with_cascade(inp)
    if model.verifier is None:
        say(f"no cascade figures: {model.manifest.checks_note or 'the router has no checks'}")
    if report.unknown_models:
        say(f"unknown to the router, left out: {', '.join(report.unknown_models)}")
    if plot is not None:
        from sinks.router_plot import write_plot

        write_plot(report, plot, ", ".join(p.name for p in data))
        say(f"plot written to {plot}")
    if as_json:
        print_json(report)
    else:
        print_report(report)
    return 0


def cmd_predict(
    router: Path,
    data: Path | Sequence[Path],
    target: float | None,
    lam: float | None,
    tier: str | None = None,
    cascade: bool = False,
) -> int:
    model = load_router(router)
    rows = rows_in_test_split(read_files([data] if isinstance(data, Path) else data))
    names, unknown = portfolio(model, rows)
    if unknown:
        say(f"unknown to the router, never chosen: {', '.join(unknown)}")
    quality, cost = predictions(model, rows, names)
    out = sys.stdout
    if cascade:
        if model.verifier is None or model.cascade_calibration is None:
            raise UsageError(f"this router has no learned checks: {model.manifest.checks_note}")
        lam, meaning = setting_lambda(model.cascade_calibration, tier, target, lam)
        say(f"cascade, lambda {lam:.4g}: {meaning}")
        calls = cascade_calls(model, rows, names, quality, cost, lam)
        for row, called in zip(rows, calls, strict=True):
            models = [names[i] for i in called]
            out.write(orjson.dumps({"id": row.id, "model": models[-1], "called": models}).decode())
            out.write("\n")
        return 0
    lam, meaning = setting_lambda(model.calibration, tier, target, lam)
    say(f"lambda {lam:.4g}: {meaning}")
    chosen = choose_for_lambda_batch(quality, cost, lam, model.reference_cost)
    for row, index in zip(rows, chosen.tolist(), strict=True):
        out.write(orjson.dumps({"id": row.id, "model": names[index]}).decode() + "\n")
    return 0


# --- the `switchyard router` commands ------------------------------------------

app = new_app("Train, evaluate and query a learned router on outcome data.")
RouterDir = Annotated[Path, typer.Option("--router", metavar="DIR")]


class FeedbackKindChoice(StrEnum):
    """``--kind``'s choices: schemas.feedback.FeedbackKind (typer takes no list of Literal)."""

    thumbs = "thumbs"
    success = "success"
    score = "score"


@app.command("train", cls=ManyValuesCommand)
def train(
    ctx: typer.Context,
    data: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE", help="outcome JSONL files, plain or gzip"),
    ] = None,
    from_telemetry: Annotated[
        bool,
        typer.Option(
            "--from-telemetry", help="refit --router from feedback joined to its decisions"
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="router directory (default with --from-telemetry: --router)"
        ),
    ] = None,
    router: Annotated[
        Path | None, typer.Option(metavar="DIR", help="--from-telemetry: the router to refit")
    ] = None,
    since: Annotated[str, typer.Option(help="--from-telemetry: requests finished within")] = "30d",
    kind: Annotated[
        list[FeedbackKindChoice] | None,
        typer.Option(help="--from-telemetry: only this feedback kind (repeatable)"),
    ] = None,
    min_rows: Annotated[
        int,
        typer.Option(help="--from-telemetry: judgements before a model is shifted or added"),
    ] = 30,
    tier_goals: Annotated[
        str,
        typer.Option(
            metavar="TIER=GOAL,...",
            help="--data: each tier's goal, a share of the strongest model's quality "
            "(or quality:Q for a quality itself); unnamed tiers keep their default",
        ),
    ] = "economy=0.90,balanced=0.95,premium=0.99",
) -> int:
    """Train a router, or refit one from production feedback; write a new version.

    --data trains on the train split of outcome files; --from-telemetry refits --router
    from feedback joined to its decisions.
    """
    exclusive(ctx, {"--data": data, "--from-telemetry": from_telemetry})
    if from_telemetry:
        return _refit(router, out, since, [k.value for k in kind or []], min_rows)
    if out is None:
        raise InvalidOption("router train --data needs --out DIR")
    _check_tier_goals(tier_goals)
    return cmd_train(data or [], out, tier_goals)


def _check_tier_goals(tier_goals: str) -> None:
    try:
        parse_tier_goals(tier_goals)
    except UsageError as exc:
        raise InvalidOption(f"--tier-goals: {exc}") from None


def _refit(
    router: Path | None, out: Path | None, since: str, kinds: list[str], min_rows: int
) -> int:
    from commands.router_refit import cmd_refit
    from commands.stack_control import current_config
    from processors.whatif import parse_since
    from streams.local.environment import Environment

    if router is None:
        raise InvalidOption(
            "router train --from-telemetry needs --router DIR (the router to refit)"
        )
    at_least("--min-rows", min_rows, 1)
    try:
        window = parse_since(since)
    except ValueError as exc:
        raise InvalidOption(str(exc)) from None
    env = Environment.from_env()
    aliases = current_config(env).routing.learned.aliases
    return cmd_refit(env, aliases, router, out, window, datetime.now(UTC), kinds, min_rows)


@app.command("eval", cls=ManyValuesCommand)
def eval_(
    router: RouterDir,
    data: Annotated[list[Path], typer.Option(metavar="FILE")],
    as_json: JsonFlag = False,
    plot: Annotated[
        Path | None, typer.Option(metavar="FILE", help="also write the curve as a PNG")
    ] = None,
) -> int:
    """Cost-quality figures on the test split vs baselines."""
    return cmd_eval(router, data, as_json, plot)


@app.command("crossval", cls=ManyValuesCommand)
def crossval(
    data: Annotated[list[Path], typer.Option(metavar="FILE")],
    repeats: Annotated[int, typer.Option(help="random splits to train and evaluate on")] = 10,
    test_share: Annotated[float, typer.Option(help="share of the rows in each test part")] = 0.3,
    seed: Annotated[int, typer.Option(help="seed of the splits")] = 0,
    tier_goals: Annotated[
        str, typer.Option(metavar="TIER=GOAL,...", help="as router train --tier-goals")
    ] = "economy=0.90,balanced=0.95,premium=0.99",
    as_json: JsonFlag = False,
) -> int:
    """Train, calibrate and evaluate on repeated random splits of every row: how each
    tier's calibrated point lands on test, split after split (the rows' splits ignored)."""
    at_least("--repeats", repeats, 1)
    if not 0 < test_share < 1:
        raise InvalidOption("--test-share must be between 0 and 1")
    _check_tier_goals(tier_goals)
    from commands.router_crossval import cmd_crossval

    return cmd_crossval(data, repeats, test_share, seed, tier_goals, as_json)


@app.command("predict")
def predict(
    ctx: typer.Context,
    router: RouterDir,
    data: Annotated[Path, typer.Option(metavar="FILE")],
    tier: Annotated[
        str | None,
        typer.Option(
            metavar="|".join(TIERS), help="the tier's calibrated point (default balanced)"
        ),
    ] = None,
    quality_target: Annotated[
        float | None,
        typer.Option(metavar="Q", help="the calibrated point reaching mean quality Q (0..1)"),
    ] = None,
    lam: Annotated[
        float | None,
        typer.Option(
            "--lambda", metavar="L", help="maximise quality - L x cost / strongest's mean cost"
        ),
    ] = None,
    cascade: Annotated[
        bool,
        typer.Option(
            "--cascade", help="route as the cascade with learned checks (needs responses)"
        ),
    ] = False,
) -> int:
    """Print {"id", "model"} per test prompt at a tier's calibrated point; with --cascade
    also "called", every model the cascade called, in order."""
    exclusive(
        ctx, {"--tier": tier, "--quality-target": quality_target, "--lambda": lam}, required=False
    )
    if tier is not None and tier not in TIERS:
        raise InvalidOption(f"--tier must be one of {', '.join(TIERS)}")
    if quality_target is not None and not 0 <= quality_target <= 1:
        raise InvalidOption("--quality-target must be within 0 and 1")
    at_least("--lambda", lam, 0)
    return cmd_predict(router, data, quality_target, lam, tier, cascade)
