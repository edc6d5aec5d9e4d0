"""What a rejection tells its producer: the code and a sentence, never a tenant's figures."""

import re
from datetime import UTC, datetime

import orjson
import pytest

from processors.budget import BUDGET_EXHAUSTED, reserve
from processors.reply import telemetry_event
from processors.router_hop import Position, RouterView, route_hop
from schemas.budget import BudgetSnapshot
from schemas.codec import dumps
from schemas.config import SwitchyardConfig, TenantSpec
from schemas.dead_letter import DeadLetter
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from schemas.redaction import RedactionSettings
from schemas.telemetry import TelemetryEvent
from tests.helpers import demo_secrets, make_request, sample_config, signed_as

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DIGITS = re.compile(r"\d")


def test_a_budget_refusal_names_no_figure() -> None:
    tenant = TenantSpec(budget_usd=1.25, budget_period="month")
    spent = BudgetSnapshot(period="2026-11", spent_usd=1.2, reserved_usd=0.03)
    verdict = reserve(spent, tenant, 0.1234, at=Position("requests", 0, 3), now=NOW)
    assert not verdict.allowed
    assert verdict.reason == BUDGET_EXHAUSTED
    assert DIGITS.search(verdict.reason) is None


def test_an_over_budget_reply_and_its_telemetry_carry_no_spend_or_limit() -> None:
    spent = BudgetSnapshot(period="2026-11", spent_usd=49.9999876)  # acme: 50 USD a month
    request = make_request(request_id="r-over")
    raw = dumps(request)
    result = route_hop(
        raw,
        signed_as("acme", raw, NOW),
        Position("requests", 0, 9),
        False,
        sample_config(),
        RouterView(lambda tenant: spent, secrets=demo_secrets()),
        NOW,
        lambda: 1.0,
    )
    reply, telemetry = (o.message for o in result.outputs)
    assert isinstance(reply, InferenceReply) and isinstance(telemetry, TelemetryEvent)
    assert reply.error is not None and reply.error.code == "budget_exhausted"
    assert reply.error.message == BUDGET_EXHAUSTED
    assert reply.routing is not None and reply.routing.reason == BUDGET_EXHAUSTED
    # Neither the remaining budget (0.000012 as the old text put it), the spend nor the limit.
    shown = reply.model_dump_json() + telemetry.model_dump_json()
    for figure in ("0.000012", "49.9999", "50.0", "remaining", "exceeds"):
        assert figure not in shown


PLANTED = "secret plan: pay 4111 1111 1111 1111, mail jo@example.com, EMP-004211"


def _letter_for(tenant: str, config: SwitchyardConfig | None = None) -> DeadLetter:
    raw = orjson.dumps({"request_id": "r-bad", "tenant": tenant, "messages": PLANTED})
    headers = signed_as(tenant, raw, NOW)
    view = RouterView(lambda tenant: None, secrets=demo_secrets())
    result = route_hop(
        raw,
        headers,
        Position("requests", 1, 5),
        False,
        config or sample_config(),
        view,
        NOW,
        lambda: 1.0,
    )
    letter = result.outputs[0].message
    assert isinstance(letter, DeadLetter) and letter.error.code == "invalid_request"
    return letter


def test_a_dead_letter_keeps_the_prompt_only_for_a_tenant_whose_policy_says_full() -> None:
    hashed = _letter_for("globex")  # the default policy
    assert (hashed.payload_kept, hashed.payload) == ("hash", "")
    assert "secret" not in hashed.model_dump_json()
    kept = _letter_for("acme")  # dead_letter_payload: full in the sample config
    assert kept.payload_kept == "full" and "secret plan" in kept.payload


def test_a_redacted_dead_letter_keeps_the_words_and_replaces_what_is_secret_or_personal() -> None:
    config = sample_config()
    globex = config.tenants["globex"].model_copy(update={"dead_letter_payload": "redacted"})
    config = config.model_copy(
        update={
            "tenants": {**config.tenants, "globex": globex},
            "redaction": RedactionSettings(patterns={"employee_id": r"\bEMP-\d{6}\b"}),
        }
    )
    letter = _letter_for("globex", config)
    assert letter.payload_kept == "redacted" and not letter.replayable
    assert "secret plan: pay [CARD], mail [EMAIL], [EMPLOYEE_ID]" in letter.payload
    dumped = letter.model_dump_json()
    for planted in ("4111 1111 1111 1111", "jo@example.com", "EMP-004211"):
        assert planted not in dumped


@pytest.mark.parametrize(
    ("logged", "prompt", "completion"),
    [
        ("off", "", ""),
        ("redacted", "user: pay with [CARD], mail [EMAIL]", "Sent to [EMAIL]."),
        (
            "full",
            "user: pay with 4111 1111 1111 1111, mail jo@example.com",
            "Sent to jo@example.com.",
        ),
    ],
)
def test_telemetry_keeps_prompt_and_completion_only_as_the_tenant_allows(
    logged: str, prompt: str, completion: str
) -> None:
    config = sample_config()
    acme = config.tenants["acme"].model_copy(update={"content_logging": logged})
    config = config.model_copy(update={"tenants": {**config.tenants, "acme": acme}})
    said = "pay with 4111 1111 1111 1111, mail jo@example.com"
    request = InferenceRequest(
        request_id="r-1", tenant="acme", messages=[ChatMessage(role="user", content=said)]
    )
    answer = ChatMessage(role="assistant", content="Sent to jo@example.com.")
    reply = InferenceReply(
        request_id="r-1", tenant="acme", status="ok", message=answer, finished_at=NOW
    )
    row = telemetry_event(reply, request, None, config).request
    assert row is not None
    assert (row.content_logged, row.prompt, row.completion) == (logged, prompt, completion)
