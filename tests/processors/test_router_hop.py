"""The router hop as data: a job's bytes in, every record and the new budget snapshot out."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.authenticate import sign
from processors.cache import cache_key
from processors.outputs import Output
from processors.router import Routed, RoutingContext, route_request
from processors.router_hop import HopResult, Position, RouterView, route_hop, settle_hop
from schemas.budget import BudgetSnapshot
from schemas.cache import CachedAnswer
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.dead_letter import DeadLetter
from schemas.decision import DispatchJob, SourcePosition
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from schemas.plan import PlanStep
from schemas.settlement import SpendSettlement
from schemas.telemetry import TelemetryEvent
from tests.helpers import demo_keys, demo_secrets, make_request, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = sample_config()
AT = Position("requests", 3, 42)
NO_BUDGET = RouterView(budget=lambda tenant: None)
KEYS = demo_keys(BASE)


def configure(**acme: Any) -> SwitchyardConfig:
    raw = BASE.model_dump()
    raw["tenants"]["acme"].update(acme)
    return SwitchyardConfig.model_validate(raw)


def hop(
    raw: bytes | None,
    config: SwitchyardConfig = BASE,
    view: RouterView = NO_BUDGET,
    prepared: bool = False,
    at: Position = AT,
    signed_as: str | None = "acme",
) -> HopResult:
    """The hop on ``raw``, signed (by default) with ``signed_as``'s demo key."""
    signing = KEYS.get(signed_as) if signed_as is not None and raw is not None else None
    headers = dict(sign(raw, signing, NOW)) if raw is not None and signing is not None else {}
    view = replace(view, secrets=demo_secrets(config))
    return route_hop(raw, headers, at, prepared, config, view, NOW, lambda: 1.5)


def kinds(result: HopResult) -> list[str]:
    return [o.kind for o in result.outputs]


def reply_of(output: Output) -> InferenceReply:
    assert output.kind == "reply" and isinstance(output.message, InferenceReply)
    return output.message


# --- routed -------------------------------------------------------------------


def test_a_routed_job_is_one_dispatch_with_its_headers_and_the_reserved_snapshot() -> None:
    request = make_request(request_id="r-7")
    result = hop(dumps(request))
    assert kinds(result) == ["dispatch"]
    [out] = result.outputs
    assert (out.key, out.topic, out.headers) == ("r-7", None, True)
    job = out.message
    assert isinstance(job, DispatchJob)
    expected = route_request(request, BASE, None, AT.offset, NOW, RoutingContext())
    assert isinstance(expected, Routed)
    assert job.decision == expected.decision and job.explanation == expected.explanation
    assert job.request == request
    assert job.source == SourcePosition(partition=3, offset=42)
    assert (job.received_at, job.routing_ms, job.steps) == (NOW, 1.5, [])
    assert result.tenant == "acme"
    assert result.snapshot == expected.snapshot
    assert result.snapshot.request_offset == 42 and result.snapshot.requests == 1
    assert result.snapshot.reserved_usd == job.decision.estimated_cost_usd > 0


def test_the_hop_reserves_on_top_of_the_tenants_stored_snapshot() -> None:
    asked: list[str] = []
    stored = BudgetSnapshot(period="2026-11", reserved_usd=2.0, requests=4, request_offset=10)

    def budget(tenant: str) -> BudgetSnapshot:
        asked.append(tenant)
        return stored

    result = hop(dumps(make_request()), view=RouterView(budget=budget))
    assert asked == ["acme"]
    assert result.snapshot is not None
    assert result.snapshot.requests == 5 and result.snapshot.reserved_usd > 2.0


def test_a_job_over_budget_is_rejected_with_telemetry_and_its_offset_recorded() -> None:
    spent = BudgetSnapshot(period="2026-11", spent_usd=50.0)
    result = hop(dumps(make_request(reply_to="acme-replies")), view=RouterView(lambda t: spent))
    assert kinds(result) == ["reply", "telemetry"]
    reply = reply_of(result.outputs[0])
    assert reply.status == "rejected" and reply.error is not None
    assert reply.error.code == "budget_exhausted"
    assert result.outputs[0].topic == "acme-replies" and result.outputs[0].headers
    assert result.snapshot is not None and result.snapshot.request_offset == 42
    assert result.snapshot.spent_usd == 50.0 and result.snapshot.reserved_usd == 0.0


# --- expired ------------------------------------------------------------------


def test_a_passed_deadline_is_an_expired_reply_and_telemetry_without_dispatch() -> None:
    request = make_request(reply_to="acme-replies", deadline=NOW - timedelta(seconds=1))
    result = hop(dumps(request))
    assert kinds(result) == ["reply", "telemetry"]
    out = result.outputs[0]
    assert (out.key, out.topic, out.headers) == ("r-1", "acme-replies", True)
    reply = reply_of(out)
    assert reply.status == "expired" and reply.error is not None
    assert reply.error.code == "deadline_expired"
    telemetry = result.outputs[1]
    assert isinstance(telemetry.message, TelemetryEvent)
    assert (telemetry.key, telemetry.topic, telemetry.headers) == ("r-1", None, False)
    assert (result.tenant, result.snapshot) == (None, None)


def test_a_deadline_still_ahead_is_routed() -> None:
    assert kinds(hop(dumps(make_request(deadline=NOW + timedelta(minutes=1))))) == ["dispatch"]


# --- pre-step -----------------------------------------------------------------


def test_a_tenant_with_a_pre_step_gets_the_raw_job_first_then_it_is_routed_prepared() -> None:
    config = configure(pre_step_topic="acme-prepare")
    raw = dumps(make_request())
    forwarded = hop(raw, config)
    assert forwarded.outputs == [
        Output("pre_step", "acme", raw, topic="acme-prepare", headers=True)
    ]
    assert forwarded.snapshot is None

    prepared = hop(raw, config, prepared=True, at=Position("prepared", 1, 7))
    assert kinds(prepared) == ["dispatch"]
    job = prepared.outputs[0].message
    assert isinstance(job, DispatchJob)
    assert job.steps == [PlanStep(kind="pre_step", detail="acme-prepare")]
    assert job.decision.plan.pre_step == "acme-prepare"
    assert prepared.snapshot is not None
    assert (prepared.snapshot.prepared_offset, prepared.snapshot.request_offset) == (7, -1)


def test_a_tenant_without_a_pre_step_is_routed_at_once() -> None:
    assert kinds(hop(dumps(make_request()), prepared=False)) == ["dispatch"]


# --- cache --------------------------------------------------------------------


def entry_for(request: InferenceRequest) -> CachedAnswer:
    return CachedAnswer(
        key=cache_key(request),
        tenant=request.tenant,
        message=ChatMessage(role="assistant", content="cached hello"),
        model="sim-small",
        provider="sim",
        source_request_id="r-0",
        stored_at=NOW - timedelta(minutes=1),
        expires_at=NOW + timedelta(hours=1),
    )


def cache_of(entry: CachedAnswer) -> RouterView:
    def cache(key: str, tenant: str, now: datetime) -> CachedAnswer | None:
        return entry if (key, tenant, now) == (entry.key, entry.tenant, NOW) else None

    return RouterView(budget=lambda tenant: None, cache=cache)


def test_a_cache_hit_is_answered_with_telemetry_and_no_dispatch() -> None:
    request = make_request(reply_to="acme-replies")
    result = hop(dumps(request), configure(cache={"enabled": True}), cache_of(entry_for(request)))
    assert kinds(result) == ["reply", "telemetry"]
    reply = reply_of(result.outputs[0])
    assert reply.status == "ok" and reply.model == "sim-small" and reply.cost_usd == 0.0
    assert reply.message is not None and reply.message.text() == "cached hello"
    assert result.outputs[0].topic == "acme-replies" and result.outputs[0].headers
    assert (result.tenant, result.snapshot) == (None, None)


def test_a_cache_miss_is_routed_with_the_miss_in_its_plan() -> None:
    request = make_request()
    other = entry_for(make_request("something else"))
    result = hop(dumps(request), configure(cache={"enabled": True}), cache_of(other))
    assert kinds(result) == ["dispatch"]
    job = result.outputs[0].message
    assert isinstance(job, DispatchJob) and job.decision.plan.cache == "miss"


def test_the_cache_is_not_read_for_a_tenant_without_it() -> None:
    request = make_request()
    assert kinds(hop(dumps(request), BASE, cache_of(entry_for(request)))) == ["dispatch"]


# --- dead letters -------------------------------------------------------------


def letter_of(output: Output) -> DeadLetter:
    assert output.kind == "dead_letter" and isinstance(output.message, DeadLetter)
    return output.message


def test_bad_json_is_dead_lettered_with_its_position_and_no_reply() -> None:
    result = hop(b"{not json")
    assert kinds(result) == ["dead_letter"]
    assert (result.outputs[0].key, result.outputs[0].headers) == (None, False)
    letter = letter_of(result.outputs[0])
    assert letter.error.code == "invalid_request"
    assert (letter.stage, letter.source_topic, letter.source_partition) == (
        "validate",
        "requests",
        3,
    )
    assert (letter.source_offset, letter.payload, letter.payload_bytes) == (42, "{not json", 9)
    assert letter.dead_lettered_at == NOW and letter.request_id is None
    assert result.snapshot is None


def test_an_invalid_job_with_a_salvageable_address_also_gets_an_error_reply() -> None:
    raw = b'{"request_id": "r-9", "tenant": "acme", "reply_to": "acme-replies"}'
    result = hop(raw)
    assert kinds(result) == ["dead_letter", "reply"]
    letter = letter_of(result.outputs[0])
    assert (letter.request_id, letter.tenant, letter.reply_to) == ("r-9", "acme", "acme-replies")
    assert result.outputs[0].key == "r-9"
    out = result.outputs[1]
    assert (out.key, out.topic, out.headers) == ("r-9", "acme-replies", True)
    reply = reply_of(out)
    assert reply.status == "rejected" and reply.error is not None
    assert reply.error.code == "invalid_request" and reply.tenant == "acme"


def test_an_unknown_tenant_is_dead_lettered_and_answered_on_the_default_replies() -> None:
    raw = dumps(make_request(request_id="r-5", tenant="nobody"))
    result = hop(raw, signed_as=None)  # no tenant to sign as; signed as acme it would be refused
    assert kinds(result) == ["dead_letter", "reply"]
    assert letter_of(result.outputs[0]).error.code == "unknown_tenant"
    assert result.outputs[1].topic is None
    assert reply_of(result.outputs[1]).request_id == "r-5"


def test_a_null_message_is_dead_lettered_with_an_empty_payload() -> None:
    result = hop(None)
    assert kinds(result) == ["dead_letter"]
    assert letter_of(result.outputs[0]).payload_bytes == 0


# --- settlements --------------------------------------------------------------


def settlement(tenant: str = "acme") -> bytes:
    return dumps(SpendSettlement(request_id="r-1", tenant=tenant, reserved_usd=1.0, actual_usd=0.4))


def test_a_settlement_releases_the_reservation_and_counts_the_spend_once() -> None:
    stored = BudgetSnapshot(period="2026-11", reserved_usd=1.5, spent_usd=2.0)
    result = settle_hop(settlement(), 8, BASE, lambda tenant: stored, NOW)
    assert result.outputs == [] and result.tenant == "acme"
    assert result.snapshot == stored.model_copy(
        update={"reserved_usd": 0.5, "spent_usd": 2.4, "settlement_offset": 8}
    )
    again = settle_hop(settlement(), 8, BASE, lambda tenant: result.snapshot, NOW)
    assert again.snapshot == result.snapshot


def test_a_settlement_for_a_tenant_no_longer_configured_changes_nothing() -> None:
    result = settle_hop(settlement("gone"), 8, BASE, lambda tenant: None, NOW)
    assert (result.outputs, result.tenant, result.snapshot) == ([], None, None)
