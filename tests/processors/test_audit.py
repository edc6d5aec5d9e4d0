"""The audit trail's rows come from what the reply and plan say, never from prompt text."""

from datetime import UTC, datetime

from processors.audit import audit_rows, forged_row
from schemas.errors import SignatureInvalid
from schemas.messages import ErrorInfo, InferenceReply
from schemas.plan import PlanStep
from tests.helpers import make_request

AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _reply(**fields: object) -> InferenceReply:
    values: dict[str, object] = {
        "request_id": "r-1", "tenant": "acme", "status": "ok", "finished_at": AT,
    }  # fmt: skip
    return InferenceReply.model_validate(values | fields)


def test_each_governance_action_is_one_row_with_its_rule() -> None:
    request = make_request("my card is 4111 1111 1111 1111", team="search", app="bot")
    queued = PlanStep(kind="rate_queued", detail="team:search 60/min, 4.0 s")
    down = PlanStep(kind="budget_downgraded", model="sim-small", detail="team:search soft $20")
    rows = audit_rows(_reply(steps=[queued, down]), request, "v1", ["CARD", "CARD"])
    assert [(r.action, r.rule, r.detail) for r in rows] == [
        ("queued", "rate_queued", "team:search 60/min, 4.0 s"),
        ("downgraded", "budget_downgraded", "team:search soft $20"),
        ("redacted", "content_logging", "CARD"),
    ]
    assert {(r.team, r.app, r.config_version, r.at) for r in rows} == {("search", "bot", "v1", AT)}
    assert not any("4111" in r.model_dump_json() for r in rows)


def test_refusals_are_audited_and_other_errors_are_not() -> None:
    request = make_request()
    for code, action in [("budget_exhausted", "denied"), ("policy_denied", "denied"),
                         ("rate_limited", "rate_limited")]:  # fmt: skip
        error = ErrorInfo(code=code, message=f"refused: {code}")
        rows = audit_rows(_reply(status="rejected", error=error), request, "v1")
        assert [(r.action, r.rule) for r in rows] == [(action, code)]
    timeout = ErrorInfo(code="provider_timeout", message="slow", retryable=True)
    assert audit_rows(_reply(status="error", error=timeout), request, "v1") == []


def test_a_forged_job_is_audited_under_the_tenant_it_claimed() -> None:
    row = forged_row("r-9", "acme", SignatureInvalid("bad signature"), "v2", AT)
    assert (row.action, row.rule, row.tenant, row.request_id) == (
        "forged", "signature_invalid", "acme", "r-9",
    )  # fmt: skip
