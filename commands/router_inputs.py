"""The matrices ``switchyard router eval | predict | crossval`` work on: per test row and
model, the true score and cost, the router's predicted quality and cost, and each model's
learned check of its own answer; and the models the cascade calls, row by row."""

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from commands.console import say
from commands.outcome_files import read_outcome_files
from processors.learning.cascade_eval import evaluate_cascade
from processors.learning.cascade_route import first_rungs, second_rungs
from processors.learning.evaluation import EvalInput, evaluate
from processors.learning.featurize import FloatArray
from processors.learning.quality_model import QualityModel
from schemas.errors import OutcomeFileError, UsageError
from schemas.outcomes import OutcomeRow
from schemas.router_eval import EvalReport


def cascade_calls(
    model: QualityModel,
    rows: Sequence[OutcomeRow],
    names: list[str],
    quality: FloatArray,
    cost: FloatArray,
    lam: float,
) -> list[list[int]]:
    """Per row, the models the cascade calls, in order. A check runs only on the answer
    of the model called first: no other model's response is read."""
    verifier = model.verifier
    if verifier is None or model.cascade_calibration is None:
        raise UsageError(f"this router has no learned checks: {model.manifest.checks_note}")
    has_check = np.array([verifier.knows(name) for name in names])
    first = first_rungs(quality, cost, has_check, lam, model.reference_cost)
    seen = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        name = names[first[i]]
        outcome = row.outcomes.get(name)
        if has_check[first[i]] and outcome is not None and outcome.response:
            seen[i] = verifier.probability(name, row.prompt, row.task, outcome.response)
    second = second_rungs(quality, cost, first, seen, lam, model.reference_cost)
    return [[int(f)] + ([int(s)] if s >= 0 else []) for f, s in zip(first, second, strict=True)]


def eval_input(model: QualityModel, rows: Sequence[OutcomeRow]) -> EvalInput:
    """True and predicted matrices over the test rows where every known model has an outcome."""
    names, unknown = portfolio(model, rows)
    kept = [row for row in rows if all(name in row.outcomes for name in names)]
    if not kept:
        raise OutcomeFileError(f"no test row has an outcome for every model ({', '.join(names)})")
    quality, cost = predictions(model, kept, names)
    return EvalInput(
        models=names,
        score=np.array([[row.outcomes[m].score for m in names] for row in kept]),
        cost=np.array([[row.outcomes[m].cost_usd for m in names] for row in kept]),
        quality=quality,
        predicted_cost=cost,
        reference_cost=model.reference_cost,
        calibration=model.calibration,
        checked=_checked(model, kept, names),
        cascade=model.cascade_calibration,
        dropped=len(rows) - len(kept),
        unknown_models=tuple(unknown),
    )


def _checked(
    model: QualityModel, rows: Sequence[OutcomeRow], names: list[str]
) -> FloatArray | None:
    """Each model's learned check of its own answer per row (NaN: no check or no answer);
    None when the router has no checks. The cascade reads only the column of the model
    it called first."""
    verifier = model.verifier
    if verifier is None:
        return None
    out = np.full((len(rows), len(names)), np.nan)
    for j, name in enumerate(names):
        if not verifier.knows(name):
            continue
        at = [i for i, row in enumerate(rows) if row.outcomes[name].response]
        if at:
            out[at, j] = verifier.probability_batch(
                name,
                [rows[i].prompt for i in at],
                [rows[i].task for i in at],
                [rows[i].outcomes[name].response or "" for i in at],
            )
    return out


def portfolio(model: QualityModel, rows: Sequence[OutcomeRow]) -> tuple[list[str], list[str]]:
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


def predictions(
    model: QualityModel, rows: Sequence[OutcomeRow], names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The router's predicted quality and cost per row, one column per name in ``names``."""
    columns = [model.models.index(name) for name in names]
    quality = model.predict_batch([r.prompt for r in rows], [r.task for r in rows])
    cost = model.predict_cost_batch([len(r.prompt) for r in rows])
    return quality[:, columns], cost[:, columns]


def read_files(paths: Sequence[Path]) -> dict[str, list[OutcomeRow]]:
    """Outcome files by name, saying on stderr how many rows were read and how fast."""
    started = time.monotonic()
    files = read_outcome_files(paths)
    total = sum(len(rows) for rows in files.values())
    say(f"read {total} rows from {len(files)} file(s) in {time.monotonic() - started:.1f}s")
    return files


def rows_in_test_split(files: dict[str, list[OutcomeRow]]) -> list[OutcomeRow]:
    """Every file's test rows; OutcomeFileError when there are none."""
    rows = [row for rows in files.values() for row in rows if row.effective_split == "test"]
    if not rows:
        raise OutcomeFileError(f"no test rows in {', '.join(files)}")
    return rows


def evaluate_with_cascade(inp: EvalInput) -> EvalReport:
    """``router eval``'s report: the router's figures and, with checks, the cascade's."""
    report = evaluate(inp)
    return report.model_copy(update={"cascade": evaluate_cascade(inp, report)})
