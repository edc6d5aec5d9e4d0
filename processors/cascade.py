"""The checks that decide when a cascade escalates.

The strategy itself is ``processors.strategies.cascade``. A cascade accepts a
rung's answer only if it passes its check; otherwise the next rung (dearer,
better) answers. The provider worker runs the check on every rung but the last.
Checks (``AnswerCheck``):

- ``json_schema``: the answer parses as JSON and, when the request's
  ``response_format`` carries a JSON schema, validates against it;
- ``regex``: the answer matches the configured pattern;
- ``logprob``: the provider's mean token log-probability is at least the
  threshold; an answer without log-probabilities fails, so it escalates;
- ``arithmetic``: every arithmetic step of the answer computes
  (``processors.checks.arithmetic``);
- ``learned``: the router's learned check of the answering model
  (``judge``: P(good | prompt, answer)) reaches the threshold the router put
  in the plan. Only the answer in hand is read: the rung just called.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson

from processors.checks.arithmetic import check_arithmetic
from processors.classify import last_user_text
from schemas.messages import InferenceRequest
from schemas.plan import AnswerCheck


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str


Judge = Callable[[str, str, str, str], float | None]
"""(model, prompt text, task, answer) -> P(good) by the learned check; None: no check."""


def check_answer(
    check: AnswerCheck,
    request: InferenceRequest,
    text: str,
    logprobs: Sequence[float] | None = None,
    model: str = "",
    task: str = "",
    judge: Judge | None = None,
) -> CheckResult:
    """Judge one answer of ``model``; pure, so a cascade's escalation rule is testable
    without a model."""
    if check.kind == "learned":
        found = judge(model, last_user_text(request), task, text) if judge is not None else None
        return _check_learned(check, model, found)
    if check.kind == "arithmetic":
        verdict = check_arithmetic(text)
        # Counts only: the verdict's own detail quotes the answer, which must not
        # reach the reply's steps or telemetry.
        detail = (
            f"{verdict.steps} steps compute"
            if verdict.passed
            else f"{verdict.failed} of {verdict.steps} steps do not compute"
        )
        return CheckResult(verdict.passed, detail)
    if check.kind == "regex":
        pattern = check.pattern or r"\S"
        found = re.search(pattern, text) is not None
        return CheckResult(found, "matches pattern" if found else "does not match pattern")
    if check.kind == "logprob":
        if not logprobs:
            return CheckResult(False, "no log-probabilities in the answer")
        mean = sum(logprobs) / len(logprobs)
        ok = mean >= check.min_mean_logprob
        return CheckResult(ok, f"mean logprob {mean:.3f} vs {check.min_mean_logprob:.3f}")
    return _check_json(request, text)


def _check_learned(check: AnswerCheck, model: str, found: float | None) -> CheckResult:
    if found is None:
        return CheckResult(True, f"no learned check for {model}: accepted")
    if check.threshold is None:
        return CheckResult(True, f"P(good) {found:.3f}, no threshold: accepted")
    passed = found >= check.threshold
    return CheckResult(passed, f"P(good) {found:.3f} vs threshold {check.threshold:.3f}")


def _check_json(request: InferenceRequest, text: str) -> CheckResult:
    body = text.strip()
    if body.startswith("```"):  # models like to fence JSON
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return CheckResult(False, "answer is not JSON")
    schema = _schema_of(request)
    if schema is None:
        return CheckResult(True, "valid JSON")
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return CheckResult(False, f"schema violation at {list(exc.absolute_path)}: {exc.validator}")
    except jsonschema.SchemaError:
        return CheckResult(True, "valid JSON (request schema unusable)")
    return CheckResult(True, "matches the request's JSON schema")


def _schema_of(request: InferenceRequest) -> dict[str, Any] | None:
    """OpenAI's ``{"type": "json_schema", "json_schema": {"schema": {...}}}``."""
    fmt = request.response_format or {}
    spec = fmt.get("json_schema")
    schema: Any = spec.get("schema") if isinstance(spec, dict) else None
    return dict(schema) if isinstance(schema, dict) else None
