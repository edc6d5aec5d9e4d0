"""The checks that decide when a cascade escalates.

The strategy itself is ``processors.strategies.cascade``. A cascade accepts a
rung's answer only if it passes its check; otherwise the next rung (dearer,
better) answers. The provider worker runs the check on every rung but the last.
Checks (``AnswerCheck``):

- ``json_schema``: the answer parses as JSON and, when the request's
  ``response_format`` carries a JSON schema, validates against it;
- ``regex``: the answer matches the configured pattern;
- ``logprob``: the provider's mean token log-probability is at least the
  threshold; an answer without log-probabilities fails, so it escalates.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson

from schemas.messages import InferenceRequest
from schemas.plan import AnswerCheck


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str


def check_answer(
    check: AnswerCheck,
    request: InferenceRequest,
    text: str,
    logprobs: Sequence[float] | None = None,
) -> CheckResult:
    """Judge one answer; pure, so a cascade's escalation rule is testable without a model."""
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
